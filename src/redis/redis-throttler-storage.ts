import type { OnApplicationShutdown } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-connection';

/**
 * One hit, in one atomic step: while the key is blocked the hit is refused and not counted; else it is counted in
 * a fixed window of `ttl` ms that starts with its first hit, and the hit past `limit` blocks the key for `block` ms
 * (the count starts again after it). With no block duration, hits past the limit are refused until the window ends.
 * KEYS: hits, block. ARGV: ttl, limit, block (all ms). Replies: hits, ms to window end, blocked (0|1), ms to unblock.
 */
const INCREMENT = `
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local block = tonumber(ARGV[3])
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then
  local left = redis.call('PTTL', KEYS[1])
  return { tonumber(redis.call('GET', KEYS[2])), left > 0 and left or blocked, 1, blocked }
end
if block <= 0 then
  local hits = tonumber(redis.call('GET', KEYS[1]) or '0')
  if hits >= limit and hits > 0 then
    local left = redis.call('PTTL', KEYS[1])
    return { hits + 1, left, 1, left }
  end
end
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  left = ttl
end
if block > 0 and hits > limit then
  redis.call('SET', KEYS[2], hits, 'PX', block)
  redis.call('DEL', KEYS[1])
  return { hits, left, 1, block }
end
return { hits, left, 0, 0 }`;

export interface RedisThrottlerStorageOptions {
  /** Quit the connection on application shutdown (when the storage was given a connection of its own). */
  quitOnShutdown?: boolean;
}

/**
 * `@nestjs/throttler`'s storage in Redis, so that every process of the service counts against one limit (the
 * in-memory default counts per process: N replicas would allow N × the limit). One Lua script per hit keeps the
 * count, the window and the block atomic across processes. Keys: `<prefix>:throttle:<throttler>:<key>:hits|block`
 * (the throttler's key is already a hash of route and client).
 */
export class RedisThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly options: RedisThrottlerStorageOptions = {},
  ) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<{ totalHits: number; timeToExpire: number; isBlocked: boolean; timeToBlockExpire: number }> {
    const reply = (await this.redis.eval(
      INCREMENT,
      2,
      this.keys.key('throttle', throttlerName, key, 'hits'),
      this.keys.key('throttle', throttlerName, key, 'block'),
      Math.max(1, Math.ceil(ttl)),
      limit,
      Math.max(0, Math.ceil(blockDuration)),
    )) as [number, number, number, number];
    const [totalHits, toExpireMs, blocked, toUnblockMs] = reply.map(Number);
    // the interface speaks whole seconds (Retry-After, X-RateLimit-Reset)
    const seconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));
    return {
      totalHits,
      timeToExpire: seconds(toExpireMs),
      isBlocked: blocked === 1,
      timeToBlockExpire: blocked === 1 ? Math.max(1, seconds(toUnblockMs)) : 0,
    };
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.options.quitOnShutdown && this.redis.status !== 'end') await this.redis.quit();
  }
}
