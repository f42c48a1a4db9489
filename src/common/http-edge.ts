import { Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import type { NextFunction, Request, Response } from 'express';
import { isLoopbackHost, RESOLVED_OPTIONS } from '../config';
import { ApiTokenCheck } from './api-token';
import { AuthFailureLimiter, type AuthFailureStore } from './auth-throttle';
import { apiTokenMiddleware } from './api-token.middleware';
import { corsOptions, securityHeaders } from './browser-policy';
import { jsonBodyParser } from './json-body';
import { methodNotAllowed, type RoutingLayer } from './method-not-allowed';
import { ProblemDetailsFilter } from './problem-details.filter';
import { requestId } from './request-id';
import type { ServerPathRoots } from './server-paths';

/** What the HTTP edge is configured with (`AppConfig` has these fields, with the same names). */
export interface HttpEdgeOptions {
  /** `API_TOKEN`: without one every route is open. */
  apiToken?: string | undefined;
  /** Failed token attempts allowed per client per minute (`AUTH_FAILURE_LIMIT`). */
  authFailureLimit?: number;
  /** Where failed attempts are also counted for every process of the service (the distributed engine). */
  authFailureStore?: AuthFailureStore;
  /** Largest JSON body, counted after decompression (`BODY_LIMIT_BYTES`). */
  bodyLimitBytes: number;
  /** Browser origins allowed to call the API (`CORS_ORIGINS`). */
  corsOrigins: readonly string[];
  /** The bind address: serving a non-loopback one without a token is logged as a warning. */
  host?: string;
}

/** The edge's one token check and one problem+json filter, for routes mounted on Express beside Nest's. */
export interface HttpEdge {
  readonly check: ApiTokenCheck;
  readonly problems: ProblemDetailsFilter;
}

/**
 * The HTTP edge, in front of every route (Nest's, the docs, the dashboard, unknown paths), in this order: request
 * id, security headers, CORS, cookies, the token check (once per request: bearer, `?access_token=` or session
 * cookie; failed attempts throttled per client), 405 with `Allow` for a known path's other methods (`OPTIONS`: 204
 * with `Allow`), JSON body parsing (UTF-8, size limit, nesting depth), then `mount(edge)` (Express routes beside Nest's, e.g. the dashboard), then problem+json for every error. The one
 * `ProblemDetailsFilter` serves Nest's routes (a global filter) and the Express-level errors. Call it once, before
 * the application listens, on an application created with `bodyParser: false`: `createApp` does, and so may a host
 * service that serves `OrchestratorModule`'s routes.
 */
export function configureHttpEdge(
  app: NestExpressApplication,
  options: HttpEdgeOptions,
  mount?: (edge: HttpEdge) => void,
): HttpEdge {
  const check = new ApiTokenCheck(options.apiToken, {
    failures: new AuthFailureLimiter({ limit: options.authFailureLimit, store: options.authFailureStore }),
  });
  const problems = new ProblemDetailsFilter(serverPathRoots(app));
  app.useGlobalFilters(problems);
  if (!check.enabled && options.host !== undefined && !isLoopbackHost(options.host)) {
    new Logger('ApiToken').warn(
      `serving ${options.host} without API_TOKEN (ALLOW_UNAUTHENTICATED=true): anyone who can reach this address can start batches, read and write the vault`,
    );
  }
  app.use(requestId());
  app.use(securityHeaders());
  app.enableCors(corsOptions(options.corsOrigins));
  // the session cookie is read before the token check (the dashboard's own API calls authenticate with it)
  app.use(cookieParser());
  app.use(apiTokenMiddleware(check));
  // 405 + Allow for a known path's other methods, read from the routing table (filled by the time requests come)
  app.use(methodNotAllowed(() => routingTable(app)));
  // UTF-8 JSON only, identity/gzip/deflate/br, nesting depth checked before JSON.parse (415/400 problems otherwise)
  app.use(jsonBodyParser({ limit: options.bodyLimitBytes }));
  const edge: HttpEdge = { check, problems };
  mount?.(edge);
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    problems.send(err, req, res);
  });
  app.disable('x-powered-by');
  return edge;
}

/** Express's routing table (Express 5 keeps it on `app.router`). */
function routingTable(app: NestExpressApplication): readonly RoutingLayer[] | undefined {
  const express = app.getHttpAdapter().getInstance() as unknown as {
    router?: { stack?: readonly RoutingLayer[] };
  };
  return express.router?.stack;
}

/** The vault and `DATA_DIR` (shown relative in problems), when the application has the orchestrator's options. */
function serverPathRoots(app: NestExpressApplication): ServerPathRoots | undefined {
  try {
    return app.get<ServerPathRoots>(RESOLVED_OPTIONS, { strict: false });
  } catch {
    return undefined;
  }
}
