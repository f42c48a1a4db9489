import { Controller, type INestApplication, Module, Post } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { connectRedis, RedisKeys } from './redis-connection';
import { RedisThrottlerStorage } from './redis-throttler-storage';

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describeWithRedis('RedisThrottlerStorage', (url) => {
  let prefix: string;
  let connections: Redis[];

  /** One replica's storage: its own connection, the service's shared prefix. */
  const replica = (quitOnShutdown = false): RedisThrottlerStorage => {
    const redis = connectRedis(url, `throttler-${connections.length}`);
    connections.push(redis);
    return new RedisThrottlerStorage(redis, new RedisKeys(prefix), { quitOnShutdown });
  };

  beforeEach(() => {
    prefix = uniquePrefix('throttle');
    connections = [];
  });

  afterEach(async () => {
    await deletePrefix(url, prefix);
    for (const c of connections) if (c.status !== 'end') await c.quit();
  });

  it('counts hits of two replicas against one limit, then blocks the key on both', async () => {
    const [a, b] = [replica(), replica()];
    const hit = (s: RedisThrottlerStorage) => s.increment('client-1', 60_000, 3, 60_000, 'default');
    await expect(hit(a)).resolves.toMatchObject({ totalHits: 1, isBlocked: false, timeToBlockExpire: 0 });
    await expect(hit(b)).resolves.toMatchObject({ totalHits: 2, isBlocked: false });
    const third = await hit(a);
    expect(third).toMatchObject({ totalHits: 3, isBlocked: false });
    expect(third.timeToExpire).toBeGreaterThan(0);
    expect(third.timeToExpire).toBeLessThanOrEqual(60);
    const fourth = await hit(b);
    expect(fourth).toMatchObject({ totalHits: 4, isBlocked: true });
    expect(fourth.timeToBlockExpire).toBeGreaterThan(0);
    expect(fourth.timeToBlockExpire).toBeLessThanOrEqual(60);
    // blocked everywhere; refused hits are not counted
    await expect(hit(a)).resolves.toMatchObject({ totalHits: 4, isBlocked: true });
    // other clients and other throttlers are counted apart
    await expect(a.increment('client-2', 60_000, 3, 60_000, 'default')).resolves.toMatchObject({
      totalHits: 1,
      isBlocked: false,
    });
    await expect(b.increment('client-1', 60_000, 3, 60_000, 'other')).resolves.toMatchObject({
      totalHits: 1,
      isBlocked: false,
    });
  });

  it('starts a new window once the old one ends', async () => {
    const [a, b] = [replica(), replica()];
    await a.increment('k', 300, 1000, 300, 'default');
    await b.increment('k', 300, 1000, 300, 'default');
    await until(
      'a new window',
      async () => (await a.increment('k', 300, 1000, 300, 'default')).totalHits === 1,
    );
    await expect(b.increment('k', 300, 1000, 300, 'default')).resolves.toMatchObject({ totalHits: 2 });
  });

  it('lets the key through again once the block ends, counting from one', async () => {
    const [a, b] = [replica(), replica()];
    await a.increment('k', 60_000, 1, 300, 'default');
    await expect(b.increment('k', 60_000, 1, 300, 'default')).resolves.toMatchObject({ isBlocked: true });
    await until('the block ends', async () => !(await a.increment('k', 60_000, 1, 300, 'default')).isBlocked);
    // the hit that got through started the count again
    await expect(b.increment('k', 60_000, 1, 300, 'default')).resolves.toMatchObject({
      totalHits: 2,
      isBlocked: true,
    });
  });

  it('without a block duration, refuses hits past the limit until the window ends', async () => {
    const s = replica();
    await s.increment('k', 60_000, 2, 0, 'default');
    await s.increment('k', 60_000, 2, 0, 'default');
    const refused = await s.increment('k', 60_000, 2, 0, 'default');
    expect(refused).toMatchObject({ totalHits: 3, isBlocked: true });
    expect(refused.timeToBlockExpire).toBeGreaterThan(0);
    await expect(s.increment('k', 60_000, 2, 0, 'default')).resolves.toMatchObject({ totalHits: 3 });
  });

  it('on shutdown leaves a shared connection open; one of its own is closed once, even if closed already', async () => {
    const shared = connectRedis(url, 'throttler-shared');
    connections.push(shared);
    await new RedisThrottlerStorage(shared, new RedisKeys(prefix)).onApplicationShutdown();
    await expect(shared.ping()).resolves.toBe('PONG');

    const own = replica(true);
    await own.increment('k', 60_000, 5, 0, 'default');
    await own.onApplicationShutdown();
    const redis = connections[connections.length - 1];
    await until('the connection closed', () => Promise.resolve(redis.status === 'end'));
    // a second shutdown hook (or one after the creator closed it) does not fail on the closed connection
    await expect(own.onApplicationShutdown()).resolves.toBeUndefined();
  });

  it("is the storage of two apps' ThrottlerGuard: the limit holds across both", async () => {
    @Controller()
    class PingController {
      @Post('ping')
      ping(): string {
        return 'pong';
      }
    }
    const app = async (): Promise<INestApplication> => {
      const storage = replica(true);
      @Module({
        imports: [ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: 2 }], storage })],
        controllers: [PingController],
        providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
      })
      class ReplicaModule {}
      const moduleRef = await Test.createTestingModule({ imports: [ReplicaModule] }).compile();
      const nest = moduleRef.createNestApplication({ logger: false });
      await nest.init();
      return nest;
    };
    const [one, two] = [await app(), await app()];
    try {
      await request(one.getHttpServer()).post('/ping').expect(201);
      await request(two.getHttpServer()).post('/ping').expect(201);
      const refused = await request(one.getHttpServer()).post('/ping').expect(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      await request(two.getHttpServer()).post('/ping').expect(429);
    } finally {
      await one.close();
      await two.close();
    }
    // the storage given to ThrottlerModule gets the application's shutdown hook: its connection is closed
    await until('both connections closed', () =>
      Promise.resolve(connections.every((c) => c.status === 'end')),
    );
  });
});
