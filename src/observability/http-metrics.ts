import type { NextFunction, Request, Response } from 'express';
import type { Histogram } from 'prom-client';

/**
 * Express middleware timing every request into `histogram`, labelled with the matched route pattern (e.g.
 * `/parallel/status/:taskId`, never the raw path, so task ids do not explode the label set).
 */
export function httpMetrics(
  histogram: Histogram<'method' | 'route' | 'status_code'>,
): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const end = histogram.startTimer();
    res.once('close', () => {
      end({ method: req.method, route: routeOf(req), status_code: String(res.statusCode) });
    });
    next();
  };
}

export function routeOf(req: Request): string {
  const route = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof route === 'string') return `${req.baseUrl}${route}` || '/';
  const path = req.originalUrl.split('?')[0];
  if (path === '/docs' || path.startsWith('/docs/')) return '/docs';
  if (path.startsWith('/ui/')) return '/ui';
  return 'unmatched';
}
