import type { AgentStructuredOutput, ProviderFeedback } from '../../agent';
import type { NodeErrorType, NodeRouting, NodeTruncation } from '../../session';

/**
 * How the global slots are shared between batches: round-robin between batches (`fair`), to the batch with the least
 * expected work not started yet (`least-work`), or to the longest waiter (`fifo`). Within a batch, jobs start
 * longest-expected-first except under `fifo`.
 */
export type SchedulingPolicy = 'fair' | 'least-work' | 'fifo';

/**
 * One node to run, as plain data: what a queue stores and what a worker in any process needs to run it (the task, the
 * group, the node, the canvas it is on, the batch's deadline). `expectedMs` orders a batch's jobs (longest expected
 * first).
 */
export interface NodeJob {
  taskId: string;
  groupIndex: number;
  /** The group's `group_id` as submitted (for the node's `task_output_delta` events; absent in older jobs). */
  groupId?: string | number;
  nodeId: string;
  agentType: string;
  expectedMs: number;
  /** The canvas, vault-relative: resolved (and checked) again by the worker that runs the job. */
  canvasPath: string;
  /** The batch's deadline (ISO time), or null. */
  deadlineAt: string | null;
  /** `false`: the batch opted out of the result cache (`cache: false`). Default true. */
  cache?: boolean;
  /** The batch's budget in USD, when it has one: the node reserves its expected cost before its agent call. */
  budgetUsd?: number;
}

/**
 * What running a node produced, as data: it travels from the worker that ran the job (any process) to the batch's
 * owner, which writes the result file, places the card on the canvas and records the outcome — so a job holds its
 * global slot for its agent call only (a queue job cannot give its slot back before it ends). `not-started`: the job found its task
 * stopped and did nothing; `shutdown`: this process's shutdown aborted it (left unrecorded, it runs again).
 */
export type NodeRunResult =
  | { kind: 'not-started' }
  | { kind: 'shutdown' }
  | {
      kind: 'completed';
      startedAt: string;
      finishedAt: string;
      durationMs: number;
      concept: string;
      /** The result file's heading and text (capped): the owner writes the file and the card. */
      title: string;
      markdown: string;
      structured?: AgentStructuredOutput;
      inputTokens: number;
      outputTokens: number;
      attempts: number;
      truncated?: NodeTruncation;
      /** The output came from the result cache: no provider call, no tokens. */
      cached?: true;
      /** A node of an `auto` group: the agent it was routed to. */
      routing?: NodeRouting;
    }
  | {
      kind: 'failed';
      startedAt: string;
      finishedAt: string;
      durationMs: number;
      errorType: NodeErrorType;
      /** Already fit for API clients (no server path). */
      errorMessage: string;
      inputTokens: number;
      outputTokens: number;
      attempts: number;
      routing?: NodeRouting;
    };

/**
 * What the batch's owner hears of its jobs, in its own process whichever process runs them: a job started (holds
 * its slots), its agent phase ended, it ended with its result. `run` resolves once every `ended` has settled.
 */
export interface BatchHooks {
  started?(job: NodeJob): void;
  agentEnded?(job: NodeJob): void;
  ended?(job: NodeJob, result: NodeRunResult | undefined): Promise<void> | void;
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

/**
 * Executes one job and says what it produced; registered once, in every process that works. It catches its own
 * errors (a rejection is logged, and the job ends without a result).
 */
export type JobHandler = (job: NodeJob, ctx: JobContext) => Promise<NodeRunResult | undefined | void>;

/** Hears that another process stopped `taskId` (with the reason, when it aborted its running jobs). */
export type RemoteStopListener = (taskId: string, abortReason?: Error) => void;

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
   * Queues a batch's jobs (called in the process that owns the batch); resolves once every one of them has ended
   * (and its `hooks.ended` settled) or was dropped by `stop` (never rejects for a job's failure).
   */
  abstract run(batch: DispatchBatch, jobs: readonly NodeJob[], hooks?: BatchHooks): Promise<void>;
  /**
   * No job of the task starts after this resolves, in any process (in-process: at once; on a queue, once every
   * process has acknowledged it); running ones go on.
   */
  abstract stop(taskId: string): Promise<void>;
  /**
   * This process stops dispatching the task without stopping it elsewhere (its shutdown, a lost lease): `run`
   * resolves soon after, and on a queue the task's queued and running jobs stay for the process that takes the batch
   * over. In-process: the same as `stop`.
   */
  abstract release(taskId: string): Promise<void>;
  /**
   * Aborts the task's running jobs (their `signal` aborts with `reason`): in every process (`cluster`: a cancel, the
   * deadline) or in this one only (`process`: its shutdown).
   */
  abstract abort(taskId: string, reason: Error, scope?: 'cluster' | 'process'): Promise<void>;
  /**
   * Registers who hears of stops made by other processes (a cancel received by another replica), with the abort
   * reason when that process aborted the running jobs too. In-process there are no others: never called.
   */
  onRemoteStop(listener: RemoteStopListener): void {
    void listener;
  }
  /**
   * This process's worker shuts down: it takes no more jobs; running ones get `graceMs` to end, then they are
   * aborted (reason: `abortWith`) and, on a queue, handed back for another worker. In-process, the batch runner does
   * this itself (it owns every running job): nothing to do.
   */
  close(graceMs: number, abortWith: Error): Promise<void> {
    void graceMs;
    void abortWith;
    return Promise.resolve();
  }
  /** Sets the global limit in force, within 1..capacity; lowering it takes effect as running jobs end. */
  abstract setLimit(limit: number): Promise<void>;
  abstract state(): Promise<DispatcherState>;
  /** Jobs of one task holding its batch slot and waiting for a global one (0 under `fifo`, which keeps no turns). */
  abstract waitingFor(taskId: string): Promise<number>;
}

/**
 * The order a batch's jobs start in: longest expected first (stable: submission order among equals) —
 * longest-processing-time-first, which ends a batch closest to max(longest node, work / cap) — or submission order
 * under `fifo`. Both adapters start a batch's jobs in it.
 */
export function startOrder(jobs: readonly NodeJob[], policy: SchedulingPolicy): readonly NodeJob[] {
  if (policy === 'fifo') return jobs;
  return jobs
    .map((job, index) => ({ job, index }))
    .sort((a, b) => b.job.expectedMs - a.job.expectedMs || a.index - b.index)
    .map(({ job }) => job);
}
