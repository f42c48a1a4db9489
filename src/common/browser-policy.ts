import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * Security headers for every response. The CSP allows only this origin's own scripts, styles, images and
 * connections (the dashboard uses no inline code and no external host); the Swagger UI at `/docs` needs inline
 * styles and its init script only.
 */
export function securityHeaders(): RequestHandler {
  const directives = {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    fontSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    // plain http on localhost/LAN is the normal deployment: never rewrite the dashboard's requests to https
    upgradeInsecureRequests: null,
  };
  const strict = helmet({ contentSecurityPolicy: { directives }, strictTransportSecurity: false });
  const docs = helmet({
    contentSecurityPolicy: { directives: { ...directives, styleSrc: ["'self'", "'unsafe-inline'"] } },
    strictTransportSecurity: false,
  });
  return (req, res, next) => (isDocs(req.path) ? docs : strict)(req, res, next);
}

/** CORS: only the configured origins (exact match) may call the API from a browser page. */
export function corsOptions(origins: readonly string[]): {
  origin: (origin: string | undefined, cb: (err: Error | null, allow?: boolean) => void) => void;
  methods: string[];
  allowedHeaders: string[];
  exposedHeaders: string[];
  maxAge: number;
} {
  const allowed = new Set(origins);
  return {
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'Last-Event-ID', 'X-Request-Id'],
    exposedHeaders: ['Retry-After', 'X-Request-Id', 'Location'],
    maxAge: 600,
  };
}

function isDocs(p: string): boolean {
  return p === '/docs' || p.startsWith('/docs/');
}
