import { Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import * as path from 'node:path';
import { ApiTokenCheck, TOKEN_COOKIE } from '../common/api-token.guard';
import { redactUrl } from '../common/log-redaction';
import { requestIdOf } from '../common/request-id';

/** The dashboard's static files (HTML, CSS, JS): served from here in `src/` and copied beside the build in `dist/`. */
export const PUBLIC_DIR = path.join(__dirname, 'public');

type ErrorSender = (err: unknown, req: Request, res: Response, next: NextFunction) => void;

/**
 * Security headers for every response. The CSP allows only this origin's own scripts, styles, images and
 * connections (the dashboard uses no inline code and no external host); the Swagger UI at `/docs` needs inline
 * styles and its init script only.
 */
export function securityHeaders(): express.RequestHandler {
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

/**
 * The token check for every request (Nest routes, the docs, the dashboard, unknown paths), before any body is
 * parsed. A browser opening `/` without credentials gets the login form (401); with a valid `?access_token=` it
 * gets the cookie and is redirected to `/` so the token leaves the address bar.
 */
export function authenticate(check: ApiTokenCheck, sendProblem: ErrorSender): express.RequestHandler {
  const logger = new Logger('ApiToken');
  return (req, res, next) => {
    if (!check.enabled) return next();
    try {
      check.assertRequest(req);
    } catch (err) {
      // refused before Nest's request logging runs: log it here (the URL with its secrets masked)
      logger.warn({
        request_id: requestIdOf(req),
        method: req.method,
        url: redactUrl(req.originalUrl),
        status_code: 401,
        msg: 'request refused: no valid API token',
      });
      if (req.path === '/' && req.method === 'GET' && req.accepts(['json', 'html']) === 'html') {
        res.status(401).type('html').send(loginPage());
        return;
      }
      return sendProblem(err, req, res, next);
    }
    const query = req.query as Record<string, unknown>;
    if (req.path === '/' && typeof query.access_token === 'string' && check.matches(query.access_token)) {
      setTokenCookie(req, res, query.access_token);
      res.redirect(303, '/');
      return;
    }
    next();
  };
}

/** The dashboard page, its static files, and the login/logout form handlers. */
export function mountDashboard(app: NestExpressApplication, check: ApiTokenCheck): void {
  const index = path.join(PUBLIC_DIR, 'index.html');
  app.use(
    '/ui',
    express.static(PUBLIC_DIR, { index: false, fallthrough: true, maxAge: 0, dotfiles: 'deny' }),
  );
  const router = express.Router();
  router.get('/', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.sendFile(index);
  });
  router.get('/login', (_req, res) => {
    res.status(200).type('html').send(loginPage());
  });
  router.post('/login', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    const token = (req.body as Record<string, unknown> | undefined)?.token;
    if (!check.enabled) return void res.redirect(303, '/');
    if (typeof token !== 'string' || !check.matches(token)) {
      res.status(401).type('html').send(loginPage('That token is not valid.'));
      return;
    }
    setTokenCookie(req, res, token);
    res.redirect(303, '/');
  });
  router.post('/logout', (_req, res) => {
    res.clearCookie(TOKEN_COOKIE, { path: '/' });
    res.redirect(303, check.enabled ? '/login' : '/');
  });
  app.use(router);
}

/** Parses the login cookie before the token check (the dashboard's own API calls authenticate with it). */
export function cookies(): express.RequestHandler {
  return cookieParser();
}

function setTokenCookie(req: Request, res: Response, token: string): void {
  res.cookie(TOKEN_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/', secure: req.secure });
}

function isDocs(p: string): boolean {
  return p === '/docs' || p.startsWith('/docs/');
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** The login form: no script, the dashboard's stylesheet, labelled field, an error in a live region. */
export function loginPage(error?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · canvas-batch</title>
<link rel="stylesheet" href="/ui/style.css">
</head>
<body>
<main class="login" id="main">
<h1>canvas-batch</h1>
<form method="post" action="/login" class="card">
<p>This service needs its API token.</p>
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<p role="alert" class="error">${error ? escapeHtml(error) : ''}</p>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;
}
