import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Logger } from 'nestjs-pino';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module';
import { ApiTokenCheck } from './common/api-token.guard';
import { requestId } from './common/request-id';
import { authenticate, cookies, corsOptions, mountDashboard, securityHeaders } from './dashboard/web';
import { httpMetrics } from './observability/http-metrics';
import { MetricsService } from './observability/metrics.service';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { type AppConfig, loadAppConfig } from './config/app.config';
import { BatchOrchestrator } from './orchestrator/batch-orchestrator.service';

/** Creates the service (not yet listening) for a configuration. */
export async function createApp(config: AppConfig): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forConfig(config), {
    bufferLogs: true,
    bodyParser: false,
    forceCloseConnections: true,
  });
  app.useLogger(app.get(Logger));
  configureApp(app, config);
  return app;
}

/**
 * HTTP metrics, security headers, CORS, the token check (bearer, `?access_token=` or login cookie), body parsing with
 * a size limit and problem+json errors, the dashboard at `/`, and the OpenAPI UI at `/docs`.
 */
export function configureApp(
  app: NestExpressApplication,
  config: Pick<AppConfig, 'bodyLimitBytes' | 'apiToken' | 'corsOrigins'>,
): void {
  const filter = new ProblemDetailsFilter();
  const sendProblem = (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    const problem = { ...filter.toProblem(err), instance: req.path };
    res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
  };
  const tokenCheck = new ApiTokenCheck(config.apiToken);
  const metrics = app.get(MetricsService, { strict: false });
  app.use(httpMetrics(metrics.httpDuration));
  app.use(requestId());
  app.use(securityHeaders());
  app.enableCors(corsOptions(config.corsOrigins));
  app.use(cookies());
  // Every path (Nest routes, the docs and the dashboard served by Express, unknown paths) passes the same check.
  app.use(authenticate(tokenCheck, sendProblem));
  app.use(express.json({ limit: config.bodyLimitBytes, type: ['application/json', 'application/*+json'] }));
  mountDashboard(app, tokenCheck);
  app.use(sendProblem);
  app.disable('x-powered-by');
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('canvas-batch')
      .setDescription('Run learning agents over many Obsidian canvas nodes at once.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/openapi.json' });
}

/** Starts the service from the environment and returns it listening. */
export async function bootstrap(env: NodeJS.ProcessEnv = process.env): Promise<NestExpressApplication> {
  const config = loadAppConfig(env);
  const app = await createApp(config);
  await app.listen(config.port, config.host);
  const { port } = app.getHttpServer().address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const logger = new NestLogger('Bootstrap');
  logger.log(`canvas-batch listening on http://${host}:${port} (API docs at /docs)`);
  // Which agents run, never with the key.
  const llm = config.llm;
  logger.log(
    llm
      ? `agents: ${llm.provider}, model ${llm.model}${llm.baseUrl ? ` at ${llm.baseUrl}` : ''}${llm.apiKey ? ' (key set)' : ''}, adaptive concurrency ${config.adaptiveConcurrency ? 'on' : 'off'}`
      : 'agents: offline provider (deterministic, no network)',
  );
  exitOnSignals(app, logger);
  return app;
}

/**
 * SIGTERM/SIGINT: stop accepting batches, close the application (every module closes what it owns: running nodes,
 * SSE streams, timers, the database), then exit 0. Nest's own shutdown hooks re-raise the signal (exit 143), which
 * process managers read as a crash.
 */
function exitOnSignals(app: NestExpressApplication, logger: NestLogger): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    logger.log(`${signal} received: shutting down`);
    app.get(BatchOrchestrator).stopAccepting();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
