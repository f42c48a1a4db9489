import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { connectRedis, RedisKeys } from '../../redis';
import { describeWithRedis, uniquePrefix } from '../../../test/support/redis';
import { LocalOutputDeltas, type OutputDelta } from './output-deltas';
import { RedisOutputDeltas } from './redis-output-deltas';

const delta = (taskId: string, text = 'x'): OutputDelta => ({
  taskId,
  nodeId: 'n',
  groupId: 1,
  text,
  offset: 0,
});

describe('LocalOutputDeltas', () => {
  it('hands a task’s deltas to its listeners only, while they listen; wanted tells whether any does', () => {
    const bus = new LocalOutputDeltas();
    const a: OutputDelta[] = [];
    const b: OutputDelta[] = [];
    expect(bus.wanted('t1')).toBe(false);
    const stopA = bus.subscribe('t1', (d) => a.push(d));
    const stopB = bus.subscribe('t2', (d) => b.push(d));
    bus.subscribe('t1', () => {
      throw new Error('a listener that fails');
    });
    expect(bus.wanted('t1')).toBe(true);
    expect(bus.listeners('t1')).toBe(2);
    bus.publish(delta('t1'));
    bus.publish(delta('t3'));
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(0);
    stopA();
    stopA();
    stopB();
    expect(bus.listeners('t2')).toBe(0);
    bus.publish(delta('t1'));
    expect(a).toHaveLength(1);
  });
});

/** A publisher and a subscriber connection, connected by an in-memory "Redis". */
function fakeRedis(): { pub: Redis; sub: Redis; subscribed: Set<string>; failPublish: boolean } {
  const subscribed = new Set<string>();
  const sub = Object.assign(new EventEmitter(), {
    subscribe: jest.fn((channel: string) => {
      subscribed.add(channel);
      return Promise.resolve(1);
    }),
    unsubscribe: jest.fn((channel: string) => {
      subscribed.delete(channel);
      return Promise.resolve(0);
    }),
    quit: jest.fn(() => Promise.reject(new Error('closed already'))),
    disconnect: jest.fn(),
  });
  const state = { failPublish: false };
  const pub = {
    publish: jest.fn((channel: string, message: string) => {
      if (state.failPublish) return Promise.reject(new Error('connection lost'));
      if (subscribed.has(channel)) sub.emit('message', channel, message);
      return Promise.resolve(subscribed.has(channel) ? 1 : 0);
    }),
    quit: jest.fn(() => Promise.resolve('OK')),
    disconnect: jest.fn(),
  };
  return Object.assign(state, { pub: pub as unknown as Redis, sub: sub as unknown as Redis, subscribed });
}

describe('RedisOutputDeltas (connections replaced by an in-memory pub/sub)', () => {
  it('publishes every delta on the task’s channel and subscribes to it while a listener of the task exists', async () => {
    const redis = fakeRedis();
    const bus = new RedisOutputDeltas(redis.pub, redis.sub, new RedisKeys('pfx'));
    expect(bus.wanted()).toBe(true);
    bus.publish(delta('t1', 'nobody listens'));
    expect(redis.pub.publish).toHaveBeenCalledWith('pfx:deltas:t1', expect.any(String));
    const got: OutputDelta[] = [];
    const stop = bus.subscribe('t1', (d) => got.push(d));
    const stop2 = bus.subscribe('t1', () => undefined);
    expect([...redis.subscribed]).toEqual(['pfx:deltas:t1']);
    expect(bus.listeners('t1')).toBe(2);
    bus.publish(delta('t1', 'hello'));
    expect(got).toEqual([delta('t1', 'hello')]);
    // what is not a delta of the channel's task is ignored
    (redis.sub as unknown as EventEmitter).emit('message', 'pfx:deltas:t1', 'not json');
    (redis.sub as unknown as EventEmitter).emit('message', 'pfx:deltas:t1', 'null');
    (redis.sub as unknown as EventEmitter).emit('message', 'pfx:deltas:t1', JSON.stringify(delta('t2')));
    expect(got).toHaveLength(1);
    stop();
    expect(redis.subscribed.size).toBe(1);
    stop2();
    expect(redis.subscribed.size).toBe(0);
    // a failed publish is logged once, never thrown
    redis.failPublish = true;
    bus.publish(delta('t1'));
    bus.publish(delta('t1'));
    await new Promise((r) => setImmediate(r));
    await bus.onApplicationShutdown();
    expect(redis.sub.disconnect).toHaveBeenCalled();
    expect(redis.pub.quit).toHaveBeenCalled();
  });
});

describeWithRedis('RedisOutputDeltas on a real Redis: two processes', (url) => {
  it('a delta published by the process running the node reaches a subscriber of another process', async () => {
    const prefix = uniquePrefix('deltas');
    const keys = new RedisKeys(prefix);
    const worker = new RedisOutputDeltas(connectRedis(url, 'w:pub'), connectRedis(url, 'w:sub'), keys);
    const api = new RedisOutputDeltas(connectRedis(url, 'a:pub'), connectRedis(url, 'a:sub'), keys);
    try {
      const got: OutputDelta[] = [];
      const stop = api.subscribe('t1', (d) => got.push(d));
      // the SUBSCRIBE is on its way: publish until one arrives (bounded, not timed)
      for (let i = 0; got.length === 0 && i < 200; i++) {
        worker.publish(delta('t1', `chunk ${i}`));
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(got[0]).toMatchObject({ taskId: 't1', nodeId: 'n', groupId: 1 });
      stop();
      worker.publish(delta('t2'));
    } finally {
      await worker.close();
      await api.close();
    }
  });
});
