import type { LoggerService } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { redactUrl } from './log-redaction';

/**
 * Contexts whose `log` lines are start-up detail, written at `debug`: Nest's own (one line per module and per route,
 * ~35 lines), and the vault's and the database's lines, which the start banner (`bootstrap`) says in its own.
 */
export const START_UP_DETAIL_CONTEXTS: ReadonlySet<string> = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestApplication',
  'VaultService',
  'SqliteDatabase',
]);

/**
 * The service's Nest logger: the application's pino logger, with the `log` lines of `START_UP_DETAIL_CONTEXTS`
 * moved down to `debug` (still there with `LOG_LEVEL=debug`). Every other line passes as it is.
 */
export class ServiceLogger implements LoggerService {
  constructor(private readonly inner: LoggerService) {}

  log(message: unknown, ...params: unknown[]): void {
    const context = params.at(-1);
    if (typeof context === 'string' && START_UP_DETAIL_CONTEXTS.has(context)) {
      this.inner.debug?.(message, ...params);
    } else {
      this.inner.log(message, ...params);
    }
  }

  error(message: unknown, ...params: unknown[]): void {
    this.inner.error(message, ...params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.inner.warn(message, ...params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.inner.debug?.(message, ...params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.inner.verbose?.(message, ...params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    (this.inner.fatal ?? this.inner.error).call(this.inner, message, ...params);
  }
}

/** A request as Express hands it to pino-http (`originalUrl` keeps the mount path Nest's routers strip). */
type LoggedRequest = IncomingMessage & { originalUrl?: string };

/** What a request line says, in both formats: `GET /parallel/tasks?limit=5 200 3 ms` (query secrets masked). */
export function requestLine(req: LoggedRequest, res: ServerResponse, responseTimeMs: number): string {
  const url = redactUrl(req.originalUrl ?? req.url ?? '');
  return `${req.method ?? '?'} ${url} ${res.statusCode} ${Math.round(responseTimeMs)} ms`;
}

/**
 * The request line of a failed request (5xx, or an error while answering): the same line, with the error's message
 * unless it is pino-http's own "failed with status code …".
 */
export function failedRequestLine(
  req: LoggedRequest,
  res: ServerResponse,
  err: Error,
  responseTimeMs = 0,
): string {
  const line = requestLine(req, res, responseTimeMs);
  return /^failed with status code \d+$/.test(err.message) ? line : `${line}: ${err.message}`;
}

/**
 * Request headers kept on a JSON request line: what helps to tell clients and bodies apart. Credential headers are
 * kept to show that one was sent (`REDACTED_LOG_PATHS` masks their values); the rest (cookies of other sites,
 * proxies' additions, …) is left out, and so are the response headers (the same security headers on every line).
 */
export const LOGGED_REQUEST_HEADERS: readonly string[] = [
  'user-agent',
  'content-type',
  'content-length',
  'content-encoding',
  'origin',
  'x-forwarded-for',
  'idempotency-key',
  'last-event-id',
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'cookie',
];

/** pino's standard request serialization (pino-http passes it to a custom serializer). */
interface SerializedRequest {
  id?: unknown;
  method?: unknown;
  url?: unknown;
  remoteAddress?: unknown;
  headers?: Record<string, unknown>;
}

/** pino-http request serializer: id, method, URL (query secrets masked), client address and the kept headers. */
export function requestLogView(req: SerializedRequest): Record<string, unknown> {
  const headers = Object.fromEntries(
    LOGGED_REQUEST_HEADERS.filter((h) => req.headers?.[h] !== undefined).map((h) => [h, req.headers?.[h]]),
  );
  return {
    id: req.id,
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    remoteAddress: req.remoteAddress,
    headers,
  };
}

/** pino-http response serializer: the status code only. */
export function responseLogView(res: { statusCode?: unknown }): { statusCode: unknown } {
  return { statusCode: res.statusCode };
}

/**
 * pino-pretty's options for the human-readable format (`LOG_PRETTY`): one line per record, no pid/hostname, no
 * Nest context; a request line is its message alone (the request and response objects stay in the JSON format), and
 * a request the token check refused (its own fields: method, url, status_code…) reads the same way.
 */
export const PRETTY_LOG_OPTIONS = {
  singleLine: true,
  ignore: 'pid,hostname,context,req,res,responseTime,request_id,method,url,status_code,remote_address',
  messageFormat: '{if method}{method} {url} {status_code} — {end}{msg}',
} as const;
