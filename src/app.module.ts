import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { LoggerModule } from 'nestjs-pino';
import { ApiTokenGuard } from './common/api-token.guard';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { createValidationPipe } from './common/validation';
import { LlmAgentRunner } from './agent/llm/llm-agent-runner';
import type { AppConfig } from './config/app.config';
import { resolveVaultRoot } from './config/example-vault';
import { OrchestratorModule } from './orchestrator/orchestrator.module';

/** The service: the orchestrator and its API on the environment's configuration, with logging and the global pipe/filter. */
@Module({})
export class AppModule {
  static forConfig(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: {
            level: config.logLevel,
            redact: {
              paths: ['req.headers.authorization', 'req.headers.cookie', 'req.query.access_token'],
              censor: '[redacted]',
            },
            autoLogging: { ignore: (req) => req.url === '/health' },
            ...(config.logPretty
              ? { transport: { target: 'pino-pretty', options: { singleLine: true } } }
              : {}),
          },
        }),
        EventEmitterModule.forRoot(),
        OrchestratorModule.forRootAsync({
          useFactory: () => ({
            vaultRoot: resolveVaultRoot(config.vaultRoot, config.dataDir).root,
            dataDir: config.dataDir,
            globalMaxConcurrent: config.globalMaxConcurrent,
            sessionTtlMinutes: config.sessionTtlMinutes,
            agentTimeoutMs: config.agentTimeoutMs,
            agentLatencyMs: config.agentLatencyMs,
            shutdownGraceMs: config.shutdownGraceMs,
            adaptiveConcurrency: config.adaptiveConcurrency,
            tokenPrices: config.llm?.prices,
            agentRunner: config.llm && new LlmAgentRunner(config.llm),
          }),
        }),
      ],
      providers: [
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        { provide: APP_GUARD, useFactory: () => new ApiTokenGuard(config.apiToken) },
      ],
    };
  }
}
