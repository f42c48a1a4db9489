export { OrchestratorModule } from './orchestrator.module';
export {
  BatchOrchestrator,
  type BatchRequest,
  type SubmitResult,
  type CancelResult,
  type LiveTaskInfo,
  type SchedulerState,
  type GroupAggregate,
  type TaskAggregate,
} from './batch-orchestrator.service';
export { TaskViewService } from './task-view.service';
export {
  CostEstimator,
  makespan,
  type AgentResolver,
  type EstimateDto,
  type GroupEstimateDto,
  type NodeCost,
  type OutputBasis,
} from './cost/cost-estimator';
export { TaskEventStream, type SseMessage, type WireEvent } from './task-event-stream';
export { SseFanout } from './sse-fanout';
export {
  Dispatcher,
  type DispatchBatch,
  type DispatcherState,
  type JobContext,
  type JobHandler,
  type NodeJob,
  type SchedulingPolicy,
} from './dispatch/dispatcher';
export { InProcessDispatcher, type InProcessDispatcherOptions } from './dispatch/in-process-dispatcher';
export { BullmqDispatcher, type BullmqDispatcherOptions } from './dispatch/bullmq-dispatcher';
// the task events' vocabulary lives in session (the log stores and types them); re-exported for consumers
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
} from '../session';
export { ShuttingDownError, BatchValidationError, DuplicateGroupIdsError } from './orchestrator.errors';
export type { CanvasBatchOptions } from './orchestrator.module-definition';
export type * from './dto/task-status.dto';
