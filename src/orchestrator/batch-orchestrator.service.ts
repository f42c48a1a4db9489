import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import {
  InvalidTaskIdError,
  isTaskId,
  isTerminal,
  TaskNotFoundError,
  TaskAlreadyFinishedError,
  TaskStore,
  type TaskRecord,
} from '../session';
import { DurationEstimates } from './concurrency/duration-estimates';
import { Dispatcher, type JobContext, type NodeJob, type NodeRunResult } from './dispatch/dispatcher';
import { ShuttingDownError } from './orchestrator.errors';
import { Admission } from './run/admission';
import { BatchRunner } from './run/batch-runner';
import { Recovery } from './run/recovery';
import type {
  BatchRequest,
  CancelResult,
  GroupAggregate,
  LiveTaskInfo,
  SchedulerState,
  SubmitResult,
  TaskAggregate,
} from './run/run.types';
import { aggregate, settledStatus } from './status-rules';

export type {
  BatchRequest,
  CancelResult,
  GroupAggregate,
  LiveTaskInfo,
  SchedulerState,
  SubmitResult,
  TaskAggregate,
} from './run/run.types';
export { DEFAULT_MAX_CONCURRENT, DEFAULT_TIMEOUT_MS } from './run/run.types';

/**
 * Runs batches — the seed's vocabulary over small parts: `submit` (admission: validate, store `pending`), then
 * `startBatchSession` (batch run: schedule every node on the dispatcher under the batch's and the global cap,
 * deadline, progress, finalise), `executeNode` (node execution: content → agent → result, failures isolated),
 * `executeGroup`/`aggregateResults` (a group's and the task's outcome counts), `cancel`; recovery resumes what a
 * previous process left. Every event is stored, then published (outcome recording).
 */
@Injectable()
export class BatchOrchestrator implements OnApplicationBootstrap, OnModuleDestroy {
  private acceptingWork = true;

  constructor(
    private readonly admission: Admission,
    private readonly batches: BatchRunner,
    private readonly recovery: Recovery,
    private readonly dispatcher: Dispatcher,
    private readonly estimates: DurationEstimates,
    private readonly store: TaskStore,
  ) {}

  /**
   * Validates a batch against the vault and canvas, stores it `pending` and starts it. With an idempotency key
   * seen before, returns the earlier task and starts nothing. Nothing is written to disk for a bad request.
   */
  async submit(request: BatchRequest): Promise<SubmitResult> {
    if (!this.acceptingWork) throw new ShuttingDownError();
    const { task, created, canvas } = await this.admission.admit(request);
    if (!created) return { task, created };
    // the run starts from the canvas admission checked a moment ago (each file it touches is checked again when used)
    return { task: await this.batches.startBatchSession(task.taskId, canvas), created };
  }

  /**
   * Moves a `pending` task to `running` and starts executing it in the background. Rejects when the task does not
   * exist or is not pending. Resolves with the task as it is now (running).
   */
  startBatchSession(taskId: string): Promise<TaskRecord> {
    return this.batches.startBatchSession(taskId);
  }

  /** Runs one node job (the dispatcher's handler): content → agent; its owner writes, places and records the result. */
  executeNode(job: NodeJob, ctx: JobContext): Promise<NodeRunResult> {
    return this.batches.executeNode(job, ctx);
  }

  /**
   * One group's outcome counts and status, once every node of it has an outcome (or this process is done with its
   * task); at once for a task not running here.
   */
  async executeGroup(taskId: string, groupIndex: number): Promise<GroupAggregate> {
    const run = this.batches.get(taskId);
    const group = run?.groups[groupIndex];
    if (run && group) {
      await Promise.race([group.settled, run.done]);
      if (group.finished)
        return {
          groupId: group.spec.groupId,
          agentType: group.spec.agentType,
          status: settledStatus(group, run.stopReason === 'cancel'),
          total: group.total,
          completed: group.completed,
          failed: group.failed,
          skipped: group.skipped,
        };
    }
    const found = (await this.aggregateResults(taskId)).groups[groupIndex];
    if (!found) throw new RangeError(`task ${taskId} has no group at index ${groupIndex}`);
    return found;
  }

  /** The task's outcome counts, per group and in all, as stored. */
  async aggregateResults(taskId: string): Promise<TaskAggregate> {
    const task = await this.store.findTask(taskId);
    if (!task) throw new TaskNotFoundError(taskId);
    return aggregate(task, await this.store.resultSummary(taskId));
  }

  /** Resolves with the final task once it is terminal (immediately if it already is). */
  async waitForCompletion(taskId: string): Promise<TaskRecord> {
    const run = this.batches.get(taskId);
    if (run) return run.done;
    const task = await this.store.findTask(taskId);
    if (!task) throw new TaskNotFoundError(taskId);
    // another process runs it (the distributed engine): its final record appears in the shared store
    if (this.batches.shared && !isTerminal(task.status))
      return (await this.batches.terminalWithin(taskId, Number.POSITIVE_INFINITY)) ?? task;
    return task;
  }

  /**
   * Stops dispatching at once: no node that had not started runs after this returns. Running nodes finish and keep
   * their results, unless `mode` is `abort`, which aborts them through their `AbortSignal`.
   */
  async cancel(taskId: string, mode: 'graceful' | 'abort' = 'graceful'): Promise<CancelResult> {
    if (!isTaskId(taskId)) throw new InvalidTaskIdError(taskId);
    // one atomic step: the task read, and its cancel remembered unless it is missing or finished
    const request = await this.store.requestCancel(taskId, mode);
    if (request.outcome === 'not-found') throw new TaskNotFoundError(taskId);
    if (request.outcome === 'finished') throw new TaskAlreadyFinishedError(taskId, request.task.status);
    return this.batches.cancel(request.task, mode);
  }

  /** Live figures of a running task, or `undefined` when it is not running in this process. */
  async live(taskId: string): Promise<LiveTaskInfo | undefined> {
    const run = this.batches.get(taskId);
    if (!run) return undefined;
    const waitingForSlot = await this.dispatcher.waitingFor(taskId);
    const groupsRunning: LiveTaskInfo['groupsRunning'] = run.groups.map(() => []);
    for (const [key, startedAt] of run.startedNodes) {
      const cut = key.indexOf('\0');
      groupsRunning[Number(key.slice(0, cut))].push({ nodeId: key.slice(cut + 1), startedAt });
    }
    return {
      runningNodes: run.running,
      peakConcurrent: run.peak,
      groupsStarted: run.groups.map((g) => g.started),
      groupsRunning,
      waitingForSlot,
    };
  }

  /** The scheduler's state: policy, limit in force, slots in use, waiters, duration estimates. */
  async schedulerState(): Promise<SchedulerState> {
    return { ...(await this.dispatcher.state()), estimates: this.estimates.snapshot() };
  }

  /** Number of tasks running in this process. */
  get runningTasks(): number {
    return this.batches.size;
  }

  /** Stops accepting new batches (503) — the first step of a graceful shutdown. */
  stopAccepting(): void {
    this.acceptingWork = false;
  }

  get accepting(): boolean {
    return this.acceptingWork;
  }

  /** Resumes the `running` tasks a previous process left, and starts its `pending` ones. */
  async onApplicationBootstrap(): Promise<void> {
    await this.recovery.start();
  }

  /**
   * Shutdown: no new batches (503), no new node starts; running nodes get `shutdownGraceMs` to finish, then they are
   * aborted and left unrecorded; tasks with nodes left stay `running` for the next start to resume.
   */
  async onModuleDestroy(): Promise<void> {
    this.acceptingWork = false;
    await this.recovery.stop();
    await this.batches.shutdown();
  }
}
