import type { Redis } from 'ioredis';
import type { RedisEventLog } from './redis-event-log';
import { type RedisSessionKeys, runScript } from './redis-session-layout';
import { type CachedResult, cachedCopy, expired, ResultCache, type ResultCacheLimits } from './result-cache';

/**
 * `ResultCache` on Redis, for the distributed engine: every process of the service reads and stores the same
 * entries. One string per entry (`P:result-cache:<key>`, the JSON of `CachedResult`, with the TTL as its expiry) and
 * one sorted set indexing them by creation time (`P:result-cache`); a store is one script (store, expire, evict).
 * Runs on the `RedisEventLog`'s command connection: the log owns and quits it.
 */
export class RedisResultCache extends ResultCache {
  private readonly redis: Redis;
  private readonly keys: RedisSessionKeys;

  constructor(
    events: RedisEventLog,
    private readonly limits: ResultCacheLimits,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.redis = events.redis;
    this.keys = events.keys;
  }

  async get(key: string): Promise<CachedResult | undefined> {
    const json = await this.redis.get(this.keys.resultCache(key));
    if (json === null) return undefined;
    const value = JSON.parse(json) as CachedResult;
    // the key's own expiry follows Redis's clock; the entry's age is judged as every adapter judges it
    return expired(value.createdAt, this.now(), this.limits.ttlMs) ? undefined : cachedCopy(value);
  }

  async put(key: string, value: CachedResult): Promise<void> {
    await runScript(
      this.redis,
      'cbResultCachePut',
      [this.keys.resultCache(key), this.keys.resultCacheIndex()],
      [
        JSON.stringify(cachedCopy(value)),
        Math.max(1, Math.ceil(this.limits.ttlMs)),
        Date.parse(value.createdAt),
        this.now() - this.limits.ttlMs,
        this.limits.maxEntries,
        key,
        this.keys.resultCache(''),
      ],
    );
  }

  async clear(): Promise<number> {
    return Number(
      await runScript(
        this.redis,
        'cbResultCacheClear',
        [this.keys.resultCacheIndex()],
        [this.keys.resultCache('')],
      ),
    );
  }

  async size(): Promise<number> {
    return this.redis.zcount(this.keys.resultCacheIndex(), `(${this.now() - this.limits.ttlMs}`, '+inf');
  }
}
