import type { Redis } from 'ioredis';
import { AuthFailureLimiter } from '../common';
import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { RedisAuthFailureStore } from './redis-auth-failure-store';
import { connectRedis, RedisKeys } from './redis-connection';

async function until(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describeWithRedis('RedisAuthFailureStore', (url) => {
  let prefix: string;
  let connections: Redis[];

  const store = (): RedisAuthFailureStore => {
    const redis = connectRedis(url, `auth-failures-${connections.length}`);
    connections.push(redis);
    return new RedisAuthFailureStore(redis, new RedisKeys(prefix));
  };

  beforeEach(() => {
    prefix = uniquePrefix('auth');
    connections = [];
  });

  afterEach(async () => {
    await deletePrefix(url, prefix);
    await Promise.all(connections.map((c) => c.quit()));
  });

  it('counts the failures of every process in one window per client', async () => {
    const [a, b] = [store(), store()];
    await expect(a.add('10.0.0.1', 60_000)).resolves.toMatchObject({ failures: 1 });
    const second = await b.add('10.0.0.1', 60_000);
    expect(second.failures).toBe(2);
    expect(second.expiresInMs).toBeGreaterThan(0);
    expect(second.expiresInMs).toBeLessThanOrEqual(60_000);
    await expect(b.add('10.0.0.2', 60_000)).resolves.toMatchObject({ failures: 1 });
  });

  it("makes a process block a client on its first failure there once the others' failures reach the limit", async () => {
    const one = new AuthFailureLimiter({ limit: 3, store: store() });
    const two = new AuthFailureLimiter({ limit: 3, store: store() });
    for (let i = 0; i < 3; i++) one.fail('10.0.0.1');
    expect(one.retryAfterSeconds('10.0.0.1')).toBeGreaterThan(0);
    const shared = new RedisKeys(prefix).key('auth-failures', '10.0.0.1');
    await until('the failures reach Redis', async () => (await connections[0].get(shared)) === '3');
    // process two has seen nothing yet: it learns the shared count with the client's first failure there
    expect(two.retryAfterSeconds('10.0.0.1')).toBe(0);
    two.fail('10.0.0.1');
    await until('process two blocks', () => two.retryAfterSeconds('10.0.0.1') > 0);
    expect(two.retryAfterSeconds('10.0.0.1')).toBeLessThanOrEqual(60);
    expect(two.retryAfterSeconds('10.0.0.2')).toBe(0);
  });
});
