import { type DynamicModule, Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

/**
 * Prometheus metrics at `/metrics`. Import it with `register(orchestrator)`, `orchestrator` being the application's
 * `OrchestratorModule.forRoot(...)` (the same object it imports), whose exports it measures.
 */
@Module({
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class ObservabilityModule {
  static register(orchestrator: DynamicModule): DynamicModule {
    return { module: ObservabilityModule, imports: [orchestrator] };
  }
}
