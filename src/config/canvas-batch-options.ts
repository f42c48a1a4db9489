import { ConfigurableModuleBuilder, Inject } from '@nestjs/common';
import type { AgentRunner } from '../agent/agent-runner';
import type { TokenPrices } from '../agent/llm/llm-settings';

/**
 * What a host application (or our own `AppModule`) gives `OrchestratorModule.forRoot(Async)`. Everything except
 * the two paths has a default; resolve them with `resolveOptions`.
 */
export interface CanvasBatchOptions {
  /** Absolute path of the Obsidian vault. Every canvas path is relative to it and confined to it. */
  vaultRoot: string;
  /** Where the embedded SQLite database lives. */
  dataDir: string;
  /** Agents running at once across every batch of this process. Default 12. */
  globalMaxConcurrent?: number;
  /** How long finished tasks stay queryable. Default 30. */
  sessionTtlMinutes?: number;
  /** How often the cleanup loop looks for expired tasks. Default 60 s. */
  cleanupIntervalMs?: number;
  /** Cadence of `progress_update` while a task runs. Default 500 ms. */
  progressIntervalMs?: number;
  /** Longest silence on an SSE stream before a `: keep-alive` comment. Default 15 s. */
  keepAliveIntervalMs?: number;
  /** One agent call's own deadline. Default 120 s. */
  agentTimeoutMs?: number;
  /** Offline provider only: simulated think time per node, fixed or a `{ min, max }` range. Default 0. */
  agentLatencyMs?: number | { min: number; max: number };
  /** On shutdown, how long running nodes may finish before they are left for the next start. Default 30 s. */
  shutdownGraceMs?: number;
  /**
   * How process-wide slots are shared: `fair` (default) — round-robin between running batches, and within a batch
   * the longest-expected nodes first (per-agent-type duration estimates learned from completed nodes); `fifo` — the
   * plain first-come order of the original (kept for comparison in benchmarks).
   */
  scheduling?: 'fair' | 'fifo';
  /** Your own agent runner (e.g. a different LLM client). Default: the deterministic offline runner. */
  agentRunner?: AgentRunner;
  /** Halve the process-wide limit when the provider answers 429 and grow it back on success (AIMD). Default true. */
  adaptiveConcurrency?: boolean;
  /** USD per million input/output tokens: adds `cost_usd` to every `usage`. Default: none. */
  tokenPrices?: TokenPrices;
}

export type ResolvedCanvasBatchOptions = Required<Omit<CanvasBatchOptions, 'agentRunner' | 'tokenPrices'>> &
  Pick<CanvasBatchOptions, 'agentRunner' | 'tokenPrices'>;

export function resolveOptions(options: CanvasBatchOptions): ResolvedCanvasBatchOptions {
  return {
    vaultRoot: options.vaultRoot,
    dataDir: options.dataDir,
    globalMaxConcurrent: 12,
    sessionTtlMinutes: 30,
    cleanupIntervalMs: 60_000,
    progressIntervalMs: 500,
    keepAliveIntervalMs: 15_000,
    agentTimeoutMs: 120_000,
    agentLatencyMs: 0,
    shutdownGraceMs: 30_000,
    scheduling: 'fair',
    adaptiveConcurrency: true,
    ...stripUndefined(options),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
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

/** Token of the resolved options (defaults filled in), provided by `OrchestratorModule`. */
export const RESOLVED_OPTIONS = Symbol('CanvasBatchResolvedOptions');

/** Injects the resolved `CanvasBatchOptions` into any provider of the feature modules. */
export const InjectCanvasBatchOptions = (): ParameterDecorator => Inject(RESOLVED_OPTIONS);
