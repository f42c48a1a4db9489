import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { type DomainEventMap, type DomainEventName, ServerPathRedactor, taskLog } from '../../common';
import { costOf, InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../../config';
import {
  type CanvasItemIds,
  EventLog,
  GeneratedNodes,
  InvalidStateTransitionError,
  isTerminal,
  type NodeCounts,
  type NodeResultRecord,
  TaskNotFoundError,
  type PerformanceMetrics,
  routingData,
  taskEvent,
  type TaskEventDraft,
  TaskStore,
  type TaskRecord,
  type TerminalStatus,
} from '../../session';
import { type BatchRun, type GroupProgress, nodeKey } from '../batch-run';
import { DurationEstimates } from '../concurrency/duration-estimates';
import type { BudgetView } from '../cost/pricing';
import { truncationView } from '../dto/task-status.dto';
import { runningProgressPercent, settledStatus } from '../status-rules';
import type { NodeOutcomeRecord } from './run.types';

/** How often `terminalWithin` looks at a task another process finalises. */
const TERMINAL_POLL_MS = 50;

/**
 * Outcome recording: every task event is built here (`taskEvent`, the one typed factory) and stored with what it
 * reports in one store operation, which publishes it once stored (`TaskStore` ops hand their events to the
 * `EventLog`; `EventLog.append` stores and publishes) — store, then publish. A batch's writes go one after the other in
 * the order they were asked for (`BatchRun.writes`), so its log keeps the order in which things were counted; node
 * outcomes finishing in one turn of the event loop are stored together. Also the batch's domain events, the learned
 * agent durations, and error texts as API clients see them.
 */
@Injectable()
export class OutcomeRecorder {
  private readonly logger = new Logger('BatchOrchestrator');
  /** Rewrites error texts for the API (status, events): no absolute server path (see `publicText`). */
  private redactor?: ServerPathRedactor;

  constructor(
    private readonly store: TaskStore,
    private readonly log: EventLog,
    private readonly emitter: EventEmitter2,
    private readonly estimates: DurationEstimates,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
    private readonly generated: GeneratedNodes,
  ) {}

  /**
   * Keeps the ids of the cards and edges a result of `run` puts on its canvas, before they are written: no card of
   * the service is ever on a canvas without its store knowing it (a node run again after a crash records the same
   * deterministic ids once more, harmlessly).
   */
  recordGenerated(run: BatchRun, items: CanvasItemIds): Promise<void> {
    return this.generated.record(run.canvas.relPath, run.taskId, items);
  }

  /** Moves a `pending` task to `running`, its deadline counting from now; throws for a missing or started task. */
  async recordStarted(taskId: string): Promise<TaskRecord> {
    const pending = await this.store.findTask(taskId);
    if (!pending) throw new TaskNotFoundError(taskId);
    if (pending.status !== 'pending')
      throw new InvalidStateTransitionError(taskId, pending.status, 'running');
    const startedAt = new Date();
    const deadlineAt = new Date(startedAt.getTime() + pending.timeoutMs);
    const { task } = await this.store.transition(taskId, 'running', {
      startedAt: startedAt.toISOString(),
      deadlineAt: deadlineAt.toISOString(),
    });
    return task;
  }

  /** The task as stored once the batch's writes asked for so far are done. */
  taskNow(run: BatchRun): Promise<TaskRecord> {
    return this.serial(run, async () => (await this.store.findTask(run.taskId)) ?? run.task);
  }

  /**
   * Counts a node's outcome and queues it with its event — and `group_completed` when it closes its group — to be
   * stored in one transaction with the others of this turn, then published.
   */
  recordNode(run: BatchRun, result: NodeOutcomeRecord): void {
    const group = run.count(result);
    const base = {
      node_id: result.nodeId,
      group_id: group.spec.groupId,
      // a node of an `auto` group: the agent it was routed to, and how
      agent_type: result.routing?.agentType ?? group.spec.agentType,
      ...(result.routing && { routing: routingData(result.routing) }),
    };
    const drafts: TaskEventDraft[] = [
      result.outcome === 'completed'
        ? taskEvent('task_completed', result.finishedAt, {
            ...base,
            file_path: result.filePath,
            file_size: result.fileSize,
            duration_ms: result.durationMs,
            ...(result.truncated && { truncated: truncationView(result.truncated) }),
            ...(result.cached && { cached: true }),
          })
        : taskEvent('task_failed', result.finishedAt, {
            ...base,
            error_message: result.errorMessage,
            error_type: result.errorType,
          }),
    ];
    const closing = this.closeGroup(run, group);
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
    run.storeScheduled ??= setImmediate(() => run.offPath(() => this.flush(run)));
  }

  /** Stores (then publishes) the outcomes counted so far; resolves once every write asked for before is done. */
  flush(run: BatchRun): Promise<void> {
    return this.serial(run, this.take(run));
  }

  /** Raises the task's stored peak concurrency to the run's (off the node's path). */
  recordPeak(run: BatchRun): void {
    const peak = run.peak;
    run.offPath(() => this.serial(run, () => this.store.recordPeak(run.taskId, peak)));
  }

  /**
   * `progress_update` with the counts as they are now (after the outcomes counted so far), the tokens billed so far
   * and, for a budgeted batch, its budget.
   */
  progress(run: BatchRun, concurrencyLimit: number, budget?: BudgetView): Promise<void> {
    const prices = this.options.tokenPrices;
    const outcomes = this.take(run);
    const total = run.task.totalNodes;
    const draft = taskEvent('progress_update', new Date().toISOString(), {
      progress_percent: runningProgressPercent(run.settled, total),
      completed_nodes: run.completed,
      failed_nodes: run.failed,
      total_nodes: total,
      running_nodes: run.running,
      concurrency_limit: concurrencyLimit,
      status: 'running',
      usage: {
        input_tokens: run.inputTokens,
        output_tokens: run.outputTokens,
        ...(prices && { cost_usd: costOf(prices, run.inputTokens, run.outputTokens) }),
      },
      ...(budget && { budget }),
    });
    return this.serial(run, async () => {
      await outcomes();
      await this.log.append(run.taskId, [draft]);
    });
  }

  /** The `error` event of a deadline that passed (after the outcomes counted before it). */
  deadlinePassed(run: BatchRun): Promise<void> {
    const outcomes = this.take(run);
    const draft = taskEvent('error', new Date().toISOString(), {
      error_type: 'TIMEOUT',
      message: `The batch deadline of ${run.task.timeoutMs / 1000} s passed: running nodes were aborted and the rest skipped`,
      recoverable: false,
    });
    return this.serial(run, async () => {
      await outcomes();
      await this.log.append(run.taskId, [draft]);
    });
  }

  /** Records every node without an outcome as skipped (why: the deadline or a cancel), and closes the groups. */
  recordSkipped(run: BatchRun, now: string): Promise<void> {
    const outcomes = this.take(run);
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
    const closings = run.groups.map((g) => this.closeGroup(run, g)).filter((e) => e !== undefined);
    return this.serial(run, async () => {
      await outcomes();
      if (skipped.length || closings.length)
        await this.store.recordNodeResults(run.taskId, skipped, closings);
    });
  }

  /** Stores the task's final status and metrics with its closing events (`cancelled` first when cancelled). */
  recordEnd(
    run: BatchRun,
    status: TerminalStatus,
    metrics: PerformanceMetrics,
    now: string,
  ): Promise<TaskRecord> {
    const drafts: TaskEventDraft[] = [];
    if (status === 'cancelled')
      drafts.push(taskEvent('cancelled', now, { status, completed_before_cancel: run.completed }));
    drafts.push(sessionCompleted(status, now, run, metrics));
    const patch = {
      completedAt: now,
      metrics,
      expiresAt: this.expiry(now),
      errorMessage:
        run.stopReason === 'deadline' ? `The batch deadline of ${run.task.timeoutMs / 1000} s passed` : null,
    };
    return this.serial(run, async () => {
      const { task } = await this.store.transition(run.taskId, status, patch, drafts);
      return task;
    });
  }

  /** Stores the task `failed` with its `error` and closing events (the outcomes counted before, if `withOutcomes`). */
  recordFailure(
    run: BatchRun,
    message: string,
    metrics: PerformanceMetrics,
    withOutcomes: boolean,
  ): Promise<TaskRecord> {
    const outcomes = withOutcomes ? this.take(run) : () => Promise.resolve();
    const now = new Date().toISOString();
    const drafts = [
      taskEvent('error', now, { error_type: 'EXECUTION_ERROR', message, recoverable: false }),
      sessionCompleted('failed', now, run, metrics),
    ];
    return this.serial(run, async () => {
      await outcomes();
      const { task } = await this.store.transition(
        run.taskId,
        'failed',
        { completedAt: now, errorMessage: message, metrics, expiresAt: this.expiry(now) },
        drafts,
      );
      return task;
    });
  }

  /** Ends a task no process runs (it never started) as cancelled. */
  async recordCancelledUnstarted(task: TaskRecord): Promise<TaskRecord> {
    const now = new Date().toISOString();
    const none = { completed: 0, failed: 0 };
    const { task: cancelled } = await this.store.transition(
      task.taskId,
      'cancelled',
      { completedAt: now, expiresAt: this.expiry(now) },
      [
        taskEvent('cancelled', now, { status: 'cancelled', completed_before_cancel: 0 }),
        sessionCompleted('cancelled', now, none, EMPTY_METRICS),
      ],
    );
    return cancelled;
  }

  /** Counts a resumption with its `resumed` event. */
  async recordResumed(task: TaskRecord, results: readonly NodeResultRecord[]): Promise<void> {
    await this.store.markResumed(
      task.taskId,
      taskEvent('resumed', new Date().toISOString(), {
        resume_count: task.resumeCount + 1,
        completed_nodes: results.filter((r) => r.outcome === 'completed').length,
        failed_nodes: results.filter((r) => r.outcome === 'failed').length,
        remaining_nodes: task.totalNodes - results.length,
      }),
    );
  }

  /** Stores the agent durations learned since the last save. */
  /** The task once terminal, if it gets there within `ms` (its owner may be another process); else as it is then. */
  async terminalWithin(taskId: string, ms: number): Promise<TaskRecord | undefined> {
    const until = Date.now() + ms;
    for (;;) {
      const task = await this.store.findTask(taskId);
      if (!task || isTerminal(task.status) || Date.now() >= until) return task;
      await new Promise((resolve) => setTimeout(resolve, TERMINAL_POLL_MS));
    }
  }

  /** Completed, failed and skipped counts as stored. */
  counts(taskId: string): Promise<NodeCounts> {
    return this.store.nodeCounts(taskId);
  }

  async saveDurations(): Promise<void> {
    await this.estimates.save();
  }

  /** Ends the live event feeds (subscribers reconnect and replay later); returns how many were open. */
  closeLiveFeeds(): number {
    return this.log.close();
  }

  emit<K extends DomainEventName>(name: K, payload: DomainEventMap[K]): void {
    try {
      this.emitter.emit(name, payload);
    } catch (err) {
      this.logger.error(taskLog(payload.taskId, `${name} listener failed: ${(err as Error).message}`));
    }
  }

  /**
   * An error text as it is stored and shown to API clients (status, events): paths in the vault made vault-relative,
   * in DATA_DIR `<DATA_DIR>/…`, any other absolute path `<server path>`.
   */
  publicText(text: string): string {
    this.redactor ??= new ServerPathRedactor(this.options);
    return this.redactor.redact(text);
  }

  /** The `group_completed` event when every node of the group has an outcome (once per group). */
  private closeGroup(run: BatchRun, group: GroupProgress): TaskEventDraft<'group_completed'> | undefined {
    if (group.finished || group.completed + group.failed + group.skipped < group.total) return undefined;
    group.finished = true;
    group.settle();
    return taskEvent('group_completed', new Date().toISOString(), {
      group_id: group.spec.groupId,
      agent_type: group.spec.agentType,
      status: settledStatus(group, run.stopReason === 'cancel'),
      completed_nodes: group.completed,
      failed_nodes: group.failed,
    });
  }

  /** Takes the outcomes counted but not stored yet (now), and returns the write that stores then publishes them. */
  private take(run: BatchRun): () => Promise<void> {
    if (run.storeScheduled) clearImmediate(run.storeScheduled);
    run.storeScheduled = undefined;
    const { results, drafts } = run.unstored;
    if (!results.length) return () => Promise.resolve();
    run.unstored.results = [];
    run.unstored.drafts = [];
    return async () => {
      await this.store.recordNodeResults(run.taskId, results, drafts);
    };
  }

  /** Runs `work` after every write of the batch asked for before it. */
  private serial<T>(run: BatchRun, work: () => Promise<T>): Promise<T> {
    const done = run.writes.then(work);
    run.writes = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  private expiry(fromIso: string): string {
    return new Date(Date.parse(fromIso) + this.options.sessionTtlMinutes * 60_000).toISOString();
  }
}

const EMPTY_METRICS: PerformanceMetrics = {
  total_duration_seconds: 0,
  average_duration_per_node: 0,
  parallel_efficiency: 0,
  peak_concurrent: 0,
};

function sessionCompleted(
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
