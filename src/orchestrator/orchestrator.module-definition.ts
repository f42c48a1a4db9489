import { ConfigurableModuleBuilder, type DynamicModule, Module } from '@nestjs/common';
import type { AgentModuleOptions, AgentRunner } from '../agent';
import type { CanvasModuleOptions } from '../canvas';
import {
  type CanvasBatchSettings,
  RESOLVED_OPTIONS,
  resolveOptions,
  type ResolvedCanvasBatchOptions,
} from '../config';
import type { DatabaseModuleOptions } from '../database';
import type { MemoryModuleOptions, MemoryStore, Neo4jConnectionOptions } from '../memory';
import type { SessionModuleOptions } from '../session';

/**
 * What a host application (or our own `AppModule`) gives `OrchestratorModule.forRoot(Async)`: the plain settings
 * (`CanvasBatchSettings`: paths, limits, intervals, LLM settings; defaults in `OPTION_DEFAULTS`) and the host's own
 * objects. Everything except the two paths has a default.
 */
export interface CanvasBatchOptions extends CanvasBatchSettings {
  /** Your own agent runner (e.g. a different LLM client); takes precedence over `llm`. Default: the offline runner. */
  agentRunner?: AgentRunner;
  /** Deliver learning-memory events to this Neo4j. Default: the embedded store (SQLite under `dataDir`). */
  neo4j?: Neo4jConnectionOptions;
  /** Your own learning-memory store; takes precedence over `neo4j`. */
  memoryStore?: MemoryStore;
}

/** The host's options mapped, once, onto the orchestrator's own resolved options and each feature module's options. */
export interface ComposedOptions {
  orchestrator: ResolvedCanvasBatchOptions;
  database: DatabaseModuleOptions;
  canvas: CanvasModuleOptions;
  session: SessionModuleOptions;
  agent: AgentModuleOptions;
  memory: MemoryModuleOptions;
}

/** Fills in the defaults and hands each module the part it owns. */
export function composeOptions(options: CanvasBatchOptions): ComposedOptions {
  const resolved = resolveOptions(options);
  const redis = resolved.redis && {
    url: resolved.redis.url,
    prefix: resolved.redis.prefix,
    instanceId: resolved.redis.instanceId,
  };
  return {
    orchestrator: resolved,
    database: { dataDir: resolved.dataDir },
    canvas: { vaultRoot: resolved.vaultRoot },
    session: {
      cleanupIntervalMs: resolved.cleanupIntervalMs,
      resultCacheLimits: {
        maxEntries: resolved.resultCacheMaxEntries,
        ttlMs: resolved.resultCacheTtlHours * 3_600_000,
      },
      ...(redis && { redis }),
    },
    agent: { agentRunner: options.agentRunner, llm: resolved.llm, agentLatencyMs: resolved.agentLatencyMs },
    memory: {
      memoryStore: options.memoryStore,
      neo4j: options.neo4j,
      memoryDelivery: resolved.memoryDelivery,
      maxInputChars: resolved.maxInputChars,
      ...(redis && { redis }),
    },
  };
}

export const {
  ConfigurableModuleClass: CanvasBatchConfigurableModule,
  MODULE_OPTIONS_TOKEN: CANVAS_BATCH_OPTIONS,
  OPTIONS_TYPE: CANVAS_BATCH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: CANVAS_BATCH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<CanvasBatchOptions>({ moduleName: 'CanvasBatch' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createCanvasBatchOptions')
  .build();

/** Token of `ComposedOptions`, which each feature module's `forRootAsync` reads its own options from. */
export const COMPOSED_OPTIONS = Symbol('CanvasBatchComposedOptions');

/**
 * The host's options (raw, under `CANVAS_BATCH_OPTIONS`), composed once (`COMPOSED_OPTIONS`) and resolved
 * (`RESOLVED_OPTIONS`). One instance per `OrchestratorModule.forRoot(Async)`, imported by the orchestrator and by
 * each feature module's `forRootAsync`.
 */
@Module({})
export class CanvasBatchOptionsModule extends CanvasBatchConfigurableModule {
  static override forRoot(options: typeof CANVAS_BATCH_OPTIONS_TYPE): DynamicModule {
    return withComposed(super.forRoot(options));
  }

  static override forRootAsync(options: typeof CANVAS_BATCH_ASYNC_OPTIONS_TYPE): DynamicModule {
    return withComposed(super.forRootAsync(options));
  }
}

function withComposed(definition: DynamicModule): DynamicModule {
  return {
    ...definition,
    providers: [
      ...(definition.providers ?? []),
      { provide: COMPOSED_OPTIONS, inject: [CANVAS_BATCH_OPTIONS], useFactory: composeOptions },
      {
        provide: RESOLVED_OPTIONS,
        inject: [COMPOSED_OPTIONS],
        useFactory: (composed: ComposedOptions) => composed.orchestrator,
      },
    ],
    exports: [CANVAS_BATCH_OPTIONS, COMPOSED_OPTIONS, RESOLVED_OPTIONS],
  };
}
