import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import { timingSafeEqual } from 'node:crypto';

/** The cookie the dashboard's login form sets (HttpOnly, SameSite=Strict). */
export const TOKEN_COOKIE = 'canvas_batch_token';
/**
 * Header a cookie-authenticated request must carry for anything but GET/HEAD: a cross-site form cannot set it, and a
 * cross-origin script needs a CORS preflight for it (so the cookie alone never authorises a state change).
 */
export const CSRF_HEADER = 'x-requested-with';

/** Routes whose clients cannot set headers (EventSource, a browser opening the docs or the dashboard). */
const QUERY_TOKEN_ROUTES = [/^\/parallel\/events\//, /^\/docs(\/|$)/, /^\/$/];
/**
 * Open without a token: the liveness probe, the login form, logging out (it only clears the cookie) and the
 * dashboard's static code (no data in it).
 */
const OPEN_ROUTES = new Set(['/health', '/login', '/logout']);
const OPEN_PREFIX = '/ui/';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What the check needs of a request (Express's `Request` has it all). */
export interface TokenRequest {
  path: string;
  method?: string;
  headers: { authorization?: string; [name: string]: string | string[] | undefined };
  query?: unknown;
  cookies?: unknown;
}

/**
 * When a token is configured, every route but `/health`, `/login` and the dashboard's static files (`/ui/…`) needs it: as `Authorization: Bearer <token>`
 * anywhere; as `?access_token=` on the SSE stream, the docs and the dashboard page; or as the login cookie (state
 * changes through the cookie also need `X-Requested-With`). Compared in constant time.
 */
export class ApiTokenCheck {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token ? Buffer.from(token) : undefined;
  }

  get enabled(): boolean {
    return this.expected !== undefined;
  }

  /** Throws 401 unless a request to `path` with these credentials may pass. */
  assert(path: string, authorization: string | undefined, accessToken: unknown, cookie?: unknown): void {
    if (!this.expected || OPEN_ROUTES.has(path) || path.startsWith(OPEN_PREFIX)) return;
    const bearer = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    const query =
      typeof accessToken === 'string' && QUERY_TOKEN_ROUTES.some((r) => r.test(path))
        ? accessToken
        : undefined;
    const fromCookie = typeof cookie === 'string' ? cookie : undefined;
    const given = bearer ?? query ?? fromCookie;
    if (given !== undefined && this.matches(given)) return;
    throw new UnauthorizedException('A valid API token is required (Authorization: Bearer <token>)');
  }

  /** The whole check on a request: bearer, `?access_token=` where allowed, or the login cookie. */
  assertRequest(req: TokenRequest): void {
    const cookies = (req.cookies ?? {}) as Record<string, unknown>;
    const query = (req.query ?? {}) as Record<string, unknown>;
    const csrfOk = SAFE_METHODS.has(req.method ?? 'GET') || req.headers[CSRF_HEADER] !== undefined;
    this.assert(
      req.path,
      req.headers.authorization,
      query.access_token,
      csrfOk ? cookies[TOKEN_COOKIE] : undefined,
    );
  }

  /** Constant-time comparison with the configured token (false when none is configured). */
  matches(given: string): boolean {
    if (!this.expected) return false;
    const buf = Buffer.from(given);
    return buf.length === this.expected.length && timingSafeEqual(buf, this.expected);
  }
}

/** The token check as a global guard for every Nest route. */
@Injectable()
export class ApiTokenGuard implements CanActivate {
  private readonly check: ApiTokenCheck;

  constructor(token: string | undefined) {
    this.check = new ApiTokenCheck(token);
  }

  canActivate(context: ExecutionContext): boolean {
    this.check.assertRequest(context.switchToHttp().getRequest<Request>());
    return true;
  }
}
