export { SessionModule } from './session.module';
export { SqliteTaskStore } from './sqlite-task-store';
export {
  TaskStore,
  type AgentDurationRecord,
  type CancelRequest,
  type EventDraft,
  type IdempotencyClaim,
  type NodeCounts,
} from './task-store';
export {
  SessionNotFoundError,
  InvalidTaskIdError,
  InvalidStateTransitionError,
  TaskAlreadyFinishedError,
  IdempotencyKeyReusedError,
} from './session.errors';
export {
  TASK_STATUSES,
  NODE_ERROR_TYPES,
  isTerminal,
  isTaskId,
  type TaskStatus,
  type TerminalStatus,
  type NodeErrorType,
  type GroupSpec,
  type PerformanceMetrics,
  type TokenTotals,
  type TaskRecord,
  type NodeOutcome,
  type NodeResultRecord,
  type NodeTruncation,
  type TaskEventRecord,
  type NewTask,
} from './task.types';
