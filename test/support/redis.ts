import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { describeWithService } from './neo4j';
import { freePort } from './service-process';

/**
 * Redis for the tests. Suites that need one use `REDIS_URL` (`.ci/run` starts a redis-server with AOF and exports
 * it); without it they skip with a message, and under REQUIRE_SERVICES=1 they fail. Each suite works under its own
 * key prefix (`uniquePrefix`), so suites share one Redis without meeting. `RedisServer` starts a private instance
 * for the tests that stop and restart Redis (they need the `redis-server` binary).
 */
export function testRedisUrl(): string | undefined {
  return process.env.REDIS_URL || undefined;
}

/** Why Redis suites cannot run here, or undefined when they can. */
export function redisMissing(): string | undefined {
  return testRedisUrl()
    ? undefined
    : 'REDIS_URL is not set (start a redis-server and export REDIS_URL to run it)';
}

/** `describe` for a suite that needs Redis (`REDIS_URL`): skipped with a message without it, failed under REQUIRE_SERVICES=1. */
export function describeWithRedis(name: string, body: (url: string) => void): void {
  describeWithService(name, redisMissing(), () => body(testRedisUrl() as string));
}

/** A key prefix no other suite or run uses. */
export function uniquePrefix(label = 'test'): string {
  return `cbt-${label}-${randomUUID().slice(0, 8)}`;
}

/** Deletes every key under `prefix` (SCAN, not KEYS). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A private redis-server (AOF on, `appendfsync always`), stoppable and restartable on the same port and data. */
export class RedisServer {
  port = 0;
  readonly dir = mkdtempSync(path.join(tmpdir(), 'redis-test-'));
  private child: ChildProcess | undefined;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    const redis = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined);
    for (let i = 0; i < 200; i++) {
      try {
        await redis.connect();
        await redis.ping();
        redis.disconnect();
        return;
      } catch {
        redis.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** SIGTERM (Redis flushes its AOF) or SIGKILL; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The environment without the distributed engine's settings: a child process of a suite about the embedded engine
 * must not switch engines because CI exports REDIS_URL for the Redis suites.
 */
export function withoutRedis(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(([k]) => !/^(REDIS_|PROCESS_ROLE$|TASK_LEASE_MS$|INSTANCE_ID$)/.test(k)),
  );
}
