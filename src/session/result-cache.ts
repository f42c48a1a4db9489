import type { AgentStructuredOutput, TokenUsage } from '../agent';

/** One stored agent output: what a fresh run of the same node would produce, and what producing it cost. */
export interface CachedResult {
  /** The agent's markdown, as the runner returned it (the result file's heading is added when it is written). */
  markdown: string;
  structured?: AgentStructuredOutput;
  /** Tokens the original run was billed for (a hit costs none). */
  usage: TokenUsage;
  /** When the output was stored (ISO time): the entry expires `ttlMs` after it. */
  createdAt: string;
}

/** How much the cache keeps: at most `maxEntries` (the oldest stored go first), each for `ttlMs`. */
export interface ResultCacheLimits {
  maxEntries: number;
  ttlMs: number;
}

/**
 * Port: agent outputs by their key (`resultCacheKey`: agent, template version, provider and model, the node's content
 * and context, hashed), so an identical node run again makes no provider call ("never pay twice"). Bounded by
 * `ResultCacheLimits`: an entry older than `ttlMs` is a miss (and is removed on a later store), and storing past
 * `maxEntries` removes the oldest stored first. Adapters: SQLite (embedded engine, table `result_cache`), Redis
 * (distributed engine: every process shares the entries) and in-memory (unit tests); all pass
 * `result-cache.contract.ts`.
 */
export abstract class ResultCache {
  /** The live entry of `key`, or undefined (never stored, expired or evicted). */
  abstract get(key: string): Promise<CachedResult | undefined>;
  /** Stores (or replaces) `key`'s entry, then applies the limits; atomic. */
  abstract put(key: string, value: CachedResult): Promise<void>;
  /** Removes every entry; returns how many there were (expired ones not yet removed included). */
  abstract clear(): Promise<number>;
  /** Live entries (not expired). */
  abstract size(): Promise<number>;
}

/** `value` as every adapter returns it: its own copy, without absent members. */
export function cachedCopy(value: CachedResult): CachedResult {
  return {
    markdown: value.markdown,
    ...(value.structured && { structured: structuredClone(value.structured) }),
    usage: { inputTokens: value.usage.inputTokens, outputTokens: value.usage.outputTokens },
    createdAt: value.createdAt,
  };
}

/** Whether an entry stored at `createdAt` has expired at `now` (epoch ms). */
export function expired(createdAt: string, now: number, ttlMs: number): boolean {
  return Date.parse(createdAt) + ttlMs <= now;
}
