export { ObservabilityModule } from './observability.module';
export { MetricsService } from './metrics.service';
export { httpMetrics } from './http-metrics';
