import type { GroupSpec, NodeErrorType, NodeResultRecord, TaskRecord, TaskStatus } from '../../session';
import type { DurationEstimate } from '../concurrency/duration-estimates';
import type { DispatcherState } from '../dispatch/dispatcher';

/** A batch as another Nest service (or the REST controller) submits it. */
export interface BatchRequest {
  canvasPath: string;
  groups: GroupSpec[];
  /** This batch's own cap, 1..50. Default 12. */
  maxConcurrent?: number;
  /** The whole batch's deadline in ms. HTTP accepts 60..3600 s; in-process callers may pass any positive value. */
  timeoutMs?: number;
  /**
   * The batch's spending limit in USD (≥ 0): no node starts whose expected cost would take spent + reserved past
   * it (those fail with `BUDGET_EXCEEDED`). Needs a known price.
   */
  budgetUsd?: number;
  idempotencyKey?: string;
  /** `false`: this batch neither reuses cached outputs nor stores new ones (the result cache). Default true. */
  cache?: boolean;
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
  /** Per group, the nodes started and not settled yet, with when they started (epoch ms). */
  groupsRunning: { nodeId: string; startedAt: number }[][];
  /** Nodes of this batch holding its own slot and waiting for a global one. */
  waitingForSlot: number;
}

/** The scheduler's state: the dispatcher's figures and the learned duration estimates. */
export interface SchedulerState extends DispatcherState {
  estimates: Record<string, DurationEstimate>;
}

/** One group's outcome counts, and its status (`running` while nodes are left). */
export interface GroupAggregate {
  groupId: GroupSpec['groupId'];
  agentType: string;
  status: TaskStatus;
  total: number;
  completed: number;
  failed: number;
  skipped: number;
}

/** A task's outcome counts, per group and in all. */
export interface TaskAggregate {
  taskId: string;
  status: TaskStatus;
  total: number;
  completed: number;
  failed: number;
  skipped: number;
  groups: GroupAggregate[];
}

/** A node's outcome as node execution reports it: a completed one has its file and duration, a failed one its error. */
export type NodeOutcomeRecord = NodeResultRecord &
  (
    | { outcome: 'completed'; filePath: string; fileSize: number; durationMs: number }
    | { outcome: 'failed'; errorMessage: string; errorType: NodeErrorType }
  );

export const DEFAULT_MAX_CONCURRENT = 12;
export const DEFAULT_TIMEOUT_MS = 600_000;
