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
export { ShuttingDownError, BatchValidationError } from './orchestrator.errors';
export type { CanvasBatchOptions } from '../config/canvas-batch-options';
export type * from './dto/task-status.dto';
