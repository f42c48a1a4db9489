import type {
  NewTask,
  NodeOutcome,
  NodeResultRecord,
  TaskEventRecord,
  TaskRecord,
  TaskStatus,
  TransitionPatch,
} from './task.types';

export interface IdempotencyClaim {
  key: string;
  /** Fingerprint of the request body; a repeat with another body is refused. */
  requestHash: string;
}

export interface GroupOutcomeSummary {
  groupIndex: number;
  outcome: NodeOutcome;
  count: number;
  inputTokens: number;
  outputTokens: number;
  sumDurationMs: number;
}

/** What a cancel request found: no such task, a finished one (left as it is), or one whose cancel is now recorded. */
export type CancelRequest =
  | { outcome: 'not-found' }
  | { outcome: 'finished'; task: TaskRecord }
  | { outcome: 'requested'; task: TaskRecord };

/**
 * Port: where tasks, their per-node outcomes, idempotency keys and learned agent durations live (abstract class =
 * DI token). Methods are named for intentions and each is atomic; the operations that also append task events
 * (`transition`, `recordNodeResult(s)`, `markResumed`) store outcome and events together and hand the stored events
 * to the `EventLog` (its live side) before they resolve. Adapters: SQLite (embedded engine), in-memory (unit tests);
 * every adapter passes `task-store.contract.ts`.
 */
export abstract class TaskStore {
  /**
   * Stores a new `pending` task. With an idempotency claim whose key was seen before, stores nothing and returns
   * the earlier task (`created: false`); throws `IdempotencyKeyReusedError` when that key came with another body.
   */
  abstract createTask(
    task: NewTask,
    idempotency?: IdempotencyClaim,
  ): Promise<{ task: TaskRecord; created: boolean }>;
  abstract findTask(taskId: string): Promise<TaskRecord | undefined>;
  /** The task's status alone (cheap: its groups and node ids are not read). */
  abstract taskStatus(taskId: string): Promise<TaskStatus | undefined>;
  /** Newest first. */
  abstract listTasks(filter: { status?: TaskStatus; limit: number }): Promise<TaskRecord[]>;
  /** Moves a task along its state machine (throws `InvalidStateTransitionError`), optionally appending events. */
  abstract transition(
    taskId: string,
    to: TaskStatus,
    patch?: TransitionPatch,
    events?: readonly EventDraft[],
  ): Promise<{ task: TaskRecord; events: TaskEventRecord[] }>;
  /**
   * Records one node's outcome with its events (its `task_completed`/`task_failed`, and `group_completed` when it
   * closes its group) in one transaction: after a crash, either all of them are stored or none.
   */
  abstract recordNodeResult(
    taskId: string,
    result: NodeResultRecord,
    events: readonly EventDraft[],
  ): Promise<TaskEventRecord[]>;
  /** Records several outcomes (e.g. nodes skipped by a cancel) with their events, in one transaction. */
  abstract recordNodeResults(
    taskId: string,
    results: readonly NodeResultRecord[],
    events: readonly EventDraft[],
  ): Promise<TaskEventRecord[]>;
  abstract nodeResults(taskId: string): Promise<NodeResultRecord[]>;
  /** Completed, failed and skipped node counts of a task. */
  abstract nodeCounts(taskId: string): Promise<NodeCounts>;
  /** Per group and outcome: node count, token and duration sums (one aggregate row each, computed in the store). */
  abstract resultSummary(taskId: string): Promise<GroupOutcomeSummary[]>;
  /** One page of a group's results of one outcome, in the order they finished. */
  abstract nodeResultsPage(
    taskId: string,
    groupIndex: number,
    outcome: NodeOutcome,
    offset: number,
    limit: number,
  ): Promise<NodeResultRecord[]>;
  /** Tasks a process must pick up at start: `running` (interrupted) and `pending`, oldest first. */
  abstract unfinishedTasks(): Promise<TaskRecord[]>;
  /** Counts a resumption and appends its event, in one transaction. */
  abstract markResumed(taskId: string, event: EventDraft): Promise<TaskEventRecord>;
  /** Raises the task's recorded peak concurrency (never lowers it). */
  abstract recordPeak(taskId: string, peak: number): Promise<void>;
  /**
   * A cancel request in one atomic step: the task as it is, and — unless it is missing or already finished — its
   * cancel remembered (survives a restart; a first request's mode is kept).
   */
  abstract requestCancel(taskId: string, mode: 'graceful' | 'abort'): Promise<CancelRequest>;
  /** Deletes finished tasks whose retention ended before `now`; returns their ids. */
  abstract deleteExpired(now: Date): Promise<string[]>;
  /** How many stored tasks are in each status (every status present, zero when none). */
  abstract statusCounts(): Promise<Record<TaskStatus, number>>;
  /** The learned duration of every agent type (the scheduler's estimates, kept across restarts). */
  abstract agentDurations(): Promise<AgentDurationRecord[]>;
  /**
   * Stores these agent types' estimates (each replacing the one before), in one transaction. `false` when the
   * store is closed already (shutdown), and nothing was written.
   */
  abstract saveAgentDurations(durations: AgentDurationRecord[]): Promise<boolean>;
}

/** One agent type's learned duration: an exponentially weighted mean over `samples` completed nodes. */
export interface AgentDurationRecord {
  agentType: string;
  meanMs: number;
  samples: number;
  /** Output tokens one node of this type reported, the same kind of mean (absent before any was seen). */
  meanOutputTokens?: number;
  outputSamples?: number;
}

export interface NodeCounts {
  completed: number;
  failed: number;
  skipped: number;
}

export interface EventDraft {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}
