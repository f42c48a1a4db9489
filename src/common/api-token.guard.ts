import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import { timingSafeEqual } from 'node:crypto';

/** Routes whose clients cannot set headers (EventSource, a browser opening the docs) may pass `?access_token=`. */
const QUERY_TOKEN_ROUTES = [/^\/parallel\/events\//, /^\/docs(\/|$)/];

/**
 * When a token is configured, every route but `/health` needs `Authorization: Bearer <token>`; the SSE stream and
 * the docs also accept `?access_token=`. Compared in constant time.
 */
export class ApiTokenCheck {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token ? Buffer.from(token) : undefined;
  }

  /** Throws 401 unless a request to `path` with these credentials may pass. */
  assert(path: string, authorization: string | undefined, accessToken: unknown): void {
    if (!this.expected || path === '/health') return;
    const bearer = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    const query =
      typeof accessToken === 'string' && QUERY_TOKEN_ROUTES.some((r) => r.test(path))
        ? accessToken
        : undefined;
    const given = bearer ?? query;
    if (given !== undefined && this.matches(given, this.expected)) return;
    throw new UnauthorizedException('A valid API token is required (Authorization: Bearer <token>)');
  }

  private matches(given: string, expected: Buffer): boolean {
    const buf = Buffer.from(given);
    return buf.length === expected.length && timingSafeEqual(buf, expected);
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
    const req = context.switchToHttp().getRequest<Request>();
    this.check.assert(req.path, req.headers.authorization, req.query.access_token);
    return true;
  }
}
