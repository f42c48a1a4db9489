import { Logger as NestLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Logger } from 'nestjs-pino';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { type AppConfig, loadAppConfig } from './config/app.config';

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

/** Body parsing with a size limit and problem+json errors, shutdown hooks, and the OpenAPI UI at `/docs`. */
export function configureApp(app: NestExpressApplication, config: Pick<AppConfig, 'bodyLimitBytes'>): void {
  const filter = new ProblemDetailsFilter();
  app.use(express.json({ limit: config.bodyLimitBytes, type: ['application/json', 'application/*+json'] }));
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const problem = { ...filter.toProblem(err), instance: req.originalUrl };
    res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
  });
  app.disable('x-powered-by');
  app.enableShutdownHooks();
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
  new NestLogger('Bootstrap').log(`canvas-batch listening on http://${host}:${port} (API docs at /docs)`);
  return app;
}
