import { DynamicModule, Module } from '@nestjs/common';
import { AgentModule, AgentRunner } from '../agent';
import { CanvasModule } from '../canvas';
import { RESOLVED_OPTIONS, type ResolvedCanvasBatchOptions } from '../config';
import { DatabaseModule } from '../database';
import { MemoryModule } from '../memory';
import { connectRedis, RedisKeys } from '../redis';
import { SessionModule } from '../session';
import { BatchOrchestrator } from './batch-orchestrator.service';
import {
  CANVAS_BATCH_ASYNC_OPTIONS_TYPE,
  CANVAS_BATCH_OPTIONS_TYPE,
  COMPOSED_OPTIONS,
  type ComposedOptions,
  CanvasBatchOptionsModule,
} from './orchestrator.module-definition';
import { DurationEstimates } from './concurrency/duration-estimates';
import { CostEstimator } from './cost/cost-estimator';
import { LocalOutputDeltas, OutputDeltas } from './deltas/output-deltas';
import { RedisOutputDeltas } from './deltas/redis-output-deltas';
import { Dispatcher } from './dispatch/dispatcher';
import { BullmqDispatcher } from './dispatch/bullmq-dispatcher';
import { InProcessDispatcher } from './dispatch/in-process-dispatcher';
import { LocalTaskLeases, TaskLeases } from './ownership/task-leases';
import { RedisTaskLeases } from './ownership/redis-task-leases';
import { Admission } from './run/admission';
import { BatchRunner } from './run/batch-runner';
import { NodeExecution } from './run/node-execution';
import { OutcomeRecorder } from './run/outcome-recorder';
import { Recovery } from './run/recovery';
import { CacheController } from './cache.controller';
import { HealthController } from './health.controller';
import { ParallelController } from './parallel.controller';
import { SseFanout } from './sse-fanout';
import { TaskEventStream } from './task-event-stream';
import { TaskEventsController } from './task-events.controller';
import { TaskMemoryController } from './task-memory.controller';
import { TaskViewService } from './task-view.service';

/**
 * Nodes run at once in this process: `GLOBAL_MAX_CONCURRENT`, or the agent runner's own capacity when it declares a
 * smaller one (a local model's parallel sequences). A capacity that is not a positive integer is ignored.
 */
export function effectiveCapacity(globalMax: number, runnerCapacity: number | undefined): number {
  if (runnerCapacity === undefined || !Number.isInteger(runnerCapacity) || runnerCapacity < 1)
    return globalMax;
  return Math.min(globalMax, runnerCapacity);
}

/**
 * The batch orchestrator with its REST + SSE API. Import it with `forRoot(options)` or `forRootAsync({ useFactory,
 * inject })`: it composes the feature modules (database, canvas, session, agent, memory), each configured through its
 * own `forRootAsync` from the one `CanvasBatchOptions`, and exports them with its own providers. Nothing is global:
 * a module of the host that needs them imports the same `forRoot(...)` object. Needs `EventEmitterModule.forRoot()`
 * in the host application.
 */
@Module({
  controllers: [
    ParallelController,
    TaskEventsController,
    TaskMemoryController,
    HealthController,
    CacheController,
  ],
  providers: [
    {
      provide: Dispatcher,
      inject: [RESOLVED_OPTIONS, AgentRunner],
      useFactory: async (options: ResolvedCanvasBatchOptions, runner: AgentRunner): Promise<Dispatcher> => {
        // the provider's own capacity (a local model's parallel sequences) caps the global limit, AIMD included
        const capacity = effectiveCapacity(options.globalMaxConcurrent, runner.capacity);
        if (!options.redis)
          return new InProcessDispatcher({
            capacity,
            policy: options.scheduling,
            adaptive: options.adaptiveConcurrency,
          });
        // the distributed engine: node jobs on one BullMQ queue, the cap cluster-wide; a killed worker's job runs
        // again elsewhere once its lock (the lease time) lapsed
        const dispatcher = new BullmqDispatcher({
          redisUrl: options.redis.url,
          prefix: options.redis.prefix,
          capacity,
          policy: options.scheduling,
          adaptive: options.adaptiveConcurrency,
          worker: options.redis.role !== 'api',
          instanceId: options.redis.instanceId,
          lockDurationMs: options.redis.leaseMs,
          stalledIntervalMs: Math.max(500, Math.floor(options.redis.leaseMs / 2)),
        });
        await dispatcher.start();
        return dispatcher;
      },
    },
    {
      provide: TaskLeases,
      inject: [RESOLVED_OPTIONS],
      useFactory: (options: ResolvedCanvasBatchOptions): TaskLeases =>
        options.redis
          ? new RedisTaskLeases(
              connectRedis(options.redis.url, `${options.redis.instanceId}:leases`),
              new RedisKeys(options.redis.prefix),
              { owner: options.redis.instanceId, ttlMs: options.redis.leaseMs },
            )
          : new LocalTaskLeases(),
    },
    {
      provide: OutputDeltas,
      inject: [RESOLVED_OPTIONS],
      useFactory: (options: ResolvedCanvasBatchOptions): OutputDeltas =>
        options.redis
          ? new RedisOutputDeltas(
              connectRedis(options.redis.url, `${options.redis.instanceId}:deltas`),
              connectRedis(options.redis.url, `${options.redis.instanceId}:deltas-sub`),
              new RedisKeys(options.redis.prefix),
            )
          : new LocalOutputDeltas(),
    },
    DurationEstimates,
    Admission,
    CostEstimator,
    OutcomeRecorder,
    NodeExecution,
    BatchRunner,
    Recovery,
    BatchOrchestrator,
    TaskEventStream,
    SseFanout,
    TaskViewService,
  ],
  exports: [
    BatchOrchestrator,
    TaskViewService,
    TaskEventStream,
    SseFanout,
    Dispatcher,
    CostEstimator,
    OutputDeltas,
  ],
})
export class OrchestratorModule {
  static forRoot(options: typeof CANVAS_BATCH_OPTIONS_TYPE): DynamicModule {
    return OrchestratorModule.compose(CanvasBatchOptionsModule.forRoot(options));
  }

  static forRootAsync(options: typeof CANVAS_BATCH_ASYNC_OPTIONS_TYPE): DynamicModule {
    return OrchestratorModule.compose(CanvasBatchOptionsModule.forRootAsync(options));
  }

  /** `shared` (the host's options, composed once) feeds each feature module's `forRootAsync`. */
  private static compose(shared: DynamicModule): DynamicModule {
    const from = <K extends keyof ComposedOptions>(key: K) => ({
      inject: [COMPOSED_OPTIONS],
      useFactory: (composed: ComposedOptions): ComposedOptions[K] => composed[key],
    });
    const database = DatabaseModule.forRootAsync({ imports: [shared], ...from('database') });
    const canvas = CanvasModule.forRootAsync({ imports: [shared], ...from('canvas') });
    const features = [
      database,
      canvas,
      SessionModule.forRootAsync({ imports: [shared, database], ...from('session') }),
      AgentModule.forRootAsync({ imports: [shared], ...from('agent') }),
      MemoryModule.forRootAsync({ imports: [shared, database, canvas], ...from('memory') }),
    ];
    return {
      module: OrchestratorModule,
      imports: [shared, ...features],
      exports: [
        CanvasBatchOptionsModule,
        DatabaseModule,
        CanvasModule,
        SessionModule,
        AgentModule,
        MemoryModule,
      ],
    };
  }
}
