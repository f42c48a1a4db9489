import { Redis } from 'ioredis';
import { deletePrefix, describeWithRedis, uniquePrefix } from '../../../test/support/redis';
import { RedisKeys } from '../../redis';
import { RedisTaskLeases } from './redis-task-leases';
import { LocalTaskLeases } from './task-leases';

describe('LocalTaskLeases (one process: every batch its own)', () => {
  it('always grants, never loses', async () => {
    const leases = new LocalTaskLeases();
    expect(leases.shared).toBe(false);
    await expect(leases.acquire()).resolves.toBe(true);
    leases.onLost();
    await expect(leases.release()).resolves.toBeUndefined();
    await expect(leases.close()).resolves.toBeUndefined();
  });
});

describeWithRedis('RedisTaskLeases (two processes on one Redis)', (url) => {
  const prefix = uniquePrefix('leases');
  const keys = new RedisKeys(prefix);
  const open: RedisTaskLeases[] = [];
  const make = (owner: string, ttlMs = 60_000): RedisTaskLeases => {
    const leases = new RedisTaskLeases(new Redis(url), keys, { owner, ttlMs });
    open.push(leases);
    return leases;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
  });
  afterAll(() => deletePrefix(url, prefix));

  it('one owner at a time: the holder keeps (and renews) it, another is refused until it is released', async () => {
    const a = make('A');
    const b = make('B');
    expect(a.shared).toBe(true);
    await expect(a.acquire('t1')).resolves.toBe(true);
    await expect(a.acquire('t1')).resolves.toBe(true); // re-entrant for its holder
    await expect(b.acquire('t1')).resolves.toBe(false);
    await expect(a.owner('t1')).resolves.toBe('A');
    await b.release('t1'); // not B's: nothing happens
    await expect(a.owner('t1')).resolves.toBe('A');
    await a.release('t1');
    await expect(b.acquire('t1')).resolves.toBe(true);
    await expect(b.owner('t1')).resolves.toBe('B');
  });

  it('a lease not renewed expires (its owner died): another process gets it', async () => {
    const a = make('A', 300);
    await a.acquire('t2');
    await a.close(); // stops renewing, as a killed process would
    const b = make('B');
    let got = false;
    for (let i = 0; i < 200 && !got; i++) {
      got = await b.acquire('t2');
      if (!got) await new Promise((r) => setTimeout(r, 20));
    }
    expect(got).toBe(true);
  });

  it('renews while held, and reports a lease taken by another process as lost', async () => {
    const a = make('A', 300);
    const lost: string[] = [];
    a.onLost((taskId) => lost.push(taskId));
    await a.acquire('t3');
    // several renewal rounds pass: still A's
    await new Promise((r) => setTimeout(r, 700));
    await expect(a.owner('t3')).resolves.toBe('A');
    const other = new Redis(url);
    await other.set(keys.key('lease', 't3'), 'Z', 'PX', 60_000);
    await other.quit();
    for (let i = 0; i < 200 && !lost.length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(lost).toEqual(['t3']);
    await expect(a.acquire('t3')).resolves.toBe(false);
  });

  it('a renewal that cannot reach Redis is tried again, not reported lost', async () => {
    const redis = new Redis(url);
    const a = new RedisTaskLeases(redis, keys, { owner: 'A', ttlMs: 150 });
    const lost: string[] = [];
    a.onLost((taskId) => lost.push(taskId));
    await a.acquire('t4');
    const evalSpy = jest.spyOn(redis, 'eval').mockRejectedValue(new Error('connection lost'));
    await new Promise((r) => setTimeout(r, 200));
    expect(evalSpy).toHaveBeenCalled();
    expect(lost).toEqual([]);
    evalSpy.mockRestore();
    await a.close();
  });
});
