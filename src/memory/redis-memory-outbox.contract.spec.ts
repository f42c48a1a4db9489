import { Logger } from '@nestjs/common';
import { memoryEvent } from '../../test/support/memory-events';
import type { Redis } from 'ioredis';
import { connectRedis, RedisKeys } from '../redis';
import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { MemoryDeliveryService } from './memory-delivery.service';
import type { MemoryEventDraft } from './memory-outbox';
import { describeMemoryOutboxContract } from './memory-outbox.contract';
import { type DeliveryReceipt, MemoryStore } from './memory-store';
import { RedisMemoryOutbox, type RedisMemoryOutboxOptions } from './redis-memory-outbox';

const event = memoryEvent;

/** A store that counts how often it was given each event (the graph's MERGE would keep one; this shows them all). */
class CountingStore extends MemoryStore {
  readonly kind = 'counting';
  readonly target = 'a counting store';
  readonly times = new Map<string, number>();
  prepare(): Promise<string> {
    return Promise.resolve(this.target);
  }
  async deliver(events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> {
    // a store's round trip: the other loop runs meanwhile
    await new Promise((r) => setTimeout(r, 2));
    for (const e of events) this.times.set(e.eventId, (this.times.get(e.eventId) ?? 0) + 1);
    return { stored: events.length };
  }
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeWithRedis('RedisMemoryOutbox', (url) => {
  describeMemoryOutboxContract('RedisMemoryOutbox (real Redis)', () => {
    const prefix = uniquePrefix('outbox');
    const redis = connectRedis(url, 'outbox-contract');
    return {
      outbox: new RedisMemoryOutbox(redis, new RedisKeys(prefix)),
      close: async () => {
        await deletePrefix(url, prefix);
        await redis.quit();
      },
    };
  });

  describe('several processes on one Redis', () => {
    let prefix: string;
    let connections: Redis[];
    let services: MemoryDeliveryService[];

    /** One "process": its own connection and consumer, on the test's keys. */
    const processOutbox = (options: RedisMemoryOutboxOptions = {}): RedisMemoryOutbox => {
      const redis = connectRedis(url, `outbox-process-${connections.length}`);
      connections.push(redis);
      return new RedisMemoryOutbox(redis, new RedisKeys(prefix), options);
    };

    const drainLoop = (outbox: RedisMemoryOutbox, store: MemoryStore): MemoryDeliveryService => {
      const service = new MemoryDeliveryService(outbox, store, {
        memoryDelivery: { batchSize: 10, idlePollMs: 20, lingerMs: 1, retryBaseMs: 10, retryMaxMs: 20 },
      });
      services.push(service);
      service.onApplicationBootstrap();
      return service;
    };

    beforeEach(() => {
      prefix = uniquePrefix('outbox');
      connections = [];
      services = [];
      jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
      jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    });

    afterEach(async () => {
      for (const s of services) await s.beforeApplicationShutdown();
      await deletePrefix(url, prefix);
      for (const c of connections) if (c.status !== 'end') await c.quit();
      jest.restoreAllMocks();
    });

    it('appends idempotently by event id whichever process appends', async () => {
      const [a, b] = [processOutbox(), processOutbox()];
      await expect(a.append(event(1))).resolves.toBe(true);
      await expect(b.append({ ...event(1), concept: 'changed' })).resolves.toBe(false);
      expect((await b.forTask('t1')).map((e) => e.concept)).toEqual(['Concept 1']);
      await expect(a.counts()).resolves.toEqual({ pending: 1, delivered: 0 });
    });

    it('hands each pending event to one deliverer: two claims at once never share an event', async () => {
      const [a, b] = [processOutbox(), processOutbox()];
      for (let i = 0; i < 50; i++) await (i % 2 ? a : b).append(event(i));
      const [first, second] = await Promise.all([a.claimBatch(30), b.claimBatch(30)]);
      const ids = [...first, ...second].map((e) => e.eventId);
      expect(first.length + second.length).toBe(50);
      expect(new Set(ids).size).toBe(50);
      // nothing is left for a third deliverer, and pendingBatch (a plain read) still sees every event
      await expect(processOutbox().claimBatch(10)).resolves.toEqual([]);
      expect(await a.pendingBatch(100)).toHaveLength(50);
    });

    it('two drain loops deliver every event exactly once', async () => {
      const [a, b] = [processOutbox(), processOutbox()];
      const store = new CountingStore();
      drainLoop(a, store);
      drainLoop(b, store);
      for (let i = 0; i < 300; i++) await (i % 2 ? a : b).append(event(i));
      await until('all delivered', async () => (await a.counts()).pending === 0);
      expect(store.times.size).toBe(300);
      expect([...store.times.values()].every((n) => n === 1)).toBe(true);
      await expect(b.counts()).resolves.toEqual({ pending: 0, delivered: 300 });
      expect((await a.forTask('t1')).every((e) => e.deliveredAt !== null && e.attempts === 1)).toBe(true);
    });

    it('keeps a failed batch with its deliverer, which gets it again; no other deliverer takes it meanwhile', async () => {
      const [a, b] = [processOutbox(), processOutbox()];
      for (let i = 0; i < 3; i++) await a.append(event(i));
      const batch = await a.claimBatch(10);
      expect(batch.map((e) => e.eventId)).toEqual(['e000', 'e001', 'e002']);
      await a.recordFailure(['e000', 'e001', 'e002'], `connect ECONNREFUSED ${'x'.repeat(2000)}`);
      await expect(b.claimBatch(10)).resolves.toEqual([]);
      const again = await a.claimBatch(10);
      expect(again.map((e) => [e.eventId, e.attempts])).toEqual([
        ['e000', 1],
        ['e001', 1],
        ['e002', 1],
      ]);
      expect(await a.lastError('e000')).toHaveLength(1000);
      await expect(a.markDelivered(['e000', 'e001', 'e002'], 'now')).resolves.toBe(3);
      await expect(a.claimBatch(10)).resolves.toEqual([]);
    });

    it("gives a dead deliverer's batch to another after the idle timeout, and the graph gets each event once", async () => {
      const dead = processOutbox();
      for (let i = 0; i < 25; i++) await dead.append(event(i));
      // the process claimed a batch (the store may even hold it) and died before marking it
      const claimed = await dead.claimBatch(20);
      expect(claimed).toHaveLength(20);
      connections[0].disconnect();

      // a deliverer with the default (long) timeout gets only what nobody holds
      const patient = processOutbox();
      expect((await patient.claimBatch(100)).map((e) => e.eventId)).toEqual([
        'e020',
        'e021',
        'e022',
        'e023',
        'e024',
      ]);
      await patient.markDelivered(['e020', 'e021', 'e022', 'e023', 'e024'], 'now');

      // one with a short timeout takes the dead one's batch over once it has been idle that long
      const survivor = processOutbox({ claimIdleMs: 200 });
      const store = new CountingStore();
      drainLoop(survivor, store);
      await until('the dead batch delivered', async () => (await survivor.counts()).pending === 0);
      expect([...store.times.keys()].sort()).toEqual(claimed.map((e) => e.eventId));
      expect([...store.times.values()].every((n) => n === 1)).toBe(true);
      await expect(survivor.counts()).resolves.toEqual({ pending: 0, delivered: 25 });
      // the stream holds nothing more: every entry was acknowledged and deleted
      const redis = connections[connections.length - 1];
      await expect(redis.xlen(new RedisKeys(prefix).key('memory', 'stream'))).resolves.toBe(0);
    });

    it('claims from an outbox nothing was appended to (no stream yet)', async () => {
      await expect(processOutbox().claimBatch(10)).resolves.toEqual([]);
    });
  });
});
