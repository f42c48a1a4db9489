import { type DynamicModule, Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller';
import { METRICS_INSTANCE, MetricsService } from './metrics.service';

/**
 * Prometheus metrics at `/metrics`. Import it with `register(orchestrator)`, `orchestrator` being the application's
 * `OrchestratorModule.forRoot(...)` (the same object it imports), whose exports it measures. `instance` labels
 * every sample (default: host name and pid).
 */
@Module({
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class ObservabilityModule {
  static register(orchestrator: DynamicModule, options: { instance?: string } = {}): DynamicModule {
    return {
      module: ObservabilityModule,
      imports: [orchestrator],
      providers:
        options.instance === undefined ? [] : [{ provide: METRICS_INSTANCE, useValue: options.instance }],
    };
  }
}
