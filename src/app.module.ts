import { type DynamicModule, type ExecutionContext, Module } from '@nestjs/common';
import type { Request } from 'express';
import { APP_GUARD, APP_PIPE } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { LoggerModule } from 'nestjs-pino';
import pino from 'pino';
import type { Options as PinoHttpOptions } from 'pino-http';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import {
  failedRequestLine,
  PRETTY_LOG_OPTIONS,
  REDACTED_LOG_PATHS,
  requestLine,
  requestLogView,
  responseLogView,
  secretScrubber,
  SESSION_VALUE,
  requestIdOf,
  taskIdOfUrl,
  createValidationPipe,
} from './common';
import { DashboardModule } from './dashboard';
import { PlanningModule } from './planning';
import { ObservabilityModule } from './observability';
import { type AppConfig, resolveRedisEngine, resolveVaultRoot } from './config';
import { connectRedis, RedisAuthFailureStore, RedisKeys, RedisThrottlerStorage } from './redis';
import { type CanvasBatchOptions, OrchestratorModule } from './orchestrator';

/**
 * The validated configuration as the orchestrator's options (defaults are `loadAppConfig`'s, from the same
 * `OPTION_DEFAULTS`). Resolving the vault copies the example vault into `DATA_DIR/vault` on the first start.
 */
export function canvasBatchOptionsOf(config: AppConfig): CanvasBatchOptions {
  return {
    vaultRoot: resolveVaultRoot(config.vaultRoot, config.dataDir).root,
    dataDir: config.dataDir,
    globalMaxConcurrent: config.globalMaxConcurrent,
    sessionTtlMinutes: config.sessionTtlMinutes,
    agentTimeoutMs: config.agentTimeoutMs,
    agentLatencyMs: config.agentLatencyMs,
    agentStream: config.agentStream,
    shutdownGraceMs: config.shutdownGraceMs,
    maxInputChars: config.agentMaxInputChars,
    maxResultBytes: config.resultMaxBytes,
    adaptiveConcurrency: config.adaptiveConcurrency,
    resultCache: config.resultCache,
    resultCacheMaxEntries: config.resultCacheMaxEntries,
    resultCacheTtlHours: config.resultCacheTtlHours,
    llm: config.llm,
    neo4j: config.neo4j && {
      uri: config.neo4j.uri,
      user: config.neo4j.user,
      password: config.neo4j.password,
      ...(config.neo4j.database ? { database: config.neo4j.database } : {}),
    },
    memoryDelivery: {
      batchSize: config.memoryBatchSize,
      retryMaxMs: config.memoryRetryMaxMs,
      attemptTimeoutMs: config.memoryAttemptTimeoutMs,
      shutdownAttemptMs: config.memoryShutdownMs,
    },
    ...(config.redis && { redis: config.redis }),
  };
}

/** Failed sign-ins shared by the service's processes (`AuthFailureStore`), or null in one process. */
export const AUTH_FAILURE_STORE = Symbol('AuthFailureStore');

/** `POST /parallel/execute`: the only route under the rate limit. */
function isExecuteRequest(ctx: ExecutionContext): boolean {
  const req = ctx.switchToHttp().getRequest<Request>();
  return req.method === 'POST' && req.path === '/parallel/execute';
}

/** The service: the orchestrator and its API on the environment's configuration, with logging, the global pipe and the rate limit. */
@Module({})
export class AppModule {
  static forConfig(config: AppConfig): DynamicModule {
    // the last line of defence: no spelling of the token, nor a session cookie's value, reaches any log line
    const scrub = secretScrubber([config.apiToken], [SESSION_VALUE]);
    const httpLogOptions: PinoHttpOptions = {
      level: config.logLevel,
      genReqId: (req) => requestIdOf(req),
      // one line per request, `GET /path 200 3 ms`; the JSON format adds the fields below
      customSuccessMessage: requestLine,
      customErrorMessage: failedRequestLine,
      // the human-readable line has the task id in its path already
      ...(!config.logPretty && {
        customProps: (req) => {
          const taskId = taskIdOfUrl((req as { originalUrl?: string }).originalUrl ?? req.url);
          return taskId ? { task_id: taskId } : {};
        },
      }),
      redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
      // the raw URL may carry ?access_token= (in any percent-encoding): logged with the token masked; of the headers
      // only a few (not the same security headers on every response)
      serializers: { req: requestLogView, res: responseLogView },
      ...(scrub ? { hooks: { streamWrite: scrub } } : {}),
      autoLogging: { ignore: (req) => req.url === '/health' },
    };
    // one object, imported here and by the modules that need its exports (nothing is global)
    const options = canvasBatchOptionsOf(config);
    const orchestrator = OrchestratorModule.forRoot(options);
    // the distributed engine: the execute rate limit and failed sign-ins count in Redis, once for every process
    const redis = options.redis && resolveRedisEngine(options.redis);
    const limits = redis && connectRedis(redis.url, `${redis.instanceId}:http-limits`);
    const keys = redis && new RedisKeys(redis.prefix);
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot({
          // JSON lines are written synchronously: pino's default writes go through libuv's file pool, so when file
          // calls hang (a stuck drive under the vault) the log would go silent exactly when it is needed
          pinoHttp: config.logPretty
            ? { ...httpLogOptions, transport: { target: 'pino-pretty', options: PRETTY_LOG_OPTIONS } }
            : [httpLogOptions, pino.destination({ dest: 1, sync: true })],
        }),
        EventEmitterModule.forRoot(),
        ThrottlerModule.forRoot({
          throttlers: [{ name: 'default', ttl: 60_000, limit: Math.max(1, config.executeRateLimit) }],
          skipIf: (ctx) => config.executeRateLimit === 0 || !isExecuteRequest(ctx),
          // closes the shared connection on shutdown
          ...(limits &&
            keys && { storage: new RedisThrottlerStorage(limits, keys, { quitOnShutdown: true }) }),
        }),
        ObservabilityModule.register(orchestrator, { instance: redis?.instanceId }),
        DashboardModule.register(orchestrator),
        PlanningModule.register(orchestrator),
        orchestrator,
      ],
      providers: [
        // the token check and problem+json errors (the filter included) are the HTTP edge's: configureHttpEdge
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_GUARD, useClass: ThrottlerGuard },
        {
          provide: AUTH_FAILURE_STORE,
          useValue: limits && keys ? new RedisAuthFailureStore(limits, keys) : null,
        },
      ],
      exports: [AUTH_FAILURE_STORE],
    };
  }
}
