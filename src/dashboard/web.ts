import { Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import * as path from 'node:path';
import {
  ApiTokenCheck,
  SESSION_COOKIE,
  TooManyAuthFailures,
  redactUrl,
  ProblemDetailsFilter,
  requestIdOf,
} from '../common';

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
 * parsed. A browser opening `/` without credentials gets the login form (401); with a valid `?access_token=` the
 * dashboard page and the docs page trade it for a session cookie and redirect to themselves, so the token leaves the
 * address bar and the page's own requests (the Swagger UI's assets) authenticate with the cookie.
 */
export function authenticate(check: ApiTokenCheck, sendProblem: ErrorSender): express.RequestHandler {
  const logger = new Logger('ApiToken');
  return (req, res, next) => {
    if (!check.enabled) return next();
    // the login cookie of earlier versions was the token itself: make the browser forget it
    if (req.cookies && LEGACY_TOKEN_COOKIE in (req.cookies as Record<string, unknown>)) {
      res.clearCookie(LEGACY_TOKEN_COOKIE, { path: '/' });
    }
    try {
      check.assertRequest(req);
    } catch (err) {
      const throttled = err instanceof TooManyAuthFailures;
      if (throttled) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      // refused before Nest's request logging runs: log it here (the URL with its secrets masked)
      logger.warn({
        request_id: requestIdOf(req),
        method: req.method,
        url: redactUrl(req.originalUrl),
        remote_address: req.ip,
        status_code: throttled ? 429 : 401,
        msg: throttled
          ? 'request refused: too many failed authentications from this client'
          : 'request refused: no valid API token',
      });
      const session = check.sessionOf(req);
      if (session !== undefined && !check.sessions.verify(session)) clearSessionCookie(res);
      if (req.path === '/' && req.method === 'GET' && req.accepts(['json', 'html']) === 'html') {
        res
          .status(throttled ? 429 : 401)
          .type('html')
          .send(loginPage(throttled ? tooManyAttempts(err.retryAfterSeconds) : undefined));
        return;
      }
      return sendProblem(err, req, res, next);
    }
    const query = req.query as Record<string, unknown>;
    if (
      req.method === 'GET' &&
      TRADE_PAGES.has(req.path) &&
      typeof query.access_token === 'string' &&
      check.matches(query.access_token)
    ) {
      startSession(check, req, res);
      res.redirect(303, TRADE_PAGES.get(req.path)!);
      return;
    }
    next();
  };
}

/** The dashboard page, its static files, and the sign-in/sign-out form handlers. */
export function mountDashboard(app: NestExpressApplication, check: ApiTokenCheck): void {
  const logger = new Logger('ApiToken');
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
    if (!check.enabled) return void res.redirect(303, '/');
    try {
      check.assertToken((req.body as Record<string, unknown> | undefined)?.token, req.ip);
    } catch (err) {
      const throttled = err instanceof TooManyAuthFailures;
      if (throttled) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      logger.warn({
        request_id: requestIdOf(req),
        remote_address: req.ip,
        status_code: throttled ? 429 : 401,
        msg: throttled
          ? 'sign-in refused: too many failed attempts from this client'
          : 'sign-in refused: wrong token',
      });
      // a browser's form gets the form again; a client that asks for JSON gets problem+json
      if (req.accepts(['html', 'json']) === 'json') return sendLoginProblem(err, req, res);
      res
        .status(throttled ? 429 : 401)
        .type('html')
        .send(loginPage(throttled ? tooManyAttempts(err.retryAfterSeconds) : 'That token is not valid.'));
      return;
    }
    startSession(check, req, res);
    res.redirect(303, '/');
  });
  router.post('/logout', (req, res) => {
    // ends the session server-side: a copy of the cookie stops working too
    const session = check.sessionOf(req);
    if (session !== undefined) check.sessions.revoke(session);
    clearSessionCookie(res);
    res.redirect(303, check.enabled ? '/login' : '/');
  });
  app.use(router);
}

/** Parses the session cookie before the token check (the dashboard's own API calls authenticate with it). */
export function cookies(): express.RequestHandler {
  return cookieParser();
}

const PROBLEMS = new ProblemDetailsFilter();
/** The login cookie of earlier versions (it held the token itself); cleared wherever a browser still sends it. */
const LEGACY_TOKEN_COOKIE = 'canvas_batch_token';
/** Pages that trade a valid `?access_token=` for a session cookie, and where they redirect to. */
const TRADE_PAGES = new Map([
  ['/', '/'],
  ['/docs', '/docs'],
  ['/docs/', '/docs'],
]);

function startSession(check: ApiTokenCheck, req: Request, res: Response): void {
  res.cookie(SESSION_COOKIE, check.sessions.create(), {
    httpOnly: true,
    sameSite: 'strict',
    path: '/',
    secure: req.secure,
    maxAge: check.sessions.ttlMs,
  });
}

function clearSessionCookie(res: Response): void {
  res.clearCookie(SESSION_COOKIE, { path: '/' });
}

function tooManyAttempts(seconds: number): string {
  return `Too many failed sign-in attempts from this address: try again in ${seconds} s.`;
}

/** The sign-in form's refusal as problem+json (for a client that asked for JSON). */
function sendLoginProblem(err: unknown, req: Request, res: Response): void {
  const problem = { ...PROBLEMS.toProblem(err), instance: req.path };
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
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
