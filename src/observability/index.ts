export { ObservabilityModule } from './observability.module';
export { MetricsService, METRICS_INSTANCE, defaultMetricsInstance } from './metrics.service';
export { httpMetrics } from './http-metrics';
