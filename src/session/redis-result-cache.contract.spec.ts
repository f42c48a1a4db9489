import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { RedisEventLog } from './redis-event-log';
import { RedisResultCache } from './redis-result-cache';
import { CONTRACT_LIMITS, describeResultCacheContract } from './result-cache.contract';

describeWithRedis('RedisResultCache contract', (url) => {
  describeResultCacheContract('RedisResultCache (one string per entry, a sorted set as index)', () => {
    const prefix = uniquePrefix('result-cache');
    const logs = [new RedisEventLog({ url, prefix, name: prefix })];
    // the time the suite starts, moved on by the test: an entry's own Redis expiry (the TTL) never ends within a test
    const start = Date.now();
    let offset = 0;
    const now = (): number => start + offset;
    return {
      cache: new RedisResultCache(logs[0], CONTRACT_LIMITS, now),
      now,
      advance: (ms) => (offset += ms),
      // another process of the distributed engine: its own connections to the same Redis and prefix
      reopen: () => {
        logs.push(new RedisEventLog({ url, prefix, name: `${prefix}-other` }));
        return new RedisResultCache(logs[logs.length - 1], CONTRACT_LIMITS, now);
      },
      close: async () => {
        await Promise.all(logs.map((l) => l.shutdown()));
        await deletePrefix(url, prefix);
      },
    };
  });
});
