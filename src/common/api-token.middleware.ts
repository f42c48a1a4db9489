import { Logger } from '@nestjs/common';
import type { Request, RequestHandler, Response } from 'express';
import { type ApiTokenCheck, type Credential, SESSION_COOKIE, TooManyAuthFailures } from './api-token';
import { redactUrl } from './log-redaction';
import { requestIdOf } from './request-id';

/** The login cookie of earlier versions (it held the token itself); cleared wherever a browser still sends it. */
const LEGACY_TOKEN_COOKIE = 'canvas_batch_token';
/** Pages that trade a valid `?access_token=` for a session cookie, and where they redirect to. */
const TRADE_PAGES = new Map([
  ['/', '/'],
  ['/docs', '/docs'],
  ['/docs/', '/docs'],
]);

/**
 * The token check, once for every request (Nest routes, the SSE stream, the docs, the dashboard, unknown paths),
 * before any body is parsed. A refusal goes on as the error (401, or 429 with `Retry-After`) to the edge's error
 * handlers: problem+json, or the dashboard's login form for a browser opening `/`. With a valid `?access_token=` the
 * dashboard page and the docs page trade it for a session cookie and redirect to themselves, so the token leaves the
 * address bar and the page's own requests (the Swagger UI's assets) authenticate with the cookie.
 */
export function apiTokenMiddleware(check: ApiTokenCheck): RequestHandler {
  const logger = new Logger('ApiToken');
  return (req, res, next) => {
    if (!check.enabled) return next();
    // the login cookie of earlier versions was the token itself: make the browser forget it
    if (req.cookies && LEGACY_TOKEN_COOKIE in (req.cookies as Record<string, unknown>)) {
      res.clearCookie(LEGACY_TOKEN_COOKIE, { path: '/' });
    }
    let credential: Credential;
    try {
      credential = check.assertRequest(req);
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
      return next(err);
    }
    const query = req.query as Record<string, unknown>;
    const page = req.method === 'GET' ? TRADE_PAGES.get(req.path) : undefined;
    // the token already checked: `?access_token=` trades only when it is that token (no second comparison)
    if (page !== undefined && 'token' in credential && query.access_token === credential.token) {
      startSession(check, req, res);
      res.redirect(303, page);
      return;
    }
    next();
  };
}

/** Signs the browser in: a new session in its HttpOnly, SameSite=Strict cookie (never the token). */
export function startSession(check: ApiTokenCheck, req: Request, res: Response): void {
  res.cookie(SESSION_COOKIE, check.sessions.create(), {
    httpOnly: true,
    sameSite: 'strict',
    path: '/',
    secure: req.secure,
    maxAge: check.sessions.ttlMs,
  });
}

/** Makes the browser forget its session cookie. */
export function clearSessionCookie(res: Response): void {
  res.clearCookie(SESSION_COOKIE, { path: '/' });
}
