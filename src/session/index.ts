export { SessionModule } from './session.module';
export { TaskStore, type EventDraft, type IdempotencyClaim, type NodeCounts } from './task-store';
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
  type TaskStatus,
  type TerminalStatus,
  type NodeErrorType,
  type GroupSpec,
  type PerformanceMetrics,
  type TokenTotals,
  type TaskRecord,
  type NodeOutcome,
  type NodeResultRecord,
  type TaskEventRecord,
  type NewTask,
} from './task.types';
