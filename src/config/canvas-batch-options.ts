import { Inject } from '@nestjs/common';
import { hostname } from 'node:os';
import type { LlmSettings, TokenPrices } from './llm-settings';

/** Tuning of the learning-memory drain loop (outbox → `MemoryStore`). Defaults: `OPTION_DEFAULTS.memoryDelivery`. */
export interface MemoryDeliveryOptions {
  /** Events per delivery (one Neo4j transaction). */
  batchSize?: number;
  /** First retry delay after a failed delivery; it doubles per failure, with jitter, up to `retryMaxMs`. */
  retryBaseMs?: number;
  /** Longest retry delay while the store is down. */
  retryMaxMs?: number;
  /** How often an idle loop looks for events nobody announced. */
  idlePollMs?: number;
  /**
   * How long the loop lets events gather before delivering a batch that is not full (after being woken by a new
   * event, or after delivering a partial batch): while agents finish one after the other, a delivery then carries
   * many events instead of one each.
   */
  lingerMs?: number;
  /** One delivery's bound: a store that has not answered by then failed that attempt. */
  attemptTimeoutMs?: number;
  /** On shutdown, the bound of the final delivery attempt; what is left is delivered after the next start. */
  shutdownAttemptMs?: number;
}

/**
 * The one table of defaults: `resolveOptions` fills them into the host's options, the environment loader
 * (`loadAppConfig`) uses them for unset variables, and a feature module imported on its own falls back to them.
 */
export const OPTION_DEFAULTS = {
  globalMaxConcurrent: 12,
  sessionTtlMinutes: 30,
  cleanupIntervalMs: 60_000,
  progressIntervalMs: 500,
  keepAliveIntervalMs: 15_000,
  agentTimeoutMs: 120_000,
  agentLatencyMs: 0,
  agentStream: false,
  shutdownGraceMs: 30_000,
  /**
   * Characters of a node's content an agent is given (`AGENT_MAX_INPUT_CHARS`): 256 Ki, as much as a file node's
   * note may hold (≤ 256 KiB), so text nodes, groups and file nodes are read alike. An LLM prompt keeps less still
   * (`AGENT_CONTEXT_TOKENS`).
   */
  maxInputChars: 256 * 1024,
  /** Largest result file, heading included (`RESULT_MAX_BYTES`): 1 MiB of UTF-8. */
  maxResultBytes: 1024 * 1024,
  scheduling: 'least-work',
  adaptiveConcurrency: true,
  /** Reuse a stored output for an identical node (`RESULT_CACHE`); at most 10,000 entries (`RESULT_CACHE_MAX_ENTRIES`), each for 30 days (`RESULT_CACHE_TTL_HOURS`). */
  resultCache: true,
  resultCacheMaxEntries: 10_000,
  resultCacheTtlHours: 720,
  memoryDelivery: {
    batchSize: 500,
    retryBaseMs: 500,
    retryMaxMs: 30_000,
    idlePollMs: 2_000,
    lingerMs: 50,
    attemptTimeoutMs: 30_000,
    shutdownAttemptMs: 5_000,
  },
} as const satisfies Omit<ResolvedCanvasBatchOptions, 'vaultRoot' | 'dataDir' | OptionalSettings>;

export const DEFAULT_MAX_INPUT_CHARS = OPTION_DEFAULTS.maxInputChars;
export const DEFAULT_MAX_RESULT_BYTES = OPTION_DEFAULTS.maxResultBytes;

/**
 * The plain settings of `CanvasBatchOptions` (everything but the host's own objects: agent runner, memory store,
 * Neo4j connection, which `CanvasBatchOptions` in orchestrator/ adds). Everything except the two paths has a
 * default in `OPTION_DEFAULTS`.
 */
export interface CanvasBatchSettings {
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
  /**
   * Agents report their text as it is written (the offline agent spreads it over its latency; LLM providers stream),
   * and SSE subscribers that ask for it (`?include=deltas`) get it as `task_output_delta` events. Default false.
   */
  agentStream?: boolean;
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
   * How the global slots are shared between batches: `least-work` (default) — a freed slot goes to the batch with
   * the least expected work not started yet (a small batch beside a big one starts first; a batch passed over
   * 2 × the cap times in a row gets the next slot), and within a batch the longest-expected nodes first
   * (per-agent-type duration estimates learned from completed nodes); `fair` — round-robin between running batches,
   * longest-expected first within one; `fifo` — the plain first-come order of the original. Chosen by measurement:
   * a 10-node batch beside a 2,000-node one takes 1.3–1.8× its solo time under `least-work`, 2.1–2.7× under `fair`
   * (`npm run bench -- fairness`, bench/README.md).
   */
  scheduling?: 'fair' | 'least-work' | 'fifo';
  /** Halve the process-wide limit when the provider answers 429 and grow it back on success (AIMD). Default true. */
  adaptiveConcurrency?: boolean;
  /**
   * The result cache ("never pay twice"): a node whose agent, prompt template version, provider, model, content and
   * context were all seen before reuses the stored output without a provider call (a batch may opt out with
   * `cache: false`). Default true.
   */
  resultCache?: boolean;
  /** Most entries the result cache keeps; storing more removes the oldest stored first. Default 10,000. */
  resultCacheMaxEntries?: number;
  /** How long a result-cache entry is used, in hours. Default 720 (30 days). */
  resultCacheTtlHours?: number;
  /**
   * Run the agents on this LLM provider (the built-in runner of the Vercel AI SDK). Default: the deterministic
   * offline runner. A host's own `agentRunner` takes precedence.
   */
  llm?: LlmSettings;
  /** USD per million input/output tokens: adds `cost_usd` to every `usage`. Default: the `llm` settings' prices. */
  tokenPrices?: TokenPrices;
  memoryDelivery?: MemoryDeliveryOptions;
  /**
   * Run on the distributed engine: every process given the same Redis (and the same vault, on shared storage) is one
   * service — tasks, events and the memory outbox in Redis, node jobs on a BullMQ queue with one cluster-wide cap.
   * Default: the embedded engine (SQLite under `dataDir`, in-process dispatch).
   */
  redis?: RedisEngineSettings;
}

/** The distributed engine's settings (`REDIS_URL`, `REDIS_PREFIX`, `PROCESS_ROLE`, `TASK_LEASE_MS`, `INSTANCE_ID`). */
export interface RedisEngineSettings {
  /** e.g. `redis://127.0.0.1:6379`. */
  url: string;
  /** Prefix of every key, channel and queue of this service in that Redis. Default `canvas-batch`. */
  prefix?: string;
  /**
   * What this process does: `both` (default) accepts batches and runs nodes; `api` accepts and coordinates batches
   * but runs no node; `worker` runs nodes (and still answers the API, health and metrics).
   */
  role?: ProcessRole;
  /** How long a batch whose owner died waits before another process takes it over. Default 10 s. */
  leaseMs?: number;
  /** This process's name in leases, logs and metrics. Default `<hostname>:<pid>`. */
  instanceId?: string;
}

export type ProcessRole = 'both' | 'api' | 'worker';

/** The distributed engine's settings with their defaults. */
export type ResolvedRedisEngine = Required<RedisEngineSettings>;

export const REDIS_DEFAULTS = { prefix: 'canvas-batch', role: 'both', leaseMs: 10_000 } as const;

/** `redis` with its defaults filled in (`instanceId`: this host and process). */
export function resolveRedisEngine(redis: RedisEngineSettings): ResolvedRedisEngine {
  const given = stripUndefined(redis);
  return {
    url: redis.url,
    prefix: given.prefix ?? REDIS_DEFAULTS.prefix,
    role: given.role ?? REDIS_DEFAULTS.role,
    leaseMs: given.leaseMs ?? REDIS_DEFAULTS.leaseMs,
    instanceId: given.instanceId ?? `${hostname()}:${process.pid}`,
  };
}

type OptionalSettings = 'llm' | 'tokenPrices' | 'redis';

/** The settings with every default filled in: what `RESOLVED_OPTIONS` provides to the orchestrator. */
export type ResolvedCanvasBatchOptions = Required<
  Omit<CanvasBatchSettings, OptionalSettings | 'memoryDelivery'>
> &
  Pick<CanvasBatchSettings, 'llm' | 'tokenPrices'> & {
    memoryDelivery: Required<MemoryDeliveryOptions>;
    redis?: ResolvedRedisEngine;
  };

/** Memory delivery tuning over its defaults, member by member (an explicit `undefined` keeps the default). */
export function resolveMemoryDelivery(tuning: MemoryDeliveryOptions = {}): Required<MemoryDeliveryOptions> {
  return { ...OPTION_DEFAULTS.memoryDelivery, ...stripUndefined(tuning) };
}

/**
 * The settings of `options` with the defaults filled in. Only the settings are taken: the host's own objects
 * (`agentRunner`, `memoryStore`, `neo4j`) go to their modules, not into the resolved options.
 */
export function resolveOptions(options: CanvasBatchSettings): ResolvedCanvasBatchOptions {
  const given = stripUndefined(options);
  const pick = <K extends keyof typeof OPTION_DEFAULTS>(key: K) => given[key] ?? OPTION_DEFAULTS[key];
  const tokenPrices = options.tokenPrices ?? options.llm?.prices;
  return {
    vaultRoot: options.vaultRoot,
    dataDir: options.dataDir,
    globalMaxConcurrent: pick('globalMaxConcurrent'),
    sessionTtlMinutes: pick('sessionTtlMinutes'),
    cleanupIntervalMs: pick('cleanupIntervalMs'),
    progressIntervalMs: pick('progressIntervalMs'),
    keepAliveIntervalMs: pick('keepAliveIntervalMs'),
    agentTimeoutMs: pick('agentTimeoutMs'),
    agentLatencyMs: pick('agentLatencyMs'),
    agentStream: pick('agentStream'),
    shutdownGraceMs: pick('shutdownGraceMs'),
    maxInputChars: pick('maxInputChars'),
    maxResultBytes: pick('maxResultBytes'),
    scheduling: pick('scheduling'),
    adaptiveConcurrency: pick('adaptiveConcurrency'),
    resultCache: pick('resultCache'),
    resultCacheMaxEntries: pick('resultCacheMaxEntries'),
    resultCacheTtlHours: pick('resultCacheTtlHours'),
    memoryDelivery: resolveMemoryDelivery(options.memoryDelivery),
    ...(options.llm && { llm: options.llm }),
    ...(tokenPrices && { tokenPrices }),
    ...(options.redis && { redis: resolveRedisEngine(options.redis) }),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Token of the resolved options (defaults filled in), provided by `OrchestratorModule` to its own providers. */
export const RESOLVED_OPTIONS = Symbol('CanvasBatchResolvedOptions');

/** Injects the resolved options (`ResolvedCanvasBatchOptions`) into a provider of the orchestrator. */
export const InjectCanvasBatchOptions = (): ParameterDecorator => Inject(RESOLVED_OPTIONS);
