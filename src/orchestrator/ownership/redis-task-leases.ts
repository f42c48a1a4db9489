import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { type RedisKeys } from '../../redis';
import { TaskLeases } from './task-leases';

/** Takes the lease, or renews it when this owner holds it: 1 when held by `owner` afterwards, 0 otherwise. */
const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** Renews a lease still held by `owner` (1), or reports it lost (0). */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/** Deletes the lease if `owner` still holds it. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export interface RedisTaskLeasesOptions {
  /** This process's name in the lease (`INSTANCE_ID`). */
  owner: string;
  /** Lease lifetime without renewal (`TASK_LEASE_MS`); renewed every third of it. */
  ttlMs: number;
}

/**
 * Batch ownership over Redis: one key per task holding its owner, with a TTL (`SET NX PX`, compared-and-renewed by
 * Lua, so an owner only ever renews or deletes its own lease). A SIGKILLed owner stops renewing; its batches are
 * free once `ttlMs` has passed, and the recovery loop of another process takes them over. A renewal that finds the
 * lease gone or held by another process (this one was paused longer than the TTL) reports it lost.
 */
export class RedisTaskLeases extends TaskLeases {
  readonly shared = true;
  readonly ttlMs: number;
  private readonly logger = new Logger('TaskLeases');
  private readonly held = new Set<string>();
  private readonly listeners: ((taskId: string) => void)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly options: RedisTaskLeasesOptions,
  ) {
    super();
    this.ttlMs = options.ttlMs;
    this.timer = setInterval(() => void this.renewAll(), Math.max(50, Math.floor(options.ttlMs / 3)));
    this.timer.unref();
  }

  async acquire(taskId: string): Promise<boolean> {
    const got = await this.redis.eval(ACQUIRE, 1, this.key(taskId), this.options.owner, this.options.ttlMs);
    if (got === 1) this.held.add(taskId);
    return got === 1;
  }

  async release(taskId: string): Promise<void> {
    this.held.delete(taskId);
    await this.redis.eval(RELEASE, 1, this.key(taskId), this.options.owner);
  }

  onLost(listener: (taskId: string) => void): void {
    this.listeners.push(listener);
  }

  /** Stops renewing and closes its connection; leases still held expire on their own. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.held.clear();
    await this.redis.quit().catch(() => undefined);
  }

  /** Who holds the task's lease now, if anyone. */
  owner(taskId: string): Promise<string | null> {
    return this.redis.get(this.key(taskId));
  }

  private key(taskId: string): string {
    return this.keys.key('lease', taskId);
  }

  private async renewAll(): Promise<void> {
    for (const taskId of [...this.held]) {
      try {
        const kept = await this.redis.eval(RENEW, 1, this.key(taskId), this.options.owner, this.ttlMs);
        if (kept !== 1 && this.held.delete(taskId)) {
          this.logger.warn(`lost the lease of task ${taskId}: another process runs it now`);
          for (const listener of this.listeners) listener(taskId);
        }
      } catch (err) {
        // Redis unreachable: try again at the next round (the lease outlives a few missed renewals)
        this.logger.warn(`could not renew the lease of task ${taskId}: ${(err as Error).message}`);
      }
    }
  }
}
