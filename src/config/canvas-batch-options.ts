import { ConfigurableModuleBuilder, Inject } from '@nestjs/common';
import type { AgentRunner } from '../agent';
import type { TokenPrices } from './llm-settings';
import type { MemoryStore, Neo4jConnectionOptions } from '../memory';

/**
 * Characters of a node's content an agent is given (`AGENT_MAX_INPUT_CHARS`): 256 Ki, as much as a file node's
 * note may hold (≤ 256 KiB), so text nodes, groups and file nodes are read alike. An LLM prompt keeps less still
 * (`AGENT_CONTEXT_TOKENS`).
 */
export const DEFAULT_MAX_INPUT_CHARS = 256 * 1024;

/** Largest result file, heading included (`RESULT_MAX_BYTES`): 1 MiB of UTF-8. */
export const DEFAULT_MAX_RESULT_BYTES = 1024 * 1024;

/** Tuning of the learning-memory drain loop (outbox → `MemoryStore`). */
export interface MemoryDeliveryOptions {
  /** Events per delivery (one Neo4j transaction). Default 500. */
  batchSize?: number;
  /** First retry delay after a failed delivery; it doubles per failure, with jitter, up to `retryMaxMs`. Default 500. */
  retryBaseMs?: number;
  /** Longest retry delay while the store is down. Default 30 s. */
  retryMaxMs?: number;
  /** How often an idle loop looks for events nobody announced. Default 2 s. */
  idlePollMs?: number;
  /**
   * How long the loop lets events gather before delivering a batch that is not full (after being woken by a new
   * event, or after delivering a partial batch): while agents finish one after the other, a delivery then carries
   * many events instead of one each. Default 50 ms.
   */
  lingerMs?: number;
  /** One delivery's bound: a store that has not answered by then failed that attempt. Default 30 s. */
  attemptTimeoutMs?: number;
  /** On shutdown, the bound of the final delivery attempt; what is left is delivered after the next start. Default 5 s. */
  shutdownAttemptMs?: number;
}

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
   * Characters of a node's content an agent is given; a longer node's content is cut, with a note, and its result
   * says so. Default 262,144 (256 Ki).
   */
  maxInputChars?: number;
  /** Largest result file in bytes (heading included); a longer output is cut, with a note. Default 1 MiB. */
  maxResultBytes?: number;
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
  /** Deliver learning-memory events to this Neo4j. Default: the embedded store (SQLite under `dataDir`). */
  neo4j?: Neo4jConnectionOptions;
  /** Your own learning-memory store; takes precedence over `neo4j`. */
  memoryStore?: MemoryStore;
  memoryDelivery?: MemoryDeliveryOptions;
}

type OptionalMembers = 'agentRunner' | 'tokenPrices' | 'neo4j' | 'memoryStore';

export type ResolvedCanvasBatchOptions = Required<
  Omit<CanvasBatchOptions, OptionalMembers | 'memoryDelivery'>
> &
  Pick<CanvasBatchOptions, OptionalMembers> & { memoryDelivery: Required<MemoryDeliveryOptions> };

export const MEMORY_DELIVERY_DEFAULTS: Readonly<Required<MemoryDeliveryOptions>> = {
  batchSize: 500,
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  idlePollMs: 2_000,
  lingerMs: 50,
  attemptTimeoutMs: 30_000,
  shutdownAttemptMs: 5_000,
};

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
    maxInputChars: DEFAULT_MAX_INPUT_CHARS,
    maxResultBytes: DEFAULT_MAX_RESULT_BYTES,
    scheduling: 'fair',
    adaptiveConcurrency: true,
    ...stripUndefined(options),
    memoryDelivery: { ...MEMORY_DELIVERY_DEFAULTS, ...stripUndefined(options.memoryDelivery ?? {}) },
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
