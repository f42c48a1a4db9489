import { Redis, type RedisOptions } from 'ioredis';

/**
 * A connection to the service's Redis (the distributed engine). Commands wait through a reconnect instead of
 * failing after a few retries (`maxRetriesPerRequest: null`, what BullMQ requires too): a Redis restart mid-batch
 * delays the batch, it does not fail it. `name` shows in `CLIENT LIST`.
 */
export function connectRedis(url: string, name: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    // reconnect quickly at first, never give up (a restart with AOF takes a second or two)
    retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
    ...extra,
  });
}

/**
 * Every key and channel of one service in a shared Redis starts with its prefix (`REDIS_PREFIX`, default
 * `canvas-batch`), so several services (or test runs) share one Redis without meeting.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  key(...parts: (string | number)[]): string {
    return [this.prefix, ...parts].join(':');
  }
}
