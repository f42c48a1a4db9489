import { Logger } from '@nestjs/common';
import { memoryEvent } from '../../test/support/memory-events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type MemoryDeliveryOptions, resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { backoffDelay, MemoryDeliveryService } from './memory-delivery.service';
import type { MemoryModuleOptions } from './memory.module-definition';
import type { MemoryEventDraft } from './memory-outbox';
import { SqliteMemoryOutbox } from './sqlite-memory-outbox';
import { type DeliveryReceipt, MemoryStore } from './memory-store';

const event = memoryEvent;

/** A scripted store: each call takes the next behaviour (the last one repeats), and records what it was given. */
class ScriptedStore extends MemoryStore {
  readonly kind = 'scripted';
  readonly target = 'a scripted store';
  readonly batches: string[][] = [];
  prepared = 0;
  constructor(
    private readonly script: ((events: readonly MemoryEventDraft[]) => Promise<DeliveryReceipt>)[],
    private readonly prepareWith: () => Promise<string> = () => Promise.resolve('the scripted store'),
  ) {
    super();
  }
  prepare(): Promise<string> {
    this.prepared++;
    return this.prepareWith();
  }
  deliver(events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> {
    this.batches.push(events.map((e) => e.eventId));
    const step = this.script[Math.min(this.batches.length - 1, this.script.length - 1)];
    return step(events);
  }
}

const ok = (events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> =>
  Promise.resolve({ stored: events.length });
const down = (): Promise<DeliveryReceipt> => Promise.reject(new Error('connect ECONNREFUSED'));
const hang = (): Promise<DeliveryReceipt> => new Promise<DeliveryReceipt>(() => undefined);

async function until(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('backoffDelay', () => {
  it('doubles from the base up to the cap, with jitter between half and all of it', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, 500, 30_000, () => 1))).toEqual([500, 1000, 2000, 4000]);
    expect([1, 2, 3].map((n) => backoffDelay(n, 500, 30_000, () => 0))).toEqual([250, 500, 1000]);
    expect(backoffDelay(20, 500, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(1_000, 500, 30_000, () => 0.5)).toBe(22_500);
    // a broken random source cannot leave the range, and failure counts below 1 mean the first retry
    expect(backoffDelay(1, 500, 30_000, () => 7)).toBe(500);
    expect(backoffDelay(0, 500, 30_000, () => -3)).toBe(250);
  });
});

describe('MemoryDeliveryService (real outbox, scripted store)', () => {
  let dir: string;
  let db: SqliteDatabase;
  let outbox: SqliteMemoryOutbox;
  let service: MemoryDeliveryService | undefined;
  let logs: { log: jest.SpyInstance; warn: jest.SpyInstance; debug: jest.SpyInstance };

  const make = (
    store: MemoryStore,
    tuning: MemoryDeliveryOptions = {},
    neo4jPassword?: string,
  ): MemoryDeliveryService => {
    const options: MemoryModuleOptions = {
      memoryDelivery: { retryBaseMs: 10, retryMaxMs: 20, idlePollMs: 20, ...tuning },
      ...(neo4jPassword ? { neo4j: { uri: 'bolt://h:7687', user: 'neo4j', password: neo4jPassword } } : {}),
    };
    service = new MemoryDeliveryService(outbox, store, options);
    return service;
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'memory-delivery-'));
    logs = {
      log: jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined),
      warn: jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined),
      debug: jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined),
    };
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    outbox = new SqliteMemoryOutbox(db);
  });

  afterEach(async () => {
    await service?.beforeApplicationShutdown();
    service = undefined;
    db.onApplicationShutdown();
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers the outbox in batches, oldest first, and marks each batch delivered', async () => {
    for (const i of [5, 1, 4, 2, 3]) await outbox.append(event(i));
    const store = new ScriptedStore([ok]);
    const s = make(store, { batchSize: 2 });
    expect((await s.status()).state).toBe('starting');
    s.onApplicationBootstrap();
    s.onApplicationBootstrap(); // once only
    await until('all delivered', async () => (await outbox.counts()).pending === 0);
    expect(store.batches).toEqual([['e001', 'e002'], ['e003', 'e004'], ['e005']]);
    expect((await outbox.forTask('t1')).every((e) => e.deliveredAt !== null && e.attempts === 1)).toBe(true);
    await until('idle', async () => (await s.status()).state === 'idle');
    expect(await s.status()).toMatchObject({
      store: 'scripted',
      target: 'a scripted store',
      pending: 0,
      delivered: 5,
      failedAttempts: 0,
      lastError: null,
      oldestPendingAgeSeconds: null,
      nextRetryAt: null,
      lastDeliveryAt: expect.any(String),
    });
    expect(logs.log).toHaveBeenCalledWith(
      'learning memory goes to the scripted store; delivering 5 pending events',
    );
  });

  it('backs off while the store fails, keeps the batch pending, and resumes by itself', async () => {
    await outbox.append(event(1));
    await outbox.append(event(2));
    const store = new ScriptedStore([down, down, down, ok]);
    const s = make(store, { retryBaseMs: 30, retryMaxMs: 30 });
    s.onApplicationBootstrap();
    await until('retrying', async () => (await s.status()).state === 'retrying');
    const retrying = await s.status();
    expect(retrying).toMatchObject({ pending: 2, delivered: 0, lastError: 'connect ECONNREFUSED' });
    expect(retrying.nextRetryAt).toEqual(expect.any(String));
    expect(retrying.oldestPendingAgeSeconds).toBeGreaterThan(0);
    await until('recovered', async () => (await outbox.counts()).pending === 0);
    expect(store.batches).toHaveLength(4);
    expect(await s.status()).toMatchObject({
      failedAttempts: 3,
      lastError: 'connect ECONNREFUSED',
      delivered: 2,
    });
    // three failed attempts and the delivery are counted on each event
    expect((await outbox.forTask('t1')).map((e) => e.attempts)).toEqual([4, 4]);
    // one warning per outage, the rest at debug level, and a line when it is back
    expect(
      logs.warn.mock.calls.filter(([m]) => String(m).includes('delivery to a scripted store failed')),
    ).toEqual([
      [
        'learning memory delivery to a scripted store failed (2 events stay pending): connect ECONNREFUSED; retrying with backoff',
      ],
    ]);
    expect(logs.debug).toHaveBeenCalledTimes(2);
    expect(logs.log).toHaveBeenCalledWith(
      'learning memory store reachable again after 3 failed attempts: delivering',
    );
  });

  it('is woken by notify() when idle, not only by its poll', async () => {
    const store = new ScriptedStore([ok]);
    const s = make(store, { idlePollMs: 600_000 });
    s.onApplicationBootstrap();
    await until('idle', async () => (await s.status()).state === 'idle');
    await outbox.append(event(1));
    s.notify();
    await until('delivered after notify', async () => (await outbox.counts()).delivered === 1);
  });

  it('lets events that arrive one after the other gather for lingerMs, then delivers them as one batch', async () => {
    const store = new ScriptedStore([ok]);
    const s = make(store, { idlePollMs: 600_000, lingerMs: 200 });
    s.onApplicationBootstrap();
    await until('idle', async () => (await s.status()).state === 'idle');
    for (let i = 1; i <= 5; i++) {
      await outbox.append(event(i));
      s.notify();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await until('delivered', async () => (await outbox.counts()).delivered === 5);
    expect(store.batches).toEqual([['e001', 'e002', 'e003', 'e004', 'e005']]);
  });

  it.each([
    [
      'an answer without stored',
      () => Promise.resolve({} as DeliveryReceipt),
      'the store answered {} instead of { stored: 1 }',
    ],
    [
      'undefined',
      () => Promise.resolve(undefined as unknown as DeliveryReceipt),
      'the store answered undefined',
    ],
    ['a string', () => Promise.resolve('fine' as unknown as DeliveryReceipt), 'the store answered "fine"'],
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    ['a rejection with a string', () => Promise.reject('nope'), 'nope'],
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    ['a rejection with an object', () => Promise.reject({ code: 42 }), '{"code":42}'],
    ['an Error without a message', () => Promise.reject(new TypeError('')), 'TypeError'],
    [
      'a cyclic object',
      () => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return Promise.resolve(o as unknown as DeliveryReceipt);
      },
      'the store answered [object Object]',
    ],
    [
      'a synchronous throw',
      () => {
        throw new Error('sync boom');
      },
      'sync boom',
    ],
    [
      'a synchronous throw of a non-Error',
      () => {
        throw 'sync string'; // eslint-disable-line @typescript-eslint/only-throw-error
      },
      'sync string',
    ],
  ])('counts %s as a failed attempt and keeps the event', async (_name, step, message) => {
    await outbox.append(event(1));
    const s = make(new ScriptedStore([step]));
    s.onApplicationBootstrap();
    await until('a failure', async () => (await s.status()).failedAttempts >= 1);
    expect((await s.status()).lastError).toContain(message);
    expect(await outbox.counts()).toEqual({ pending: 1, delivered: 0 });
  });

  it('gives up on a hanging store after attemptTimeoutMs, and on shutdown within shutdownAttemptMs', async () => {
    await outbox.append(event(1));
    const s = make(new ScriptedStore([hang], () => new Promise<string>(() => undefined)), {
      attemptTimeoutMs: 50,
      shutdownAttemptMs: 50,
    });
    s.onApplicationBootstrap();
    await until('a timed-out attempt', async () => (await s.status()).failedAttempts >= 1);
    expect((await s.status()).lastError).toBe('delivery: no answer within 50 ms');
    expect(logs.warn).toHaveBeenCalledWith(
      expect.stringMatching(
        /^learning memory store unreachable at start-up \(a scripted store\): start-up check: no answer within 50 ms\. The service runs on/,
      ),
    );
    await s.beforeApplicationShutdown();
    await s.beforeApplicationShutdown(); // once only
    expect(await s.status()).toMatchObject({ state: 'stopped', pending: 1 });
    expect(logs.warn).toHaveBeenCalledWith(
      '1 memory events stay in the outbox; they are delivered after the next start',
    );
  });

  it('gives up on an attempt in flight at the shutdown bound', async () => {
    await outbox.append(event(1));
    const store = new ScriptedStore([hang]);
    const s = make(store, { attemptTimeoutMs: 600_000, shutdownAttemptMs: 30 });
    s.onApplicationBootstrap();
    await until('delivering', () => store.batches.length === 1);
    await s.beforeApplicationShutdown();
    expect(await s.status()).toMatchObject({ state: 'stopped', pending: 1, failedAttempts: 1 });
    expect((await s.status()).lastError).toMatch(/^shutdown: no answer within the final attempt's 30 ms/);
  });

  it('makes a final attempt on shutdown while backing off, and delivers if the store is back', async () => {
    await outbox.append(event(1));
    const store = new ScriptedStore([down, ok]);
    const s = make(store, { retryBaseMs: 600_000, retryMaxMs: 600_000 });
    s.onApplicationBootstrap();
    await until('retrying', async () => (await s.status()).state === 'retrying');
    await s.beforeApplicationShutdown();
    expect(store.batches).toHaveLength(2);
    expect(await outbox.counts()).toEqual({ pending: 0, delivered: 1 });
  });

  it('a shutdown before start-up and with nothing pending logs nothing about the outbox', async () => {
    const s = make(new ScriptedStore([ok]));
    await s.beforeApplicationShutdown();
    expect((await s.status()).state).toBe('stopped');
    expect(logs.warn).not.toHaveBeenCalled();
  });

  it('survives an outbox it cannot read (database closed): counts the failure and stops on shutdown', async () => {
    const s = make(new ScriptedStore([ok]));
    db.onApplicationShutdown();
    s.onApplicationBootstrap();
    await until('a failure', () => (s as unknown as { failedAttempts: number }).failedAttempts >= 1);
    expect(logs.warn).toHaveBeenCalledWith(
      expect.stringMatching(
        /^learning memory store unreachable at start-up .*database connection is not open/,
      ),
    );
    await s.beforeApplicationShutdown();
  });

  it('redacts the Neo4j password from every message it keeps or logs', async () => {
    await outbox.append(event(1));
    const s = make(
      new ScriptedStore([() => Promise.reject(new Error('auth failed for neo4j/hunter2-secret'))], () =>
        Promise.resolve('Neo4j hunter2-secret'),
      ),
      {},
      'hunter2-secret',
    );
    s.onApplicationBootstrap();
    await until('a failure', async () => (await s.status()).failedAttempts >= 1);
    expect((await s.status()).lastError).toBe('auth failed for neo4j/[redacted]');
    const logged = JSON.stringify([logs.log.mock.calls, logs.warn.mock.calls, logs.debug.mock.calls]);
    expect(logged).not.toContain('hunter2-secret');
    expect(logged).toContain('[redacted]');
  });

  it('names a store whose kind and target cannot be read "custom", and an odd created_at an age of 0', async () => {
    class Nameless extends MemoryStore {
      get kind(): string {
        throw new Error('no');
      }
      get target(): string {
        return '';
      }
      prepare(): Promise<string> {
        return Promise.resolve('');
      }
      deliver(events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> {
        return ok(events);
      }
    }
    await outbox.append({ ...event(1), createdAt: 'not a date' });
    const s = make(new Nameless());
    expect(await s.status()).toMatchObject({ store: 'custom', target: 'custom', oldestPendingAgeSeconds: 0 });
  });
});
