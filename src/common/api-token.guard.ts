import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import { timingSafeEqual } from 'node:crypto';

/**
 * When a token is configured, every route but `/health` needs `Authorization: Bearer <token>`; SSE clients (which
 * cannot set headers) may pass `?access_token=`. Compared in constant time.
 */
@Injectable()
export class ApiTokenGuard implements CanActivate {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token ? Buffer.from(token) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const req = context.switchToHttp().getRequest<Request>();
    if (req.path === '/health') return true;
    const header = req.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    const query = typeof req.query.access_token === 'string' ? req.query.access_token : undefined;
    const given = bearer ?? query;
    if (given !== undefined && this.matches(given)) return true;
    throw new UnauthorizedException('A valid API token is required (Authorization: Bearer <token>)');
  }

  private matches(given: string): boolean {
    const buf = Buffer.from(given);
    return buf.length === this.expected!.length && timingSafeEqual(buf, this.expected!);
  }
}
