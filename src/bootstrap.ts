import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { AppModule, AUTH_FAILURE_STORE } from './app.module';
import {
  type AuthFailureStore,
  configureHttpEdge,
  mountApiDocs,
  exitAfterFileCalls,
  type HttpEdgeOptions,
  ServiceLogger,
  shutdownWatchdog,
} from './common';
import { VaultService } from './canvas';
import { mountDashboard } from './dashboard';
import { httpMetrics, MetricsService } from './observability';
import { listenFailure, loadAppConfig, resolveRedisEngine, type AppConfig } from './config';
import { BatchOrchestrator } from './orchestrator';

/**
 * Creates the service (not yet listening) for a configuration. A failure rejects (Nest neither logs it nor exits).
 * `holdLogs`: Nest's start-up lines stay buffered until `app.flushLogs()` (`bootstrap` flushes once it listens, so a
 * start that fails prints only its one failure line).
 */
export async function createApp(
  config: AppConfig,
  options: { holdLogs?: boolean } = {},
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forConfig(config), {
    bufferLogs: true,
    abortOnError: false,
    ...(options.holdLogs ? { autoFlushLogs: false } : {}),
    bodyParser: false,
    forceCloseConnections: true,
  });
  // Nest's module and route listing at debug: the start banner says what matters
  app.useLogger(new ServiceLogger(app.get(Logger)));
  configureApp(app, config);
  return app;
}

/**
 * HTTP metrics, then the HTTP edge (`configureHttpEdge`: request ids, security headers, CORS, the token check, body
 * parsing, problem+json errors) with the dashboard at `/` behind it, and the contract (`specs/api`) at `/docs`.
 */
export function configureApp(app: NestExpressApplication, config: HttpEdgeOptions): void {
  const metrics = app.get(MetricsService, { strict: false });
  app.use(httpMetrics(metrics.httpDuration));
  const authFailureStore =
    app.get<AuthFailureStore | null>(AUTH_FAILURE_STORE, { strict: false }) ?? undefined;
  configureHttpEdge(app, { ...config, authFailureStore }, (edge) => mountDashboard(app, edge));
  mountApiDocs(app);
}

/**
 * Starts the service from the environment and returns it listening. Rejects when it cannot start (the caller logs
 * the error with `reportStartupFailure` and exits 1).
 */
export async function bootstrap(env: NodeJS.ProcessEnv = process.env): Promise<NestExpressApplication> {
  const config = loadAppConfig(env);
  const app = await createApp(config, { holdLogs: true });
  try {
    await app.listen(config.port, config.host);
  } catch (err) {
    // not closed: main.ts exits at once (a close would first wait for tasks resumed during init); what they did is
    // stored, and the next start resumes them, as after a crash
    throw listenFailure(err, config.port, config.host);
  }
  app.flushLogs();
  const { port } = app.getHttpServer().address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const logger = new NestLogger('Bootstrap');
  const vault = app.get(VaultService, { strict: false }).root;
  for (const line of startBanner(config, `http://${host}:${port}`, vault)) logger.log(line);
  exitOnSignals(app, logger, config.shutdownGraceMs + config.memoryShutdownMs + SHUTDOWN_MARGIN_MS);
  return app;
}

/**
 * The start banner, one log line each: where it listens (the line test harnesses wait for: "listening on <url>"),
 * the vault and data folder, which agents run (never with the key), and the engine.
 */
export function startBanner(config: AppConfig, url: string, vault: string): string[] {
  const llm = config.llm;
  const redis = config.redis && resolveRedisEngine(config.redis);
  return [
    `canvas-batch ${PACKAGE_VERSION} listening on ${url} (dashboard at /, API docs at /docs)`,
    `vault: ${vault}${config.vaultRoot ? '' : ' (the example vault; set VAULT_ROOT to use your own)'}`,
    `data dir: ${config.dataDir}`,
    llm?.local
      ? `agents: local model ${llm.model}, ${llm.local.sequences} parallel sequence${llm.local.sequences === 1 ? '' : 's'} (at most ${Math.min(llm.local.sequences, config.globalMaxConcurrent)} nodes at once), ${llm.local.threads} thread${llm.local.threads === 1 ? '' : 's'}, context ${llm.local.contextSize ?? 'auto'} tokens`
      : llm
        ? `agents: ${llm.provider}, model ${llm.model}${llm.baseUrl ? ` at ${llm.baseUrl}` : ''}${llm.apiKey ? ' (key set)' : ''}, adaptive concurrency ${config.adaptiveConcurrency ? 'on' : 'off'}`
        : 'agents: offline provider (deterministic, no network)',
    redis
      ? `engine: distributed on Redis ${redisEndpoint(redis.url)} (prefix ${redis.prefix}), role ${redis.role}, instance ${redis.instanceId}, cluster-wide cap ${config.globalMaxConcurrent}`
      : `engine: embedded (SQLite in the data dir), cap ${Math.min(config.globalMaxConcurrent, config.llm?.local?.sequences ?? Infinity)} nodes at once`,
  ];
}

/** The package's version (`src/` and `dist/` are both one level below the package root). */
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }
).version;

/** Host and port of a Redis URL, never its credentials. */
function redisEndpoint(url: string): string {
  const { host } = new URL(url);
  return host;
}

/** Beyond the nodes' grace and memory's last delivery attempt, what the rest of a shutdown may take. */
const SHUTDOWN_MARGIN_MS = 10_000;

/**
 * SIGTERM/SIGINT: stop accepting batches, close the application (every module closes what it owns: running nodes,
 * SSE streams, timers, the database), then exit 0. Nest's own shutdown hooks re-raise the signal (exit 143), which
 * process managers read as a crash. A shutdown that cannot finish — file I/O stuck on a hung drive — still ends:
 * within `limitMs` of the signal, or as soon as the close is done when only stuck file calls remain (SIGKILL to
 * itself, status 137, with an error line saying why).
 */
function exitOnSignals(app: NestExpressApplication, logger: NestLogger, limitMs: number): void {
  let closing = false;
  const hooks = { log: (message: string) => logger.error(message) };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    logger.log(`${signal} received: shutting down`);
    shutdownWatchdog(limitMs, hooks);
    app.get(BatchOrchestrator).stopAccepting();
    app.close().then(
      () => exitAfterFileCalls(0, hooks),
      (err: unknown) => {
        logger.error(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
        return exitAfterFileCalls(1, hooks);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
