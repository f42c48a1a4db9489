import { Injectable, Logger } from '@nestjs/common';
import { AsyncResource } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { CanvasService, type ResolvedCanvasPath } from '../../canvas';
import { type BatchResumedEvent, settleWithin, taskLog } from '../../common';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../../config';
import { isTerminal, type NodeResultRecord, type PerformanceMetrics, type TaskRecord } from '../../session';
import { ABORTS, BatchRun } from '../batch-run';
import { Dispatcher, type JobContext, type NodeJob, type NodeRunResult } from '../dispatch/dispatcher';
import { TaskOwnedElsewhereError } from '../orchestrator.errors';
import { TaskLeases } from '../ownership/task-leases';
import { finalStatus, measureMetrics } from '../status-rules';
import { NodeExecution } from './node-execution';
import { OutcomeRecorder } from './outcome-recorder';
import type { CancelResult } from './run.types';

/** On shutdown, time given to ended SSE responses to flush before the server closes its sockets. */
const SSE_FLUSH_MS = 100;
/** How long `cancel(…, 'abort')` waits for aborted nodes to settle before replying. */
const ABORT_REPLY_WAIT_MS = 5_000;

/** What a resumed batch takes over from the previous process. */
export interface Resumption {
  /** The outcomes stored before: those nodes do not run again. */
  results: readonly NodeResultRecord[];
  /** Emitted once the batch runs again (after `batch.started`). */
  event: BatchResumedEvent;
}

/**
 * Batch run: the batches running in this process, from start to their final status — schedule every remaining node
 * on the dispatcher, hold the deadline and the progress ticker, honour cancel and shutdown, and finalise (skipped
 * nodes, group closings, the final status and metrics).
 */
@Injectable()
export class BatchRunner {
  private readonly logger = new Logger('BatchOrchestrator');
  private readonly runs = new Map<string, BatchRun>();
  private readonly background = new Set<Promise<unknown>>();
  /** The process is shutting down: jobs of batches it let go are handed back, not run. */
  private closing = false;
  /** Runs a function in the async context this service was created in (no request's AsyncLocalStorage). */
  private readonly detached = AsyncResource.bind(<T>(fn: () => T): T => fn());

  constructor(
    private readonly canvas: CanvasService,
    private readonly dispatcher: Dispatcher,
    private readonly nodes: NodeExecution,
    private readonly recorder: OutcomeRecorder,
    private readonly leases: TaskLeases,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
  ) {
    dispatcher.handle((job, ctx) => this.executeNode(job, ctx));
    // a cancel received by another process: the batch's owner stops it (and aborts its nodes if asked)
    dispatcher.onRemoteStop((taskId, abortReason) =>
      this.runs.get(taskId)?.stop('cancel', abortReason !== undefined),
    );
    // another process took the batch over (this one was cut off longer than the lease): let go, record nothing more
    leases.onLost((taskId) => this.runs.get(taskId)?.stop('shutdown', false));
  }

  /** The task once terminal, if within `ms` (whichever process finalises it). */
  terminalWithin(taskId: string, ms: number): Promise<TaskRecord | undefined> {
    return this.recorder.terminalWithin(taskId, ms);
  }

  /** Other processes may run batches (the distributed engine): a task not running here may run elsewhere. */
  get shared(): boolean {
    return this.leases.shared;
  }

  /** The run of a task running in this process. */
  get(taskId: string): BatchRun | undefined {
    return this.runs.get(taskId);
  }

  get size(): number {
    return this.runs.size;
  }

  /**
   * Moves a `pending` task to `running` and starts it in the background; resolves with the task as it is now. The
   * process takes the batch's lease first (another process that holds it runs the batch: refused).
   */
  async startBatchSession(taskId: string, canvas?: ResolvedCanvasPath): Promise<TaskRecord> {
    if (!(await this.leases.acquire(taskId))) throw new TaskOwnedElsewhereError(taskId);
    try {
      const task = await this.recorder.recordStarted(taskId);
      this.launch(task, undefined, canvas);
      return task;
    } catch (err) {
      await this.leases.release(taskId).catch(() => undefined);
      throw err;
    }
  }

  /** Runs a task (`running` in the store) in this process, in the background. */
  /** `canvas`: the canvas as admission resolved it (a fresh batch); resolved again when absent (a resumption). */
  launch(task: TaskRecord, resumption?: Resumption, canvas?: ResolvedCanvasPath): void {
    const run = new BatchRun(task, { relPath: task.canvasPath, absPath: '' }, (reason, abortWith) => {
      // a shutdown (or a lost lease) is this process letting go: elsewhere the batch goes on, under a new owner
      const local = reason === 'shutdown';
      const stopping = local ? this.dispatcher.release(task.taskId) : this.dispatcher.stop(task.taskId);
      const done = abortWith
        ? Promise.all([
            stopping,
            this.dispatcher.abort(task.taskId, abortWith, local ? 'process' : 'cluster'),
          ])
        : stopping;
      done.catch((err: Error) => this.logger.error(taskLog(task.taskId, `stop failed: ${err.message}`)));
    });
    run.restore(resumption?.results ?? []);
    if (task.cancelRequested) run.stop('cancel', false);
    this.runs.set(task.taskId, run);
    const deadlineAt = new Date(task.deadlineAt ?? Date.now() + task.timeoutMs);
    // outside the HTTP request that started it: its log lines carry task_id, not that request's context
    this.track(this.detached(() => this.execute(run, deadlineAt, resumption?.event, canvas)));
  }

  /**
   * Runs one job (the dispatcher's handler, in every process that works): a node of a batch this process owns, or
   * — on the distributed engine — of a batch another process owns; its owner places and records the result.
   */
  executeNode(job: NodeJob, ctx: JobContext): Promise<NodeRunResult> {
    const run = this.runs.get(job.taskId);
    if (run?.stopReason === 'shutdown') {
      // a batch this process let go goes on elsewhere: while shutting down, the job goes back to the queue; after a
      // lost lease, the job runs here for the batch's new owner
      return this.closing ? Promise.resolve({ kind: 'shutdown' }) : this.nodes.runJob(job, ctx);
    }
    // a cancelled or timed-out batch starts no node
    if (run?.stopReason) return Promise.resolve({ kind: 'not-started' });
    return this.nodes.runJob(job, ctx, run?.canvas.absPath ? run.canvas : undefined);
  }

  /**
   * Stops a task's dispatching at once: no node that had not started runs after this returns. Running nodes finish
   * and keep their results, unless `mode` is `abort`, which aborts them. A task no process runs ends cancelled here.
   */
  async cancel(task: TaskRecord, mode: 'graceful' | 'abort'): Promise<CancelResult> {
    const run = this.runs.get(task.taskId);
    if (!run && this.leases.shared && !(await this.leases.acquire(task.taskId))) {
      return this.cancelElsewhere(task, mode);
    }
    if (!run) {
      // nobody runs it: this process holds its lease now (or there are no others); a resumed owner finds the
      // cancel remembered by the store, and this ends a task that never started
      if (task.status === 'running' && this.leases.shared) {
        await this.leases.release(task.taskId);
        return this.cancelElsewhere(task, mode);
      }
      const cancelled = await this.recorder
        .recordCancelledUnstarted(task)
        .finally(() => this.leases.release(task.taskId));
      return {
        success: true,
        message: 'Task cancelled before it started',
        status: cancelled.status,
        completed_count: 0,
      };
    }
    run.stop('cancel', mode === 'abort');
    // the task's final record if the run ended by now (an abort waits a moment for it)
    const final = await finishedWithin(run.done, mode === 'abort' ? ABORT_REPLY_WAIT_MS : 0);
    const running = run.running;
    return {
      success: true,
      message:
        final && isTerminal(final.status)
          ? `Task cancelled; ${run.completed} node(s) had completed`
          : mode === 'abort'
            ? `Cancel requested; aborting ${running} running node(s)`
            : `Cancel requested; no new node will start, ${running} running node(s) will finish and keep their results`,
      status: final?.status ?? task.status,
      completed_count: run.completed,
    };
  }

  /**
   * A cancel of a batch another process runs (or will resume): every process stops starting its nodes before this
   * replies (the dispatcher's stop reaches them all), running ones are aborted everywhere with `abort`, and the
   * owner — told by the dispatcher — finalises the batch; the reply reports the counts stored so far (an abort waits
   * a moment for the final status).
   */
  private async cancelElsewhere(task: TaskRecord, mode: 'graceful' | 'abort'): Promise<CancelResult> {
    await this.dispatcher.stop(task.taskId);
    if (mode === 'abort') await this.dispatcher.abort(task.taskId, ABORTS.cancel, 'cluster');
    const final =
      mode === 'abort' ? await this.recorder.terminalWithin(task.taskId, ABORT_REPLY_WAIT_MS) : undefined;
    const counts = await this.recorder.counts(task.taskId);
    return {
      success: true,
      message:
        final && isTerminal(final.status)
          ? `Task cancelled; ${counts.completed} node(s) had completed`
          : mode === 'abort'
            ? 'Cancel requested; aborting the running node(s) on every process'
            : 'Cancel requested; no new node will start, running node(s) will finish and keep their results',
      status: final?.status ?? task.status,
      completed_count: counts.completed,
    };
  }

  /**
   * Shutdown: no new node starts; running nodes get `shutdownGraceMs` to finish, then they are aborted and left
   * unrecorded. Tasks with nodes left stay `running` for the next start to resume. Live event feeds end (clients
   * reconnect with `Last-Event-ID` later), and the detached listeners of the last domain events get their turn.
   */
  async shutdown(): Promise<void> {
    this.closing = true;
    for (const run of this.runs.values()) run.stop('shutdown', false);
    const drained = Promise.allSettled([...this.background]);
    if (!(await settleWithin(drained, this.options.shutdownGraceMs))) {
      for (const run of this.runs.values()) run.stop('shutdown', true);
      await drained;
    }
    // this process's worker: its running jobs (of any process's batches) get the same grace, then go back to the queue
    await this.dispatcher.close(this.options.shutdownGraceMs, ABORTS.shutdown);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    await this.recorder.saveDurations();
    await this.leases.close();
    const liveFeeds = this.recorder.closeLiveFeeds();
    // let the ended SSE responses reach their clients before the server closes its sockets
    if (liveFeeds > 0) await new Promise((resolve) => setTimeout(resolve, SSE_FLUSH_MS));
  }

  private async execute(
    run: BatchRun,
    deadlineAt: Date,
    resumed?: BatchResumedEvent,
    admitted?: ResolvedCanvasPath,
  ): Promise<void> {
    // wall time counts from the task's first start, across restarts
    run.startedAtMs =
      performance.now() - (run.task.startedAt ? Date.now() - Date.parse(run.task.startedAt) : 0);
    try {
      const canvas = admitted ?? (await this.canvas.resolve(run.task.canvasPath));
      Object.assign(run.canvas, canvas);
      await this.canvas.removeLeftovers(canvas);
      this.recorder.emit('batch.started', {
        taskId: run.taskId,
        canvasPath: run.task.canvasPath,
        totalNodes: run.task.totalNodes,
        startedAt: run.task.startedAt ?? new Date().toISOString(),
      });
      // memory hands the nodes completed before the restart over again, beside the run
      if (resumed) this.recorder.emit('batch.resumed', resumed);
      const msLeft = deadlineAt.getTime() - Date.now();
      // a task resumed after its deadline starts no node at all
      if (msLeft <= 0) await this.onDeadline(run);
      else run.timers.push(setTimeout(() => run.offPath(() => this.onDeadline(run)), msLeft));
      await this.progress(run);
      run.timers.push(
        setInterval(() => run.offPath(() => this.progress(run)), this.options.progressIntervalMs),
      );
      await this.dispatch(run);
      run.clearTimers();
      await this.recorder.flush(run);
      if (run.timerError !== undefined) throw run.timerError;
      if (run.stopReason === 'shutdown' && run.recorded.size < run.task.totalNodes) {
        // left `running` on purpose: the next start resumes it
        this.settle(run, await this.recorder.taskNow(run));
        return;
      }
      await this.finalise(run);
    } catch (err) {
      await this.failWholeBatch(run, err);
    } finally {
      run.clearTimers();
      this.runs.delete(run.taskId);
    }
  }

  /** Hands the batch's remaining nodes to the dispatcher; resolves once every one ended or was dropped by a stop. */
  private async dispatch(run: BatchRun): Promise<void> {
    if (run.stopReason) return;
    const jobs = this.nodes.jobsOf(run);
    run.toDispatch = jobs.length;
    await this.dispatcher.run({ taskId: run.taskId, maxConcurrent: run.task.maxConcurrent }, jobs, {
      started: (job) => this.nodes.started(run, job),
      agentEnded: () => this.nodes.agentEnded(run),
      ended: (job, result) => this.nodes.settle(run, job, result),
    });
  }

  private async progress(run: BatchRun): Promise<void> {
    const { limit } = await this.dispatcher.state();
    await this.recorder.progress(run, limit, await this.nodes.budget(run.task));
  }

  /** The deadline: outcomes counted so far stored, running nodes aborted, the rest skipped, an `error` event. */
  private onDeadline(run: BatchRun): Promise<void> {
    const written = this.recorder.deadlinePassed(run);
    run.stop('deadline', true);
    return written;
  }

  /** Records skipped nodes, closes groups, decides the final status, stores metrics and the closing events. */
  private async finalise(run: BatchRun): Promise<void> {
    await this.recorder.saveDurations();
    const now = new Date().toISOString();
    await this.recorder.recordSkipped(run, now);
    const status = finalStatus(run);
    const metrics = this.metrics(run);
    const task = await this.recorder.recordEnd(run, status, metrics, now);
    this.logger.log(
      taskLog(
        run.taskId,
        `task ${run.taskId} ${status}: ${run.completed} completed, ${run.failed} failed, ${run.skipped} skipped in ${metrics.total_duration_seconds} s`,
        { status },
      ),
    );
    this.settle(run, task);
  }

  private async failWholeBatch(run: BatchRun, err: unknown): Promise<void> {
    const raw = err instanceof Error ? err.message : String(err);
    this.logger.error(taskLog(run.taskId, `task ${run.taskId} failed: ${raw}`));
    const message = this.recorder.publicText(raw);
    try {
      run.stop('cancel', true);
      // outcomes counted before the failure keep their results, if the store still takes them
      const task = await this.recorder.recordFailure(
        run,
        message,
        this.metrics(run),
        run.timerError === undefined,
      );
      this.settle(run, task);
    } catch (inner) {
      this.logger.error(
        taskLog(run.taskId, `task ${run.taskId} could not be closed: ${(inner as Error).message}`),
      );
      this.settle(run, { ...run.task, status: 'failed', errorMessage: message });
    }
  }

  /** This process is done with the task: it leaves the running set as its waiters learn how it ended. */
  private settle(run: BatchRun, task: TaskRecord): void {
    run.clearTimers();
    this.runs.delete(run.taskId);
    // finished, or left for the next owner: either way this process lets the batch go
    this.leases
      .release(run.taskId)
      .catch((err: Error) => this.logger.warn(taskLog(run.taskId, `lease not released: ${err.message}`)));
    run.resolveDone(task);
  }

  private metrics(run: BatchRun): PerformanceMetrics {
    return measureMetrics({
      wallMs: Math.max(0, performance.now() - run.startedAtMs),
      sumDurationMs: run.sumDurationMs,
      ran: run.ran,
      maxConcurrent: run.task.maxConcurrent,
      totalNodes: run.task.totalNodes,
      peak: run.peak,
    });
  }

  private track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }
}

/** What `done` resolves with, if it does within `ms` (0: only if it already has); `undefined` otherwise. */
async function finishedWithin<T>(done: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) =>
    ms > 0 ? (timer = setTimeout(() => resolve(undefined), ms)) : setImmediate(() => resolve(undefined)),
  );
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}
