import type { Redis } from 'ioredis';
import type { AuthFailureStore } from '../common';
import type { RedisKeys } from './redis-connection';

/** One failure: the count, and a window that starts with the first one. KEYS: count. ARGV: window ms. */
const ADD = `
local failures = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return { failures, left }`;

/**
 * Failed-authentication counts shared by the service's processes (`AuthFailureLimiter`'s `store`): one key per
 * client, `<prefix>:auth-failures:<client>`, that expires with its window.
 */
export class RedisAuthFailureStore implements AuthFailureStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async add(client: string, windowMs: number): Promise<{ failures: number; expiresInMs: number }> {
    const reply = (await this.redis.eval(
      ADD,
      1,
      this.keys.key('auth-failures', client),
      Math.max(1, Math.ceil(windowMs)),
    )) as [number, number];
    return { failures: Number(reply[0]), expiresInMs: Number(reply[1]) };
  }
}
