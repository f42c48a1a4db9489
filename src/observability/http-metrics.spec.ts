import type { Request } from 'express';
import { Histogram, Registry } from 'prom-client';
import { httpMetrics, routeOf } from './http-metrics';

const ID = '3f2a9c1e-0000-4000-8000-00000000abcd';

describe('HTTP metrics labels', () => {
  const req = (p: Partial<Request> & { route?: unknown }): Request =>
    ({ baseUrl: '', originalUrl: '/', ...p }) as unknown as Request;

  it('uses the route pattern, else a fixed label', () => {
    expect(routeOf(req({ route: { path: '/parallel/status/:taskId' } }))).toBe('/parallel/status/:taskId');
    expect(routeOf(req({ route: { path: '' }, baseUrl: '' }))).toBe('/');
    expect(routeOf(req({ originalUrl: '/docs/swagger-ui.css?x' }))).toBe('/docs');
    expect(routeOf(req({ originalUrl: '/docs' }))).toBe('/docs');
    expect(routeOf(req({ originalUrl: '/ui/app.js' }))).toBe('/ui');
    expect(routeOf(req({ originalUrl: `/parallel/status/${ID}` }))).toBe('unmatched');
  });

  it('observes a request when its response closes', async () => {
    const registry = new Registry();
    const histogram = new Histogram({
      name: 't_http',
      help: 'h',
      labelNames: ['method', 'route', 'status_code'] as const,
      registers: [registry],
    });
    let onClose: () => void = () => undefined;
    const res = { statusCode: 204, once: (_: string, fn: () => void) => (onClose = fn) };
    httpMetrics(histogram)(req({ method: 'GET', originalUrl: '/ui/x.css' }), res as never, () => undefined);
    onClose();
    expect(await registry.metrics()).toContain('t_http_count{method="GET",route="/ui",status_code="204"} 1');
  });
});
