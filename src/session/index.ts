export { SessionModule } from './session.module';
export {
  SESSION_OPTIONS,
  RESULT_CACHE_DEFAULTS,
  type SessionModuleOptions,
} from './session.module-definition';
export { SqliteTaskStore } from './sqlite-task-store';
export { InMemoryTaskStore } from './in-memory-task-store';
export { EventLog, REPLAY_PAGE, replayLog, type LogReader, type ReplayEnd } from './event-log';
export { SqliteEventLog, insertTaskEvents } from './sqlite-event-log';
export { InMemoryEventLog, type InMemoryEventLogOptions } from './in-memory-event-log';
export { RedisEventLog, type RedisEventLogOptions } from './redis-event-log';
export { RedisTaskStore } from './redis-task-store';
export {
  GeneratedNodes,
  type CanvasItemIds,
  type GeneratedItem,
  type GeneratedItems,
} from './generated-nodes';
export { SqliteGeneratedNodes } from './sqlite-generated-nodes';
export { BudgetLedger, type BudgetAccount, type BudgetReservation, microUsd } from './budget-ledger';
export { SqliteBudgetLedger } from './sqlite-budget-ledger';
export { InMemoryBudgetLedger } from './in-memory-budget-ledger';
export { RedisBudgetLedger } from './redis-budget-ledger';
export { InMemoryGeneratedNodes } from './in-memory-generated-nodes';
export { RedisGeneratedNodes } from './redis-generated-nodes';
export { ResultCache, type CachedResult, type ResultCacheLimits } from './result-cache';
export { SqliteResultCache } from './sqlite-result-cache';
export { InMemoryResultCache } from './in-memory-result-cache';
export { RedisResultCache } from './redis-result-cache';
export {
  TASK_EVENT_TYPES,
  isTaskEventType,
  taskEvent,
  asTaskEvent,
  type TaskEventType,
  type TaskEventPayloads,
  type TaskEventDraft,
  type TaskEvent,
  type WireTaskEvent,
  type TruncationData,
  type ProgressUpdateData,
  type TaskCompletedData,
  type TaskFailedData,
  type GroupCompletedData,
  type CancelledData,
  type ErrorData,
  type ResumedData,
  type SessionCompletedData,
  type RoutingData,
  routingData,
} from './task-events';
export {
  TaskStore,
  type AgentDurationRecord,
  type CancelRequest,
  type EventDraft,
  type IdempotencyClaim,
  type NodeCounts,
} from './task-store';
export {
  TaskNotFoundError,
  InvalidTaskIdError,
  InvalidStateTransitionError,
  TaskAlreadyFinishedError,
  IdempotencyKeyReusedError,
} from './task.errors';
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
  type NodeRouting,
  type TaskEventRecord,
  type NewTask,
} from './task.types';
