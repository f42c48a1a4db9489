import { DynamicModule, Module } from '@nestjs/common';
import { AgentModule } from '../agent';
import { CanvasModule } from '../canvas';
import {
  CANVAS_BATCH_ASYNC_OPTIONS_TYPE,
  CANVAS_BATCH_OPTIONS,
  CANVAS_BATCH_OPTIONS_TYPE,
  CanvasBatchConfigurableModule,
  type CanvasBatchOptions,
  RESOLVED_OPTIONS,
  resolveOptions,
  type ResolvedCanvasBatchOptions,
} from '../config';
import { DatabaseModule } from '../database';
import { MemoryModule } from '../memory';
import { SessionModule } from '../session';
import { BatchOrchestrator } from './batch-orchestrator.service';
import { DurationEstimates } from './concurrency/duration-estimates';
import { AdaptiveLimit } from './concurrency/adaptive-limit';
import { GlobalSlots } from './concurrency/slot-limiter';
import { HealthController } from './health.controller';
import { ParallelController } from './parallel.controller';
import { TaskEventBus } from './task-event-bus';
import { SseFanout } from './sse-fanout';
import { TaskEventStream } from './task-event-stream';
import { TaskEventsController } from './task-events.controller';
import { TaskViewService } from './task-view.service';

/**
 * The batch orchestrator with its REST + SSE API. Import it with `forRoot(options)` or `forRootAsync({ useFactory,
 * inject })`; it is global, so the feature modules it wires (session, agent, canvas, memory) see its options.
 * Needs `EventEmitterModule.forRoot()` in the host application.
 */
@Module({
  imports: [DatabaseModule, SessionModule, AgentModule, CanvasModule, MemoryModule],
  controllers: [ParallelController, TaskEventsController, HealthController],
  providers: [
    {
      provide: RESOLVED_OPTIONS,
      inject: [CANVAS_BATCH_OPTIONS],
      useFactory: (options: CanvasBatchOptions): ResolvedCanvasBatchOptions => resolveOptions(options),
    },
    {
      provide: GlobalSlots,
      inject: [RESOLVED_OPTIONS],
      useFactory: (options: ResolvedCanvasBatchOptions) =>
        new GlobalSlots(options.globalMaxConcurrent, options.scheduling),
    },
    DurationEstimates,
    {
      provide: AdaptiveLimit,
      inject: [RESOLVED_OPTIONS, GlobalSlots],
      useFactory: (options: ResolvedCanvasBatchOptions, slots: GlobalSlots) =>
        new AdaptiveLimit(options.globalMaxConcurrent, (n) => slots.setLimit(n), {
          enabled: options.adaptiveConcurrency,
          inFlight: () => slots.inUse,
        }),
    },
    BatchOrchestrator,
    TaskEventBus,
    TaskEventStream,
    SseFanout,
    TaskViewService,
  ],
  exports: [
    RESOLVED_OPTIONS,
    BatchOrchestrator,
    TaskViewService,
    TaskEventStream,
    SseFanout,
    TaskEventBus,
    GlobalSlots,
    SessionModule,
    MemoryModule,
  ],
})
export class OrchestratorModule extends CanvasBatchConfigurableModule {
  static override forRoot(options: typeof CANVAS_BATCH_OPTIONS_TYPE): DynamicModule {
    return { ...super.forRoot(options), global: true };
  }

  static override forRootAsync(options: typeof CANVAS_BATCH_ASYNC_OPTIONS_TYPE): DynamicModule {
    return { ...super.forRootAsync(options), global: true };
  }
}
