import type { ProviderFeedback } from '../../agent';

/** How the global slots are shared between batches: round-robin between batches (`fair`) or to the longest waiter. */
export type SchedulingPolicy = 'fair' | 'fifo';

/**
 * One node to run, as plain data: what a queue stores and what a worker needs to find the node again (the task, the
 * group, the node). `expectedMs` orders a batch's jobs under `fair` (longest expected first).
 */
export interface NodeJob {
  taskId: string;
  groupIndex: number;
  nodeId: string;
  agentType: string;
  expectedMs: number;
}

/** A batch as the dispatcher sees it: its task and its own cap (`max_concurrent`). */
export interface DispatchBatch {
  taskId: string;
  maxConcurrent: number;
}

/**
 * What the handler gets with each job. It owns the slot lifecycle: it gives the agent slots (the batch's and the
 * global one) back when its agent call ends, and the write slot once its result file is written, so the next agents
 * start while results are written. Both are idempotent; whatever is still held is released when the handler settles.
 */
export interface JobContext {
  /** Aborts (with the reason given to `abort`) when the task's running jobs are aborted. */
  readonly signal: AbortSignal;
  /** Feedback for the global limit (AIMD): a 429 lowers it, successes raise it again. */
  readonly feedback: ProviderFeedback;
  releaseAgentSlots(): void;
  releaseWriteSlot(): void;
}

/** Executes one job; registered once. It catches its own errors (a rejection is logged and dropped). */
export type JobHandler = (job: NodeJob, ctx: JobContext) => Promise<void>;

/** The scheduler's figures (status, metrics, health). */
export interface DispatcherState {
  policy: SchedulingPolicy;
  /** The global limit in force now (≤ capacity; lowered by 429s). */
  limit: number;
  /** `GLOBAL_MAX_CONCURRENT`. */
  capacity: number;
  /** Global slots held now. */
  inUse: number;
  /** Jobs holding their batch's slot and waiting for a global one. */
  waiting: number;
}

/**
 * Port: the execution backend. Runs a batch's node jobs under the batch's cap and the global cap
 * (`GLOBAL_MAX_CONCURRENT`: process-wide in the in-process adapter, cluster-wide in a queue-backed one), sharing
 * the global slots round-robin between batches (`fair`) or FIFO, and starting a batch's jobs longest-expected-first
 * under `fair` (submission order among equals, and under `fifo`). A job starts only once it holds every slot and
 * its task is not stopped. Every adapter passes `dispatcher.contract.ts`.
 *
 * Everything crossing the port is data (jobs, task ids, reasons); the one handler is registered at start, so a
 * queue worker in another process runs the same code.
 */
export abstract class Dispatcher {
  /** Registers the handler that executes every job (once, before the first `run`). */
  abstract handle(handler: JobHandler): void;
  /**
   * Queues a batch's jobs; resolves once every one of them has ended or was dropped by `stop` (never rejects for a
   * job's failure).
   */
  abstract run(batch: DispatchBatch, jobs: readonly NodeJob[]): Promise<void>;
  /** No job of the task starts after this resolves (in-process: at once); running ones go on. */
  abstract stop(taskId: string): Promise<void>;
  /** Aborts the task's running jobs: their `signal` aborts with `reason`. */
  abstract abort(taskId: string, reason: Error): Promise<void>;
  /** Sets the global limit in force, within 1..capacity; lowering it takes effect as running jobs end. */
  abstract setLimit(limit: number): Promise<void>;
  abstract state(): Promise<DispatcherState>;
  /** Jobs of one task holding its batch slot and waiting for a global one (0 under `fifo`, which keeps no turns). */
  abstract waitingFor(taskId: string): Promise<number>;
}
