export { OrchestratorModule } from './orchestrator.module';
export {
  BatchOrchestrator,
  type BatchRequest,
  type SubmitResult,
  type CancelResult,
  type LiveTaskInfo,
} from './batch-orchestrator.service';
export { TaskViewService } from './task-view.service';
export { TaskEventStream, type SseMessage, type WireEvent } from './task-event-stream';
export { SseFanout } from './sse-fanout';
export { TaskEventBus } from './task-event-bus';
export { GlobalSlots } from './concurrency/slot-limiter';
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
  type ProgressUpdateData,
  type TaskCompletedData,
  type TaskFailedData,
  type GroupCompletedData,
  type CancelledData,
  type ErrorData,
  type ResumedData,
  type SessionCompletedData,
} from './task-events';
export { ShuttingDownError, BatchValidationError } from './orchestrator.errors';
export type { CanvasBatchOptions } from '../config';
export type * from './dto/task-status.dto';
