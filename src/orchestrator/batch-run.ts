import type { ResolvedCanvasPath } from '../canvas';
import type { GroupSpec, NodeErrorType, NodeResultRecord, TaskRecord } from '../session';
import { SlotLimiter } from './concurrency/slot-limiter';
import type { TaskEventDraft } from './task-events';

/** Why a batch stops dispatching: a cancel request, its deadline, or the process shutting down. */
export type StopReason = 'cancel' | 'deadline' | 'shutdown';

/**
 * The reason given to a node's `AbortSignal`. `SHUTDOWN` is not a failure: the node is left unrecorded and runs
 * again when the next process resumes the task.
 */
export class NodeAbort extends Error {
  constructor(
    readonly errorType: Extract<NodeErrorType, 'CANCELLED' | 'TIMEOUT' | 'AGENT_TIMEOUT'> | 'SHUTDOWN',
    message: string,
  ) {
    super(message);
    this.name = 'NodeAbort';
  }
}

export interface GroupProgress {
  spec: GroupSpec;
  total: number;
  completed: number;
  failed: number;
  skipped: number;
  started: number;
  finished: boolean;
}

const ABORTS: Record<StopReason, NodeAbort> = {
  cancel: new NodeAbort('CANCELLED', 'the batch was cancelled (mode=abort) while this node was running'),
  deadline: new NodeAbort('TIMEOUT', 'the batch deadline passed while this node was running'),
  shutdown: new NodeAbort(
    'SHUTDOWN',
    'the service shut down while this node was running; it runs again on resume',
  ),
};

/** In-memory state of one running task: counters, slots, timers, abort controllers. */
export class BatchRun {
  stopReason: StopReason | undefined;
  running = 0;
  /** Every node left to run has been started (or the batch stopped starting them). */
  allStarted = false;
  peak = 0;
  completed = 0;
  failed = 0;
  skipped = 0;
  sumDurationMs = 0;
  ran = 0;
  inputTokens = 0;
  outputTokens = 0;
  readonly groups: GroupProgress[];
  /** `groupIndex\0nodeId` of every node with a stored outcome: never dispatched again. */
  readonly recorded = new Set<string>();
  readonly nodeControllers = new Set<AbortController>();
  readonly timers: NodeJS.Timeout[] = [];
  startedAtMs = 0;
  /**
   * Node outcomes counted but not stored yet, with their events: the nodes that finish in one turn of the event
   * loop are stored in one transaction (then published), not one each.
   */
  readonly unstored: { results: NodeResultRecord[]; drafts: TaskEventDraft[] } = { results: [], drafts: [] };
  storeScheduled: NodeJS.Immediate | undefined;
  /** Set when a timer's work for the batch (storing outcomes, progress, deadline) failed; the batch fails with it. */
  timerError: Error | undefined;
  /** Resolves with the task once this process is done with it (terminal, or left running by a shutdown). */
  readonly done: Promise<TaskRecord>;
  resolveDone!: (task: TaskRecord) => void;
  /**
   * Nodes between their start and their result file being written: twice the batch's cap. A node gives its agent
   * slots back when its agent call ends, so the next agents start while results are written; this bound keeps a
   * batch of fast agents from piling thousands of file writes onto the thread pool at once.
   */
  readonly writeSlots: SlotLimiter;

  constructor(
    readonly task: TaskRecord,
    readonly canvas: ResolvedCanvasPath,
    readonly batchSlots: SlotLimiter,
  ) {
    this.writeSlots = new SlotLimiter(2 * batchSlots.capacity);
    this.groups = task.groups.map((spec) => ({
      spec,
      total: spec.nodeIds.length,
      completed: 0,
      failed: 0,
      skipped: 0,
      started: 0,
      finished: false,
    }));
    this.peak = task.peakConcurrent;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get taskId(): string {
    return this.task.taskId;
  }

  get settled(): number {
    return this.completed + this.failed + this.skipped;
  }

  /** Counts an outcome (live, or restored from the store on resume). */
  count(result: NodeResultRecord): GroupProgress {
    const group = this.groups[result.groupIndex];
    this.recorded.add(nodeKey(result.groupIndex, result.nodeId));
    if (result.outcome === 'completed') {
      this.completed++;
      group.completed++;
      this.inputTokens += result.inputTokens;
      this.outputTokens += result.outputTokens;
    } else if (result.outcome === 'failed') {
      this.failed++;
      group.failed++;
    } else {
      this.skipped++;
      group.skipped++;
    }
    if (result.outcome !== 'skipped') {
      this.ran++;
      this.sumDurationMs += result.durationMs ?? 0;
    }
    return group;
  }

  /** Restores counters from stored outcomes; groups whose nodes are all stored were closed then. */
  restore(results: readonly NodeResultRecord[]): void {
    for (const r of results) {
      const group = this.count(r);
      group.started++;
    }
    for (const g of this.groups) g.finished = g.completed + g.failed + g.skipped === g.total;
  }

  /** Stops dispatching; with `abortRunning`, aborts the nodes that are running too. */
  stop(reason: StopReason, abortRunning: boolean): void {
    this.stopReason ??= reason;
    if (!abortRunning) return;
    for (const c of this.nodeControllers) c.abort(ABORTS[reason]);
  }

  clearTimers(): void {
    this.timers.forEach(clearTimeout);
    this.timers.length = 0;
    if (this.storeScheduled) clearImmediate(this.storeScheduled);
    this.storeScheduled = undefined;
  }
}

export function nodeKey(groupIndex: number, nodeId: string): string {
  return `${groupIndex}\0${nodeId}`;
}
