import { HttpException, HttpStatus, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AuthFailureLimiter, clientKey } from './auth-throttle';
import { LoginSessions } from './login-sessions';

/** The cookie the dashboard's sign-in sets (HttpOnly, SameSite=Strict): a signed session, never the token. */
export const SESSION_COOKIE = 'canvas_batch_session';
/**
 * Header a cookie-authenticated request must carry for anything but GET/HEAD: a cross-site form cannot set it, and a
 * cross-origin script needs a CORS preflight for it (so the cookie alone never authorises a state change).
 */
export const CSRF_HEADER = 'x-requested-with';

/** Routes whose clients cannot set headers (EventSource, a browser opening the docs or the dashboard). */
const QUERY_TOKEN_ROUTES = [/^\/parallel\/events\//, /^\/docs(\/|$)/, /^\/$/];
/**
 * Open without a token: the liveness probe, the login form, signing out (it only ends the session it is given) and
 * the dashboard's static code (no data in it).
 */
const OPEN_ROUTES = new Set(['/health', '/login', '/logout']);
const OPEN_PREFIX = '/ui/';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const UNAUTHORIZED = 'A valid API token is required (Authorization: Bearer <token>)';

/** What the check needs of a request (Express's `Request` has it all). */
export interface TokenRequest {
  path: string;
  method?: string;
  /** The client's address (the socket's: no proxy is trusted). */
  ip?: string;
  headers: { authorization?: string; [name: string]: string | string[] | undefined };
  query?: unknown;
  cookies?: unknown;
}

/** 429: this client failed to authenticate too often; no token it sends is looked at before `retryAfterSeconds`. */
export class TooManyAuthFailures extends HttpException {
  constructor(readonly retryAfterSeconds: number) {
    super(
      `Too many failed authentication attempts from this client: try again in ${retryAfterSeconds} s`,
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * What let a request through: the token (as `Authorization: Bearer` or `?access_token=`), the session cookie, or
 * nothing because none is needed (no token configured, an open route).
 */
export type Credential = { via: 'bearer' | 'query'; token: string } | { via: 'session' } | { via: 'none' };

export interface ApiTokenCheckOptions {
  /** Failed token attempts allowed per client per minute (`AUTH_FAILURE_LIMIT`). */
  failureLimit?: number;
  /** Replacements (tests: a clock). */
  failures?: AuthFailureLimiter;
  sessions?: LoginSessions;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * When a token is configured, every route but `/health`, `/login`, `/logout` and the dashboard's static files
 * (`/ui/…`) needs a credential: the token as `Authorization: Bearer <token>` anywhere, or as `?access_token=` on the
 * SSE stream, the docs and the dashboard page; or the session cookie the sign-in sets (state changes through the
 * cookie also need `X-Requested-With`). Tokens are compared as SHA-256 digests in constant time (nothing about the
 * token's length leaks). A client that sent `failureLimit` wrong tokens in a minute gets 429 for any token until the
 * minute ends; a live session still passes (its value cannot be guessed, so it is no oracle). Applied once per
 * request, by `apiTokenMiddleware` at the HTTP edge (`configureHttpEdge`).
 */
export class ApiTokenCheck {
  private readonly expected: Buffer | undefined;
  readonly failures: AuthFailureLimiter;
  readonly sessions: LoginSessions;

  constructor(token: string | undefined, options: ApiTokenCheckOptions = {}) {
    this.expected = token ? digest(token) : undefined;
    this.failures = options.failures ?? new AuthFailureLimiter({ limit: options.failureLimit });
    this.sessions = options.sessions ?? new LoginSessions();
  }

  get enabled(): boolean {
    return this.expected !== undefined;
  }

  /**
   * Throws 401 unless the request carries a valid credential, 429 when its client failed too often; else says which
   * credential it was (a token is compared once: the caller reuses the answer instead of comparing again).
   */
  assertRequest(req: TokenRequest): Credential {
    if (!this.expected || OPEN_ROUTES.has(req.path) || req.path.startsWith(OPEN_PREFIX))
      return { via: 'none' };
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const query = (req.query ?? {}) as Record<string, unknown>;
    const fromQuery =
      typeof query.access_token === 'string' && QUERY_TOKEN_ROUTES.some((r) => r.test(req.path))
        ? query.access_token
        : undefined;
    if (bearer !== undefined) {
      this.assertToken(bearer, req.ip);
      return { via: 'bearer', token: bearer };
    }
    if (fromQuery !== undefined) {
      this.assertToken(fromQuery, req.ip);
      return { via: 'query', token: fromQuery };
    }
    const csrfOk = SAFE_METHODS.has(req.method ?? 'GET') || req.headers[CSRF_HEADER] !== undefined;
    if (csrfOk && this.sessions.verify(this.sessionOf(req))) return { via: 'session' };
    throw new UnauthorizedException(UNAUTHORIZED);
  }

  /**
   * One token attempt by the client at `address` (a request's bearer or query token, the sign-in form): 429 while
   * that client is blocked (the token is not even compared), else 401 for a wrong token, which counts against it.
   */
  assertToken(token: unknown, address: string | undefined): void {
    const client = clientKey(address);
    const wait = this.failures.retryAfterSeconds(client);
    if (wait > 0) throw new TooManyAuthFailures(wait);
    if (typeof token === 'string' && this.matches(token)) return;
    this.failures.fail(client);
    throw new UnauthorizedException(UNAUTHORIZED);
  }

  /** Constant-time comparison of SHA-256 digests with the configured token (false when none is configured). */
  matches(given: string): boolean {
    return this.expected !== undefined && timingSafeEqual(digest(given), this.expected);
  }

  /** The session cookie's value, if the request has one. */
  sessionOf(req: Pick<TokenRequest, 'cookies'>): string | undefined {
    const value = ((req.cookies ?? {}) as Record<string, unknown>)[SESSION_COOKIE];
    return typeof value === 'string' ? value : undefined;
  }
}
