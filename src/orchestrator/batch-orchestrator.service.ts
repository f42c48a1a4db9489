import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { AsyncResource } from 'node:async_hooks';
import { createHash, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { findAgent, AgentRunError, AgentRunner, conceptOf, capNodeInput, capResultMarkdown } from '../agent';
import { NodeNotFoundError, CanvasService, capStructuredOutput } from '../canvas';
import {
  type ProblemFieldError,
  type DomainEventMap,
  type DomainEventName,
  failpoint,
  ServerPathRedactor,
  taskLog,
} from '../common';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../config';
import {
  InvalidStateTransitionError,
  SessionNotFoundError,
  TaskAlreadyFinishedError,
  TaskStore,
  InvalidTaskIdError,
  isTaskId,
  type GroupSpec,
  isTerminal,
  NODE_ERROR_TYPES,
  type NodeErrorType,
  type NodeResultRecord,
  type NodeTruncation,
  type PerformanceMetrics,
  type TaskRecord,
  type TerminalStatus,
} from '../session';
import { BatchRun, type GroupProgress, NodeAbort, nodeKey } from './batch-run';
import { AdaptiveLimit } from './concurrency/adaptive-limit';
import { type DurationEstimate, DurationEstimates } from './concurrency/duration-estimates';
import { GlobalSlots, type SchedulingPolicy, type Slot, SlotLimiter } from './concurrency/slot-limiter';
import { truncationView } from './dto/task-status.dto';
import { BatchValidationError, ShuttingDownError } from './orchestrator.errors';
import { measureMetrics, runningProgressPercent, settledStatus } from './status-rules';
import { TaskEventBus } from './task-event-bus';
import { taskEvent, type TaskEventDraft } from './task-events';

/** A batch as another Nest service (or the REST controller) submits it. */
export interface BatchRequest {
  canvasPath: string;
  groups: GroupSpec[];
  /** This batch's own cap, 1..50. Default 12. */
  maxConcurrent?: number;
  /** The whole batch's deadline in ms. HTTP accepts 60..3600 s; in-process callers may pass any positive value. */
  timeoutMs?: number;
  idempotencyKey?: string;
}

export interface SubmitResult {
  task: TaskRecord;
  /** `false` when an `idempotencyKey` matched an earlier task, which is returned instead. */
  created: boolean;
}

export interface CancelResult {
  success: true;
  message: string;
  status: TaskRecord['status'];
  completed_count: number;
}

/** Live figures of a running task that are not in the store. */
export interface LiveTaskInfo {
  runningNodes: number;
  peakConcurrent: number;
  groupsStarted: number[];
  /** Nodes of this batch holding its own slot and waiting for a process-wide one. */
  waitingForSlot: number;
}

export interface SchedulerState {
  policy: SchedulingPolicy;
  limit: number;
  capacity: number;
  inUse: number;
  waiting: number;
  estimates: Record<string, DurationEstimate>;
}

export const DEFAULT_MAX_CONCURRENT = 12;
export const DEFAULT_TIMEOUT_MS = 600_000;
/** On shutdown, time given to ended SSE responses to flush before the server closes its sockets. */
const SSE_FLUSH_MS = 100;
/** How long `cancel(…, 'abort')` waits for aborted nodes to settle before replying. */
const ABORT_REPLY_WAIT_MS = 5_000;

/**
 * Runs batches: validates and stores them, moves them through their lifecycle, dispatches every node under the
 * batch's cap and the process-wide `Sema(GLOBAL_MAX_CONCURRENT)`, isolates node failures, honours cancel and
 * deadline, writes results, and stores-then-publishes every event.
 */
@Injectable()
export class BatchOrchestrator implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(BatchOrchestrator.name);
  private readonly runs = new Map<string, BatchRun>();
  private readonly background = new Set<Promise<unknown>>();
  private acceptingWork = true;
  /** Runs a function in the async context this service was created in (no request's AsyncLocalStorage). */
  private readonly detached = AsyncResource.bind(<T>(fn: () => T): T => fn());
  /** Rewrites error texts for the API (status, events): no absolute server path (see `publicText`). */
  private redactor?: ServerPathRedactor;

  constructor(
    private readonly store: TaskStore,
    private readonly canvas: CanvasService,
    private readonly runner: AgentRunner,
    private readonly bus: TaskEventBus,
    private readonly emitter: EventEmitter2,
    private readonly globalSlots: GlobalSlots,
    private readonly estimates: DurationEstimates,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
    private readonly adaptive: AdaptiveLimit,
  ) {}

  /**
   * Validates a batch against the vault and canvas, stores it `pending` and starts it. With an idempotency key
   * seen before, returns the earlier task and starts nothing. Nothing is written to disk for a bad request.
   */
  async submit(request: BatchRequest): Promise<SubmitResult> {
    if (!this.acceptingWork) throw new ShuttingDownError();
    const groups = canonicalGroups(request.groups);
    const maxConcurrent = request.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
    const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const problems: ProblemFieldError[] = [];
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1 || maxConcurrent > 50) {
      problems.push({ field: 'max_concurrent', message: 'must be an integer between 1 and 50' });
    }
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      problems.push({ field: 'timeout', message: 'must be positive' });
    if (problems.length) throw new BatchValidationError(problems);
    const canvas = await this.canvas.open(
      request.canvasPath,
      groups.flatMap((g, gi) =>
        g.nodeIds.map((nodeId, ni) => ({ field: `groups[${gi}].node_ids[${ni}]`, nodeId })),
      ),
    );
    const idempotency = request.idempotencyKey
      ? {
          key: request.idempotencyKey,
          requestHash: fingerprint(canvas.relPath, groups, maxConcurrent, timeoutMs),
        }
      : undefined;
    const { task, created } = this.store.createTask(
      {
        taskId: randomUUID(),
        canvasPath: canvas.relPath,
        maxConcurrent,
        timeoutMs,
        groups,
        createdAt: new Date().toISOString(),
      },
      idempotency,
    );
    if (!created) return { task, created };
    return { task: this.startBatchSession(task.taskId), created };
  }

  /**
   * Moves a `pending` task to `running` and starts executing it in the background. Throws when the task does not
   * exist or is not pending. Returns the task as it is now (running).
   */
  startBatchSession(taskId: string): TaskRecord {
    const pending = this.validateSession(taskId);
    const startedAt = new Date();
    const deadlineAt = new Date(startedAt.getTime() + pending.timeoutMs);
    const { task } = this.store.transition(taskId, 'running', {
      startedAt: startedAt.toISOString(),
      deadlineAt: deadlineAt.toISOString(),
    });
    this.launch(task, false);
    return task;
  }

  /**
   * Picks up what a previous process left: `running` tasks continue (nodes with a stored outcome are not run again,
   * the deadline stays where it was, a `resumed` event continues the log), `pending` tasks start.
   */
  onApplicationBootstrap(): void {
    for (const task of this.store.unfinishedTasks()) {
      try {
        if (task.status === 'pending') this.startBatchSession(task.taskId);
        else this.resume(task);
      } catch (err) {
        this.logger.error(
          taskLog(task.taskId, `task ${task.taskId} could not be resumed: ${(err as Error).message}`),
        );
      }
    }
  }

  private resume(task: TaskRecord): void {
    const results = this.store.nodeResults(task.taskId);
    const event = this.store.markResumed(
      task.taskId,
      taskEvent('resumed', new Date().toISOString(), {
        resume_count: task.resumeCount + 1,
        completed_nodes: results.filter((r) => r.outcome === 'completed').length,
        failed_nodes: results.filter((r) => r.outcome === 'failed').length,
        remaining_nodes: task.totalNodes - results.length,
      }),
    );
    this.bus.publish([event]);
    this.logger.log(
      taskLog(
        task.taskId,
        `resuming task ${task.taskId}: ${task.totalNodes - results.length} of ${task.totalNodes} node(s) left`,
      ),
    );
    this.launch(task, true, results);
  }

  private launch(task: TaskRecord, resumed: boolean, results: readonly NodeResultRecord[] = []): void {
    const run = new BatchRun(
      task,
      { relPath: task.canvasPath, absPath: '' },
      new SlotLimiter(task.maxConcurrent),
    );
    run.restore(results);
    if (task.cancelRequested) run.stop('cancel', false);
    this.runs.set(task.taskId, run);
    const deadlineAt = new Date(task.deadlineAt ?? Date.now() + task.timeoutMs);
    // outside the HTTP request that started it: its log lines carry task_id, not that request's context
    this.track(this.detached(() => this.execute(run, deadlineAt, resumed ? results : undefined)));
  }

  /** Resolves with the final task once it is terminal (immediately if it already is). */
  async waitForCompletion(taskId: string): Promise<TaskRecord> {
    const run = this.runs.get(taskId);
    if (run) return run.done;
    const task = this.store.findTask(taskId);
    if (!task) throw new SessionNotFoundError(taskId);
    return task;
  }

  /**
   * Stops dispatching at once: no node that had not started runs after this returns. Running nodes finish and keep
   * their results, unless `mode` is `abort`, which aborts them through their `AbortSignal`.
   */
  async cancel(taskId: string, mode: 'graceful' | 'abort' = 'graceful'): Promise<CancelResult> {
    if (!isTaskId(taskId)) throw new InvalidTaskIdError(taskId);
    // one atomic step: the task read, and its cancel remembered unless it is missing or finished
    const request = this.store.requestCancel(taskId, mode);
    if (request.outcome === 'not-found') throw new SessionNotFoundError(taskId);
    if (request.outcome === 'finished') throw new TaskAlreadyFinishedError(taskId, request.task.status);
    const { task } = request;
    const run = this.runs.get(taskId);
    if (!run) {
      const now = new Date().toISOString();
      const { task: cancelled, events } = this.store.transition(
        taskId,
        'cancelled',
        { completedAt: now, expiresAt: this.expiry(now) },
        [
          taskEvent('cancelled', now, { status: 'cancelled', completed_before_cancel: 0 }),
          this.sessionCompletedDraft(task, 'cancelled', now, { completed: 0, failed: 0 }, emptyMetrics()),
        ],
      );
      this.bus.publish(events);
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

  /** Live figures of a running task, or `undefined` when it is not running in this process. */
  live(taskId: string): LiveTaskInfo | undefined {
    const run = this.runs.get(taskId);
    return (
      run && {
        runningNodes: run.running,
        peakConcurrent: run.peak,
        groupsStarted: run.groups.map((g) => g.started),
        waitingForSlot: this.globalSlots.waitingFor(taskId),
      }
    );
  }

  /** The process-wide scheduler's state: policy, limit in force, slots in use, waiters, duration estimates. */
  schedulerState(): SchedulerState {
    return {
      policy: this.globalSlots.policy,
      limit: this.globalSlots.limit,
      capacity: this.globalSlots.capacity,
      inUse: this.globalSlots.inUse,
      waiting: this.globalSlots.waiting,
      estimates: this.estimates.snapshot(),
    };
  }

  /** Number of tasks running in this process. */
  get runningTasks(): number {
    return this.runs.size;
  }

  /** Stops accepting new batches (503) — the first step of a graceful shutdown. */
  stopAccepting(): void {
    this.acceptingWork = false;
  }

  get accepting(): boolean {
    return this.acceptingWork;
  }

  /**
   * Shutdown: no new batches (503), no new node starts; running nodes get `shutdownGraceMs` to finish, then they are
   * aborted and left unrecorded. Tasks with nodes left stay `running` for the next start to resume. Live SSE streams
   * end (clients reconnect with `Last-Event-ID` later), and the detached listeners of the last domain events get
   * their turn before the database closes.
   */
  async onModuleDestroy(): Promise<void> {
    this.acceptingWork = false;
    for (const run of this.runs.values()) run.stop('shutdown', false);
    const drained = Promise.allSettled([...this.background]);
    if (!(await settleWithin(drained, this.options.shutdownGraceMs))) {
      for (const run of this.runs.values()) run.stop('shutdown', true);
      await drained;
    }
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    this.estimates.save();
    const liveStreams = this.bus.close();
    // let the ended SSE responses reach their clients before the server closes its sockets
    if (liveStreams > 0) await new Promise((resolve) => setTimeout(resolve, SSE_FLUSH_MS));
  }

  // ---------------------------------------------------------------------------------------------------------------

  private validateSession(taskId: string): TaskRecord {
    const task = this.store.findTask(taskId);
    if (!task) throw new SessionNotFoundError(taskId);
    if (task.status !== 'pending') throw new InvalidStateTransitionError(taskId, task.status, 'running');
    return task;
  }

  /** `resumedFrom`: the outcomes a previous process stored (the task is being resumed). */
  private async execute(
    run: BatchRun,
    deadlineAt: Date,
    resumedFrom?: readonly NodeResultRecord[],
  ): Promise<void> {
    // wall time counts from the task's first start, across restarts
    run.startedAtMs =
      performance.now() - (run.task.startedAt ? Date.now() - Date.parse(run.task.startedAt) : 0);
    try {
      const canvas = await this.canvas.resolve(run.task.canvasPath);
      Object.assign(run.canvas, canvas);
      await this.canvas.removeLeftovers(canvas);
      // on resume too: the memory event ids are deterministic, so a hand-off a crash interrupted is completed once
      this.emit('batch.started', {
        taskId: run.taskId,
        canvasPath: run.task.canvasPath,
        totalNodes: run.task.totalNodes,
        startedAt: run.task.startedAt ?? new Date().toISOString(),
      });
      // beside the run, not before it: the first remaining node does not wait for thousands of hand-offs
      if (resumedFrom) this.track(this.replayMemoryHandOff(run, resumedFrom));
      const msLeft = deadlineAt.getTime() - Date.now();
      // a task resumed after its deadline starts no node at all
      if (msLeft <= 0) this.onDeadline(run);
      else run.timers.push(setTimeout(() => this.onTimer(run, () => this.onDeadline(run)), msLeft));
      this.progress(run);
      const ticker = setInterval(
        () => this.onTimer(run, () => this.progress(run)),
        this.options.progressIntervalMs,
      );
      run.timers.push(ticker);
      await this.dispatch(run);
      this.storeOutcomes(run);
      if (run.timerError !== undefined) throw run.timerError;
      if (run.stopReason === 'shutdown' && run.recorded.size < run.task.totalNodes) {
        // left `running` on purpose: the next start resumes it
        run.resolveDone(this.store.findTask(run.taskId) ?? run.task);
        return;
      }
      this.finalize(run);
    } catch (err) {
      this.failWholeBatch(run, err);
    } finally {
      run.clearTimers();
      this.runs.delete(run.taskId);
    }
  }

  /**
   * A process killed between storing a node's result and its detached memory listener's outbox write would lose
   * that learning event. On resume, every completed node is handed to memory again; the listener's outbox ids are
   * deterministic, so events already stored are not doubled.
   */
  private async replayMemoryHandOff(run: BatchRun, results: readonly NodeResultRecord[]): Promise<void> {
    for (const r of results) {
      if (r.outcome !== 'completed') continue;
      const group = run.groups[r.groupIndex];
      const concept = await this.canvas
        .nodeContent(run.canvas, r.nodeId)
        .then((input) => conceptOf(capNodeInput(input, this.options.maxInputChars).input.content))
        .catch(() => '');
      this.emit('agent.completed', {
        taskId: run.taskId,
        canvasPath: run.task.canvasPath,
        groupId: group.spec.groupId,
        groupIndex: r.groupIndex,
        nodeId: r.nodeId,
        agentType: group.spec.agentType,
        concept: concept || r.nodeId,
        filePath: r.filePath ?? '',
        durationMs: r.durationMs ?? 0,
        completedAt: r.finishedAt,
      });
    }
  }

  /**
   * Starts the batch's remaining nodes, each only once it holds a slot of the batch's cap: longest expected first
   * under the `fair` policy (submission order among equals and while nothing is known yet), in submission order
   * under `fifo`.
   */
  private async dispatch(run: BatchRun): Promise<void> {
    const inflight = new Set<Promise<void>>();
    for (const [groupIndex, nodeId] of this.dispatchOrder(run)) {
      if (run.stopReason) break;
      const writeSlot = await run.writeSlots.acquire();
      const batchSlot = await run.batchSlots.acquire();
      if (run.stopReason) {
        batchSlot.release();
        writeSlot.release();
        break;
      }
      const p: Promise<void> = this.executeNode(run, groupIndex, nodeId, batchSlot, writeSlot).finally(() => {
        batchSlot.release();
        writeSlot.release();
        inflight.delete(p);
      });
      inflight.add(p);
    }
    run.allStarted = true;
    while (inflight.size) await Promise.allSettled([...inflight]);
  }

  /**
   * The order to start the remaining nodes in. Groups are ordered by their agent type's expected duration (longest
   * first; a type never seen counts as the longest known, so it starts early), stable, and nodes keep their order
   * within a group: longest-processing-time-first, the classic rule that ends a batch closest to the lower bound
   * max(longest node, total work / concurrency).
   */
  private *dispatchOrder(run: BatchRun): Generator<[number, string]> {
    const groups = run.task.groups.map((g, index) => ({ g, index }));
    if (this.options.scheduling === 'fair') {
      const known = groups
        .map(({ g }) => this.estimates.estimate(g.agentType))
        .filter((e) => e !== undefined);
      const unknown = known.length ? Math.max(...known) : 0;
      const expected = (agentType: string): number => this.estimates.estimate(agentType) ?? unknown;
      groups.sort((a, b) => expected(b.g.agentType) - expected(a.g.agentType));
    }
    for (const { g, index } of groups) {
      for (const nodeId of g.nodeIds) if (!run.recorded.has(nodeKey(index, nodeId))) yield [index, nodeId];
    }
  }

  /**
   * One node. The agent phase (content read + agent call) holds the batch slot and the process-wide slot — that is
   * when the node counts as running and what its `duration_ms` measures; cancel and deadline are checked after both
   * are acquired, so a queued node never starts after a cancel. Both slots are released before the result is
   * written, so the next agents start while the canvas queue coalesces finished results into few writes.
   * Every error is caught here and becomes this node's failure; it never reaches its siblings.
   */
  private async executeNode(
    run: BatchRun,
    groupIndex: number,
    nodeId: string,
    batchSlot: Slot,
    writeSlot: Slot,
  ): Promise<void> {
    const group = run.groups[groupIndex];
    const agentType = group.spec.agentType;
    const globalSlot = await this.globalSlots.acquire(run.taskId);
    if (run.stopReason) {
      globalSlot.release();
      return; // never started: recorded as skipped when the batch finalizes
    }
    const controller = new AbortController();
    run.nodeControllers.add(controller);
    run.running++;
    if (run.running > run.peak) {
      run.peak = run.running;
      this.store.recordPeak(run.taskId, run.peak);
    }
    group.started++;
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    const nodeTimer = setTimeout(
      () =>
        controller.abort(
          new NodeAbort('AGENT_TIMEOUT', `the agent call exceeded ${this.options.agentTimeoutMs} ms`),
        ),
      this.options.agentTimeoutMs,
    );
    let concept: string;
    let inputOmitted: number;
    let durationMs = 0;
    let calledAgent = false;
    try {
      let output;
      try {
        // the agent gets at most `maxInputChars` of the content (with a note saying so); the concept comes from the
        // same part, so a 5 MB node does not hold the event loop for its whole text
        const { input, omitted } = capNodeInput(
          await this.canvas.nodeContent(run.canvas, nodeId),
          this.options.maxInputChars,
        );
        inputOmitted = omitted;
        concept = conceptOf(input.content);
        // Retries never sleep past the node's own timeout or the batch deadline, whichever comes first.
        const deadline = Math.min(
          Date.now() + this.options.agentTimeoutMs,
          run.task.deadlineAt ? Date.parse(run.task.deadlineAt) : Number.POSITIVE_INFINITY,
        );
        calledAgent = true;
        output = await abortable(
          this.runner.run({
            agentType,
            node: input,
            signal: controller.signal,
            deadline,
            feedback: this.adaptive,
          }),
          controller.signal,
        );
        controller.signal.throwIfAborted();
      } finally {
        durationMs = Math.round(performance.now() - t0);
        clearTimeout(nodeTimer);
        globalSlot.release();
        batchSlot.release();
        run.running--;
      }
      // what is copied into the vault is capped: the file at `maxResultBytes`, the canvas cards per card and result
      const title = `${agentType}: ${concept || nodeId}`;
      const result = capResultMarkdown(output.markdown, {
        title,
        maxBytes: this.options.maxResultBytes,
        inputOmitted,
      });
      const cards = output.structured && capStructuredOutput(output.structured);
      const written = await this.canvas.writeResult({
        canvas: run.canvas,
        taskId: run.taskId,
        sourceNodeId: nodeId,
        agentType,
        title,
        markdown: result.markdown,
        structured: cards?.structured,
        // the batch's last result: nothing of it can join a coalesced write any more
        last: run.allStarted && run.running === 0,
        onFileWritten: () => writeSlot.release(),
      });
      this.estimates.observe(agentType, durationMs);
      failpoint('node.before-record');
      if (!written.canvas.placed) {
        throw new NodeNotFoundError(
          `${written.canvas.reason}; the result file is kept at ${written.filePath}`,
        );
      }
      this.recordNode(run, {
        groupIndex,
        nodeId,
        outcome: 'completed',
        filePath: written.filePath,
        fileSize: written.fileSize,
        durationMs,
        inputTokens: output.usage.inputTokens,
        outputTokens: output.usage.outputTokens,
        attempts: output.attempts ?? 1,
        ...truncation(inputOmitted, result.omitted, cards?.omitted ?? 0),
        startedAt,
        finishedAt: new Date().toISOString(),
      });
      this.emit('agent.completed', {
        taskId: run.taskId,
        canvasPath: run.task.canvasPath,
        groupId: group.spec.groupId,
        groupIndex,
        nodeId,
        agentType,
        concept: concept || nodeId,
        filePath: written.filePath,
        durationMs,
        completedAt: new Date().toISOString(),
      });
    } catch (err) {
      if (controller.signal.reason instanceof NodeAbort && controller.signal.reason.errorType === 'SHUTDOWN')
        return;
      const { errorType, message } = classify(err, controller.signal);
      const cost = err instanceof AgentRunError ? err.details : {};
      this.recordNode(run, {
        groupIndex,
        nodeId,
        outcome: 'failed',
        durationMs,
        errorType,
        errorMessage: this.publicText(message),
        inputTokens: cost.usage?.inputTokens ?? 0,
        outputTokens: cost.usage?.outputTokens ?? 0,
        attempts: cost.attempts ?? (calledAgent ? 1 : 0),
        startedAt,
        finishedAt: new Date().toISOString(),
      });
    } finally {
      run.nodeControllers.delete(controller);
    }
  }

  /**
   * Stores a node's outcome with its event — and `group_completed` when it closes its group — in one transaction,
   * then publishes them. A completed outcome has its file and duration, a failed one its error: what its event needs.
   */
  private recordNode(
    run: BatchRun,
    result: NodeResultRecord &
      (
        | { outcome: 'completed'; filePath: string; fileSize: number; durationMs: number }
        | { outcome: 'failed'; errorMessage: string; errorType: NodeErrorType }
      ),
  ): void {
    const group = run.count(result);
    const base = { node_id: result.nodeId, group_id: group.spec.groupId, agent_type: group.spec.agentType };
    const drafts: TaskEventDraft[] = [
      result.outcome === 'completed'
        ? taskEvent('task_completed', result.finishedAt, {
            ...base,
            file_path: result.filePath,
            file_size: result.fileSize,
            duration_ms: result.durationMs,
            ...(result.truncated && { truncated: truncationView(result.truncated) }),
          })
        : taskEvent('task_failed', result.finishedAt, {
            ...base,
            error_message: result.errorMessage,
            error_type: result.errorType,
          }),
    ];
    const closing = this.closeGroupDraft(run, group);
    if (closing) drafts.push(closing);
    if (result.outcome === 'failed')
      this.logger.warn(
        taskLog(run.taskId, `node ${result.nodeId} failed: ${result.errorMessage ?? ''}`, {
          node_id: result.nodeId,
          error_type: result.errorType,
        }),
      );
    else
      this.logger.debug(
        taskLog(run.taskId, `node ${result.nodeId} completed`, {
          node_id: result.nodeId,
          duration_ms: result.durationMs,
        }),
      );
    run.unstored.results.push(result);
    run.unstored.drafts.push(...drafts);
    run.storeScheduled ??= setImmediate(() => this.onTimer(run, () => this.storeOutcomes(run)));
  }

  /**
   * Work a timer does for a batch (storing outcomes, progress, the deadline), outside the batch's own path: a failure
   * (e.g. the database refusing a write) must not escape as an uncaught exception. It stops the batch (running nodes
   * aborted) and fails it once dispatching has ended, as an error thrown on the batch's own path would.
   */
  private onTimer(run: BatchRun, work: () => void): void {
    try {
      work();
    } catch (err) {
      run.timerError ??= err instanceof Error ? err : new Error(String(err));
      run.stop('cancel', true);
    }
  }

  /**
   * Stores the outcomes counted since the last call, with their events, in one transaction, then publishes the
   * events. Runs once per turn of the event loop while nodes finish, and before anything else is stored for the
   * task (progress, deadline, final status), so the event log keeps the order in which things were counted.
   */
  private storeOutcomes(run: BatchRun): void {
    if (run.storeScheduled) clearImmediate(run.storeScheduled);
    run.storeScheduled = undefined;
    const { results, drafts } = run.unstored;
    if (!results.length) return;
    run.unstored.results = [];
    run.unstored.drafts = [];
    this.bus.publish(this.store.recordNodeResults(run.taskId, results, drafts));
  }

  /** The `group_completed` event when every node of the group has an outcome (once per group). */
  private closeGroupDraft(
    run: BatchRun,
    group: GroupProgress,
  ): TaskEventDraft<'group_completed'> | undefined {
    if (group.finished || group.completed + group.failed + group.skipped < group.total) return undefined;
    group.finished = true;
    return taskEvent('group_completed', new Date().toISOString(), {
      group_id: group.spec.groupId,
      agent_type: group.spec.agentType,
      status: settledStatus(group, run.stopReason === 'cancel'),
      completed_nodes: group.completed,
      failed_nodes: group.failed,
    });
  }

  private progress(run: BatchRun): void {
    this.storeOutcomes(run);
    const total = run.task.totalNodes;
    const event = this.store.appendEvent(
      run.taskId,
      taskEvent('progress_update', new Date().toISOString(), {
        progress_percent: runningProgressPercent(run.settled, total),
        completed_nodes: run.completed,
        failed_nodes: run.failed,
        total_nodes: total,
        running_nodes: run.running,
        concurrency_limit: this.globalSlots.limit,
        status: 'running',
      }),
    );
    this.bus.publish([event]);
  }

  private onDeadline(run: BatchRun): void {
    this.storeOutcomes(run);
    run.stop('deadline', true);
    const event = this.store.appendEvent(
      run.taskId,
      taskEvent('error', new Date().toISOString(), {
        error_type: 'TIMEOUT',
        message: `The batch deadline of ${run.task.timeoutMs / 1000} s passed: running nodes were aborted and the rest skipped`,
        recoverable: false,
      }),
    );
    this.bus.publish([event]);
  }

  /** Records skipped nodes, closes groups, decides the final status, stores metrics and the closing events. */
  private finalize(run: BatchRun): void {
    this.storeOutcomes(run);
    run.clearTimers();
    this.estimates.save();
    const now = new Date().toISOString();
    const skipped: NodeResultRecord[] = [];
    run.task.groups.forEach((g, groupIndex) => {
      for (const nodeId of g.nodeIds) {
        if (run.recorded.has(nodeKey(groupIndex, nodeId))) continue;
        const result: NodeResultRecord = {
          groupIndex,
          nodeId,
          outcome: 'skipped',
          errorType: run.stopReason === 'deadline' ? 'TIMEOUT' : 'CANCELLED',
          errorMessage:
            run.stopReason === 'deadline'
              ? 'not started before the batch deadline'
              : 'not started: the batch was cancelled',
          inputTokens: 0,
          outputTokens: 0,
          finishedAt: now,
        };
        run.count(result);
        skipped.push(result);
      }
    });
    const groupEvents = run.groups.map((g) => this.closeGroupDraft(run, g)).filter((e) => e !== undefined);
    if (skipped.length || groupEvents.length) {
      this.bus.publish(this.store.recordNodeResults(run.taskId, skipped, groupEvents));
    }

    const status = finalStatus(run);
    const metrics = this.metrics(run);
    const drafts: TaskEventDraft[] = [];
    if (status === 'cancelled') {
      drafts.push(taskEvent('cancelled', now, { status, completed_before_cancel: run.completed }));
    }
    drafts.push(this.sessionCompletedDraft(run.task, status, now, run, metrics));
    const { task, events } = this.store.transition(
      run.taskId,
      status,
      {
        completedAt: now,
        metrics,
        expiresAt: this.expiry(now),
        errorMessage:
          run.stopReason === 'deadline'
            ? `The batch deadline of ${run.task.timeoutMs / 1000} s passed`
            : null,
      },
      drafts,
    );
    this.bus.publish(events);
    this.logger.log(
      taskLog(
        run.taskId,
        `task ${run.taskId} ${status}: ${run.completed} completed, ${run.failed} failed, ${run.skipped} skipped in ${metrics.total_duration_seconds} s`,
        { status },
      ),
    );
    run.resolveDone(task);
  }

  private failWholeBatch(run: BatchRun, err: unknown): void {
    const raw = err instanceof Error ? err.message : String(err);
    this.logger.error(taskLog(run.taskId, `task ${run.taskId} failed: ${raw}`));
    const message = this.publicText(raw);
    try {
      run.stop('cancel', true);
      // outcomes counted before the failure keep their results, if the store still takes them
      if (run.timerError === undefined) this.storeOutcomes(run);
      const now = new Date().toISOString();
      const { task, events } = this.store.transition(
        run.taskId,
        'failed',
        { completedAt: now, errorMessage: message, metrics: this.metrics(run), expiresAt: this.expiry(now) },
        [
          taskEvent('error', now, { error_type: 'EXECUTION_ERROR', message, recoverable: false }),
          this.sessionCompletedDraft(run.task, 'failed', now, run, this.metrics(run)),
        ],
      );
      this.bus.publish(events);
      run.resolveDone(task);
    } catch (inner) {
      this.logger.error(
        taskLog(run.taskId, `task ${run.taskId} could not be closed: ${(inner as Error).message}`),
      );
      run.resolveDone({ ...run.task, status: 'failed', errorMessage: message });
    }
  }

  /**
   * An error text as it is stored and shown to API clients (status, events): paths in the vault made vault-relative,
   * in DATA_DIR `<DATA_DIR>/…`, any other absolute path `<server path>`.
   */
  private publicText(text: string): string {
    this.redactor ??= new ServerPathRedactor(this.options);
    return this.redactor.redact(text);
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

  private sessionCompletedDraft(
    task: TaskRecord,
    status: TerminalStatus,
    timestamp: string,
    counts: { completed: number; failed: number },
    metrics: PerformanceMetrics,
  ): TaskEventDraft<'session_completed'> {
    return taskEvent('session_completed', timestamp, {
      status,
      total_duration: metrics.total_duration_seconds,
      success_count: counts.completed,
      failure_count: counts.failed,
      performance_metrics: metrics,
    });
  }

  private expiry(fromIso: string): string {
    return new Date(Date.parse(fromIso) + this.options.sessionTtlMinutes * 60_000).toISOString();
  }

  private emit<K extends DomainEventName>(name: K, payload: DomainEventMap[K]): void {
    try {
      this.emitter.emit(name, payload);
    } catch (err) {
      this.logger.error(taskLog(payload.taskId, `${name} listener failed: ${(err as Error).message}`));
    }
  }

  private track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }
}

/** Canonical agent names (aliases resolved), checked to be runnable; group ids unique. */
function canonicalGroups(groups: readonly GroupSpec[]): GroupSpec[] {
  const problems: ProblemFieldError[] = [];
  const seen = new Set<string>();
  if (!Array.isArray(groups) || groups.length === 0)
    problems.push({ field: 'groups', message: 'at least one group is needed' });
  const out = (groups ?? []).map((g, i) => {
    const agent = findAgent(g.agentType);
    if (!agent)
      problems.push({
        field: `groups[${i}].agent_type`,
        message: `unknown agent "${g.agentType}"; see GET /agents`,
      });
    else if (!agent.runnable)
      problems.push({
        field: `groups[${i}].agent_type`,
        message: `agent "${agent.name}" cannot run in a batch`,
      });
    const key = `${typeof g.groupId}:${String(g.groupId)}`;
    if (seen.has(key))
      problems.push({
        field: `groups[${i}].group_id`,
        message: `duplicate group_id ${JSON.stringify(g.groupId)}`,
      });
    seen.add(key);
    if (!Array.isArray(g.nodeIds) || g.nodeIds.length === 0)
      problems.push({ field: `groups[${i}].node_ids`, message: 'at least one node id is needed' });
    else if (new Set(g.nodeIds).size !== g.nodeIds.length)
      problems.push({ field: `groups[${i}].node_ids`, message: 'node ids must be unique within a group' });
    return { groupId: g.groupId, agentType: agent?.name ?? g.agentType, nodeIds: [...(g.nodeIds ?? [])] };
  });
  if (problems.length) throw new BatchValidationError(problems);
  return out;
}

function fingerprint(...parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/**
 * `cancelled` when a cancel stopped it; `completed` when every node completed; `partial_failure` when some did;
 * `failed` when none did (including a deadline that passed with nothing done).
 */
function finalStatus(run: BatchRun): TerminalStatus {
  if (run.stopReason === 'cancel') return 'cancelled';
  return settledStatus({ total: run.task.totalNodes, completed: run.completed, skipped: run.skipped }, false);
}

function classify(err: unknown, signal: AbortSignal): { errorType: NodeErrorType; message: string } {
  if (signal.aborted && signal.reason instanceof NodeAbort && signal.reason.errorType !== 'SHUTDOWN') {
    return { errorType: signal.reason.errorType, message: signal.reason.message };
  }
  const typed = (err as { errorType?: unknown } | null)?.errorType;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof typed === 'string' && (NODE_ERROR_TYPES as readonly string[]).includes(typed)) {
    return { errorType: typed as NodeErrorType, message };
  }
  return { errorType: 'AGENT_ERROR', message: message || 'the agent failed without a message' };
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts (a runner that ignores it). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    // Always settle through here: an abandoned runner promise that rejects later is handled, never unhandled.
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function emptyMetrics(): PerformanceMetrics {
  return {
    total_duration_seconds: 0,
    average_duration_per_node: 0,
    parallel_efficiency: 0,
    peak_concurrent: 0,
  };
}

/** Waits for `promise` at most `ms`; true when it settled in time. The timer is cleared either way. */
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

async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** `{ truncated }` when a cap cut anything of the node's run, else nothing. */
function truncation(
  inputChars: number,
  resultChars: number,
  canvasChars: number,
): { truncated?: NodeTruncation } {
  if (!inputChars && !resultChars && !canvasChars) return {};
  return {
    truncated: {
      ...(inputChars && { inputChars }),
      ...(resultChars && { resultChars }),
      ...(canvasChars && { canvasChars }),
    },
  };
}
