import { type CachedResult, cachedCopy, expired, ResultCache, type ResultCacheLimits } from './result-cache';

/** `ResultCache` in memory, for unit tests: a `Map` in storing order (the oldest first). */
export class InMemoryResultCache extends ResultCache {
  private readonly entries = new Map<string, CachedResult>();

  constructor(
    private readonly limits: ResultCacheLimits,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  get(key: string): Promise<CachedResult | undefined> {
    const hit = this.entries.get(key);
    return Promise.resolve(
      hit && !expired(hit.createdAt, this.now(), this.limits.ttlMs) ? cachedCopy(hit) : undefined,
    );
  }

  put(key: string, value: CachedResult): Promise<void> {
    this.entries.delete(key); // stored again: now the newest
    this.entries.set(key, cachedCopy(value));
    for (const [k, v] of this.entries)
      if (expired(v.createdAt, this.now(), this.limits.ttlMs)) this.entries.delete(k);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.limits.maxEntries) break;
      this.entries.delete(k);
    }
    return Promise.resolve();
  }

  clear(): Promise<number> {
    const n = this.entries.size;
    this.entries.clear();
    return Promise.resolve(n);
  }

  size(): Promise<number> {
    const now = this.now();
    return Promise.resolve(
      [...this.entries.values()].filter((v) => !expired(v.createdAt, now, this.limits.ttlMs)).length,
    );
  }
}
