import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Inject,
  Logger,
  Optional,
} from '@nestjs/common';
import { ThrottlerException, throttlerMessage } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { RESOLVED_OPTIONS } from '../config';
import { DomainError, type ProblemFieldError } from './domain-error';
import { redactUrl } from './log-redaction';
import { PROBLEM_TABLE, problemType } from './problem-table';
import { ServerPathRedactor, type ServerPathRoots } from './server-paths';

/** RFC 9457 problem details, as every error of this service is sent. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: ProblemFieldError[];
}

/** The 429 of the `POST /parallel/execute` rate limit. */
export const TOO_MANY_REQUESTS_DETAIL =
  'Too many batches from this client: POST /parallel/execute takes EXECUTE_RATE_LIMIT requests per client a minute. ' +
  'Wait the number of seconds in the Retry-After header, then try again.';

const STATUS_SLUG: Record<number, string> = {
  400: 'bad-request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  409: 'conflict',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
  422: 'unprocessable-entity',
  429: 'too-many-requests',
  500: 'internal-error',
  503: 'service-unavailable',
};

/**
 * The one exception filter: domain errors through `PROBLEM_TABLE`, Nest/Express HTTP errors by status, anything
 * else logged and masked as a generic 500. Never writes after headers went out (an SSE stream already started).
 * `configureHttpEdge` creates the one instance and registers it with Nest.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemDetailsFilter.name);
  private readonly paths: ServerPathRedactor;

  /** `roots`: the vault and `DATA_DIR`, shown relative in a problem's texts (other absolute paths never appear). */
  constructor(@Optional() @Inject(RESOLVED_OPTIONS) roots?: ServerPathRoots) {
    this.paths = new ServerPathRedactor(roots ?? {});
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    this.send(exception, http.getRequest<Request>(), http.getResponse<Response>());
  }

  /**
   * Sends the error as problem+json: Nest's routes through `catch`, the errors of the Express middleware (body
   * parsing, the token check, the dashboard's routes) through the HTTP edge's error handler. One instance serves both.
   */
  send(exception: unknown, req: Request, res: Response): void {
    const problem = this.toProblem(exception);
    problem.instance = req.path; // never the query: it may carry ?access_token=
    if (res.headersSent) {
      this.logger.warn(
        `error after headers were sent on ${req.method} ${redactUrl(req.originalUrl)}: ${problem.detail}`,
      );
      if (!res.writableEnded) res.end();
      return;
    }
    if (problem.status === 503) res.setHeader('Retry-After', '5');
    res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
  }

  /** The problem an error is sent as; its `detail` and `errors[].message` show no absolute server path. */
  toProblem(exception: unknown): ProblemDetails {
    const { errors, ...problem } = this.describe(exception);
    return {
      ...problem,
      detail: this.paths.redact(problem.detail, 'quoted'),
      ...(errors && {
        errors: errors.map((e) => ({ ...e, message: this.paths.redact(e.message, 'quoted') })),
      }),
    };
  }

  private describe(exception: unknown): ProblemDetails {
    if (exception instanceof DomainError) {
      const { status, title } = PROBLEM_TABLE[exception.code];
      return {
        type: problemType(exception.code),
        title,
        status,
        detail: exception.message,
        ...(exception.errors?.length ? { errors: [...exception.errors] } : {}),
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const detail =
        // the throttler's own text ("ThrottlerException: Too Many Requests") says neither why nor what to do
        exception instanceof ThrottlerException && exception.message === throttlerMessage
          ? TOO_MANY_REQUESTS_DETAIL
          : typeof body === 'string'
            ? body
            : typeof (body as { message?: unknown }).message === 'string'
              ? (body as { message: string }).message
              : exception.message;
      return {
        type: problemType(STATUS_SLUG[status] ?? `http-${status}`),
        title:
          HttpStatus[status]
            ?.replace(/_/g, ' ')
            .toLowerCase()
            .replace(/^./, (c) => c.toUpperCase()) ?? 'Error',
        status,
        detail,
      };
    }
    const expressStatus = expressErrorStatus(exception);
    if (expressStatus !== undefined) {
      return {
        type: problemType(STATUS_SLUG[expressStatus] ?? `http-${expressStatus}`),
        title: expressStatus === 413 ? 'Payload too large' : 'Bad request',
        status: expressStatus,
        detail:
          expressStatus === 413
            ? 'The request body exceeds the size limit.'
            : 'The request body is not valid JSON.',
      };
    }
    this.logger.error(
      exception instanceof Error ? (exception.stack ?? exception.message) : String(exception),
    );
    return {
      type: problemType('internal-error'),
      title: 'Internal server error',
      status: 500,
      detail: 'An unexpected error occurred; it has been logged.',
    };
  }
}

/** body-parser errors carry `status`/`type` (e.g. `entity.too.large`, `entity.parse.failed`). */
function expressErrorStatus(exception: unknown): number | undefined {
  if (typeof exception !== 'object' || exception === null) return undefined;
  const { status, type } = exception as { status?: unknown; type?: unknown };
  if (typeof type !== 'string' || !type.startsWith('entity.')) return undefined;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}
