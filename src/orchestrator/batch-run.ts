import type { ResolvedCanvasPath } from '../canvas';
import type { GroupSpec, NodeErrorType, NodeResultRecord, TaskEventDraft, TaskRecord } from '../session';

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
  /** Its `group_completed` was counted (every node has an outcome). */
  finished: boolean;
  /** Resolves once `finished` is set. */
  readonly settled: Promise<void>;
  settle(): void;
}

export const ABORTS: Record<StopReason, NodeAbort> = {
  cancel: new NodeAbort('CANCELLED', 'the batch was cancelled (mode=abort) while this node was running'),
  deadline: new NodeAbort('TIMEOUT', 'the batch deadline passed while this node was running'),
  shutdown: new NodeAbort(
    'SHUTDOWN',
    'the service shut down while this node was running; it runs again on resume',
  ),
};

/** What stopping a batch does to its jobs: none starts any more, and with `abortWith` the running ones abort. */
export type StopJobs = (reason: StopReason, abortWith: NodeAbort | undefined) => void;

/** In-memory state of one running task: counters, timers, the order of its store writes. */
export class BatchRun {
  stopReason: StopReason | undefined;
  /** Nodes in their agent phase now. */
  running = 0;
  /** Jobs handed to the dispatcher, and how many of them started. */
  toDispatch = 0;
  dispatched = 0;
  peak = 0;
  completed = 0;
  failed = 0;
  skipped = 0;
  sumDurationMs = 0;
  ran = 0;
  inputTokens = 0;
  outputTokens = 0;
  readonly groups: GroupProgress[];
  /** `groupIndex\0nodeId` of the nodes counted as started and not settled yet, with when they started (epoch ms). */
  readonly startedNodes = new Map<string, number>();
  /** `groupIndex\0nodeId` of every node with a stored outcome: never dispatched again. */
  readonly recorded = new Set<string>();
  readonly timers: NodeJS.Timeout[] = [];
  startedAtMs = 0;
  /**
   * Node outcomes counted but not stored yet, with their events: the nodes that finish in one turn of the event
   * loop are stored in one transaction (then published), not one each.
   */
  readonly unstored: { results: NodeResultRecord[]; drafts: TaskEventDraft[] } = { results: [], drafts: [] };
  storeScheduled: NodeJS.Immediate | undefined;
  /** The task's store writes, one after the other, in the order they were asked for (the event log's order). */
  writes: Promise<void> = Promise.resolve();
  /** Set when a timer's work for the batch (storing outcomes, progress, deadline) failed; the batch fails with it. */
  timerError: Error | undefined;
  /** Resolves with the task once this process is done with it (terminal, or left running by a shutdown). */
  readonly done: Promise<TaskRecord>;
  resolveDone!: (task: TaskRecord) => void;

  constructor(
    readonly task: TaskRecord,
    readonly canvas: ResolvedCanvasPath,
    private readonly stopJobs: StopJobs,
  ) {
    this.groups = task.groups.map((spec) => {
      let settle!: () => void;
      const settled = new Promise<void>((resolve) => (settle = resolve));
      return {
        spec,
        total: spec.nodeIds.length,
        completed: 0,
        failed: 0,
        skipped: 0,
        started: 0,
        finished: false,
        settled,
        settle,
      };
    });
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
    // every outcome's tokens: a failed node's calls are billed too
    this.inputTokens += result.inputTokens;
    this.outputTokens += result.outputTokens;
    if (result.outcome === 'completed') {
      this.completed++;
      group.completed++;
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
    for (const g of this.groups) {
      g.finished = g.completed + g.failed + g.skipped === g.total;
      if (g.finished) g.settle();
    }
  }

  /** Stops dispatching; with `abortRunning`, aborts the nodes that are running too. */
  stop(reason: StopReason, abortRunning: boolean): void {
    this.stopReason ??= reason;
    this.stopJobs(reason, abortRunning ? ABORTS[reason] : undefined);
  }

  /**
   * Work done for the batch off its own path (a timer's: storing outcomes, progress, the deadline): a failure (e.g.
   * the database refusing a write) must not escape as an unhandled rejection. It stops the batch (running nodes
   * aborted) and fails it once dispatching has ended, as an error thrown on the batch's own path would.
   */
  offPath(work: () => Promise<unknown>): void {
    const fail = (err: unknown): void => {
      this.timerError ??= err instanceof Error ? err : new Error(String(err));
      this.stop('cancel', true);
    };
    try {
      work().catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  /** The last result of the batch: no node in its agent phase, and none left to start. */
  get lastResult(): boolean {
    return this.running === 0 && (this.dispatched >= this.toDispatch || this.stopReason !== undefined);
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
