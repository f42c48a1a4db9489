import type { ResolvedCanvasPath } from '../canvas/vault.service';
import type { GroupSpec, NodeErrorType, TaskRecord } from '../session/task.types';
import type { SlotLimiter } from './concurrency/slot-limiter';

/** Why a batch stops dispatching: a cancel request or its deadline. */
export type StopReason = 'cancel' | 'deadline';

/** The reason given to a node's `AbortSignal`. */
export class NodeAbort extends Error {
  constructor(
    readonly errorType: Extract<NodeErrorType, 'CANCELLED' | 'TIMEOUT' | 'AGENT_TIMEOUT'>,
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

/** In-memory state of one running task: counters, slots, timers, abort controllers. */
export class BatchRun {
  stopReason: StopReason | undefined;
  running = 0;
  peak = 0;
  completed = 0;
  failed = 0;
  skipped = 0;
  sumDurationMs = 0;
  ran = 0;
  inputTokens = 0;
  outputTokens = 0;
  readonly groups: GroupProgress[];
  readonly nodeControllers = new Set<AbortController>();
  readonly timers: NodeJS.Timeout[] = [];
  startedAtMs = 0;
  /** Resolves with the final task once `session_completed` is stored. */
  readonly done: Promise<TaskRecord>;
  resolveDone!: (task: TaskRecord) => void;

  constructor(
    readonly task: TaskRecord,
    readonly canvas: ResolvedCanvasPath,
    readonly batchSlots: SlotLimiter,
  ) {
    this.groups = task.groups.map((spec) => ({
      spec,
      total: spec.nodeIds.length,
      completed: 0,
      failed: 0,
      skipped: 0,
      started: 0,
      finished: false,
    }));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get taskId(): string {
    return this.task.taskId;
  }

  get settled(): number {
    return this.completed + this.failed + this.skipped;
  }

  /** Stops dispatching; with `abortRunning`, aborts the nodes that are running too. */
  stop(reason: StopReason, abortRunning: boolean): void {
    this.stopReason ??= reason;
    if (!abortRunning) return;
    const abort =
      reason === 'deadline'
        ? new NodeAbort('TIMEOUT', 'the batch deadline passed while this node was running')
        : new NodeAbort('CANCELLED', 'the batch was cancelled (mode=abort) while this node was running');
    for (const c of this.nodeControllers) c.abort(abort);
  }

  clearTimers(): void {
    this.timers.forEach(clearTimeout);
    this.timers.length = 0;
  }
}
