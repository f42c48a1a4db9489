import type { Redis } from 'ioredis';
import { memoryEvent } from '../../test/support/memory-events';
import { connectRedis, RedisKeys } from '../redis';
import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { RedisMemoryOutbox } from './redis-memory-outbox';

/*
 * What the shared contract and the several-processes suite do not reach: the connection's ownership on shutdown,
 * a stream or group that vanished or was tampered with, stream entries that carry no (known) event, and the order
 * of a batch whose events arrived out of order.
 */

const event = memoryEvent;

describeWithRedis('RedisMemoryOutbox (edges)', (url) => {
  let prefix: string;
  let keys: RedisKeys;
  let connections: Redis[];

  const connect = (): Redis => {
    const redis = connectRedis(url, `outbox-edge-${connections.length}`);
    connections.push(redis);
    return redis;
  };
  const streamKey = (): string => keys.key('memory', 'stream');

  beforeEach(() => {
    prefix = uniquePrefix('outbox-edge');
    keys = new RedisKeys(prefix);
    connections = [];
  });

  afterEach(async () => {
    await deletePrefix(url, prefix);
    for (const c of connections) if (c.status !== 'end') await c.quit();
  });

  describe('shutdown', () => {
    it('leaves the connection open by default: its creator owns it', async () => {
      const redis = connect();
      const outbox = new RedisMemoryOutbox(redis, keys);
      await outbox.onApplicationShutdown();
      await expect(redis.ping()).resolves.toBe('PONG');
    });

    it('with quitOnShutdown closes the connection, and does not fail when it was closed already', async () => {
      const redis = connect();
      const outbox = new RedisMemoryOutbox(redis, keys, { quitOnShutdown: true });
      await outbox.append(event(1));
      await outbox.onApplicationShutdown();
      if (redis.status !== 'end') await new Promise((resolve) => redis.once('end', resolve));
      await expect(redis.ping()).rejects.toThrow(/closed/);
      await expect(outbox.onApplicationShutdown()).resolves.toBeUndefined();
    });
  });

  describe('claims', () => {
    it('claims nothing for a batch of size 0, and leaves every event to the next claim', async () => {
      const outbox = new RedisMemoryOutbox(connect(), keys);
      await outbox.append(event(1));
      await outbox.append(event(2));
      await expect(outbox.claimBatch(0)).resolves.toEqual([]);
      await expect(outbox.claimBatch(-3)).resolves.toEqual([]);
      expect((await outbox.claimBatch(10)).map((e) => e.eventId)).toEqual(['e001', 'e002']);
    });

    it('orders a batch by creation time, then id, whatever order the events were appended in', async () => {
      const outbox = new RedisMemoryOutbox(connect(), keys);
      const same = '2026-11-26T10:00:00.500Z';
      for (const e of [event(9), event(5, same), event(4, same), event(1), event(7)]) await outbox.append(e);
      expect((await outbox.claimBatch(10)).map((e) => e.eventId)).toEqual([
        'e001',
        'e007',
        'e009',
        'e004',
        'e005',
      ]);
    });

    it('makes the consumer group again when it was removed, and hands every pending event out again', async () => {
      const redis = connect();
      const outbox = new RedisMemoryOutbox(redis, keys);
      for (let i = 0; i < 3; i++) await outbox.append(event(i));
      await outbox.markDelivered(['e000'], 'now');
      await redis.xgroup('DESTROY', streamKey(), 'deliverers');
      expect((await outbox.claimBatch(10)).map((e) => e.eventId)).toEqual(['e001', 'e002']);
      await expect(outbox.markDelivered(['e001', 'e002'], 'now')).resolves.toBe(2);
      await expect(outbox.counts()).resolves.toEqual({ pending: 0, delivered: 3 });
    });

    it('two claims racing to make the missing group both succeed, and share out the events once', async () => {
      // one connection: both claims' first reads reach Redis before either makes the group, so the second's
      // XGROUP CREATE finds the group made (BUSYGROUP) and goes on
      const redis = connect();
      const [a, b] = [new RedisMemoryOutbox(redis, keys), new RedisMemoryOutbox(redis, keys)];
      for (let i = 0; i < 4; i++) await a.append(event(i));
      await redis.xgroup('DESTROY', streamKey(), 'deliverers');
      const [first, second] = await Promise.all([a.claimBatch(10), b.claimBatch(10)]);
      expect([...first, ...second].map((e) => e.eventId).sort()).toEqual(['e000', 'e001', 'e002', 'e003']);
      await expect(redis.xinfo('GROUPS', streamKey())).resolves.toHaveLength(1);
    });

    it('rejects with the Redis error when the stream key holds something else (it does not misread it)', async () => {
      const redis = connect();
      await redis.set(streamKey(), 'not a stream');
      await expect(new RedisMemoryOutbox(redis, keys).claimBatch(10)).rejects.toThrow(/WRONGTYPE/);
    });

    it('rejects when the group cannot be made (the stream key was taken meanwhile)', async () => {
      const redis = connect();
      const claim = new RedisMemoryOutbox(redis, keys).claimBatch(10);
      // queued behind the claim's first read (no stream: NOGROUP) and ahead of its XGROUP CREATE
      void redis.set(streamKey(), 'not a stream');
      await expect(claim).rejects.toThrow(/WRONGTYPE/);
    });

    it('acknowledges and deletes stream entries that carry no known event, and claims the rest', async () => {
      const redis = connect();
      const outbox = new RedisMemoryOutbox(redis, keys);
      await outbox.append(event(1));
      // an entry for an unknown event, one without an id field, one whose "id" is a value, not a field name
      await redis.xadd(streamKey(), '*', 'id', 'ghost');
      await redis.xadd(streamKey(), '*', 'other', 'x');
      await redis.xadd(streamKey(), '*', 'kind', 'id');
      expect((await outbox.claimBatch(10)).map((e) => e.eventId)).toEqual(['e001']);
      await expect(redis.xlen(streamKey())).resolves.toBe(1);
      expect((await redis.xpending(streamKey(), 'deliverers'))[0]).toBe(1);
    });

    it('lets go of a held entry whose data was deleted from the stream', async () => {
      const redis = connect();
      const outbox = new RedisMemoryOutbox(redis, keys);
      await outbox.append(event(1));
      await outbox.append(event(2));
      expect(await outbox.claimBatch(10)).toHaveLength(2);
      // trimmed away while held: the next claim drops it from the group's pending list (XAUTOCLAIM does, on Redis 7)
      const [[entryId]] = await redis.xrange(streamKey(), '-', '+', 'COUNT', 1);
      await redis.xdel(streamKey(), entryId);
      expect((await outbox.claimBatch(10)).map((e) => e.eventId)).toEqual(['e002']);
      expect((await redis.xpending(streamKey(), 'deliverers'))[0]).toBe(1);
      // the event itself stays pending (a read of the order, not of the stream)
      expect((await outbox.pendingBatch(10)).map((e) => e.eventId)).toEqual(['e001', 'e002']);
    });
  });

  describe('reads and writes', () => {
    it('records a failure of no events as a no-op', async () => {
      const outbox = new RedisMemoryOutbox(connect(), keys);
      await outbox.append(event(1));
      await outbox.recordFailure([], 'boom');
      await expect(outbox.forTask('t1')).resolves.toMatchObject([{ eventId: 'e001', attempts: 0 }]);
      await expect(outbox.lastError('e001')).resolves.toBeNull();
    });

    it('leaves out events whose record is gone', async () => {
      const redis = connect();
      const outbox = new RedisMemoryOutbox(redis, keys);
      await outbox.append(event(1));
      await outbox.append(event(2));
      await redis.hdel(keys.key('memory', 'event'), 'e001');
      expect((await outbox.forTask('t1')).map((e) => e.eventId)).toEqual(['e002']);
    });

    it('rejects with the failing command of a transaction (a key of the wrong type)', async () => {
      const redis = connect();
      await redis.set(keys.key('memory', 'pending'), 'not a sorted set');
      await expect(new RedisMemoryOutbox(redis, keys).counts()).rejects.toThrow(/WRONGTYPE/);
    });
  });
});
