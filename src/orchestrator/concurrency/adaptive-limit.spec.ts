import { AdaptiveLimit } from './adaptive-limit';
import { SlotLimiter } from './slot-limiter';

describe('AdaptiveLimit (AIMD)', () => {
  const make = (max = 12, enabled = true) => {
    let t = 1000;
    const changes: number[] = [];
    const limit = new AdaptiveLimit(
      max,
      (n) => changes.push(n),
      enabled,
      () => t,
    );
    return { limit, changes, tick: (ms = 1) => (t += ms), now: () => t };
  };

  it('halves on a 429 (never below 1) and ignores 429s of requests started before the last decrease', () => {
    const { limit, changes, tick, now } = make(12);
    const startedEarly = now();
    tick();
    limit.rateLimited(now());
    expect(limit.limit).toBe(6);
    limit.rateLimited(startedEarly); // same overload, seen by a request already in flight
    expect(limit.limit).toBe(6);
    tick();
    limit.rateLimited(now());
    tick();
    limit.rateLimited(now());
    tick();
    limit.rateLimited(now());
    tick();
    limit.rateLimited(now());
    expect(changes).toEqual([6, 3, 1]);
    expect(limit.limit).toBe(1);
    expect(limit.rateLimitedCount).toBe(6);
  });

  it('adds one after a run of successes as long as the limit, up to the maximum', () => {
    const { limit, tick, now } = make(4);
    tick();
    limit.rateLimited(now());
    expect(limit.limit).toBe(2);
    limit.succeeded();
    expect(limit.limit).toBe(2);
    limit.succeeded();
    expect(limit.limit).toBe(3);
    for (let i = 0; i < 3; i++) limit.succeeded();
    expect(limit.limit).toBe(4);
    for (let i = 0; i < 10; i++) limit.succeeded();
    expect(limit.limit).toBe(4);
  });

  it('a 429 resets the run of successes', () => {
    const { limit, tick, now } = make(8);
    tick();
    limit.rateLimited(now()); // 4
    limit.succeeded();
    limit.succeeded();
    limit.succeeded();
    tick();
    limit.rateLimited(now()); // 2
    limit.succeeded();
    expect(limit.limit).toBe(2);
  });

  it('disabled, it only counts', () => {
    const { limit, changes, now } = make(8, false);
    limit.rateLimited(now());
    limit.succeeded();
    expect(limit.limit).toBe(8);
    expect(changes).toEqual([]);
    expect(limit.rateLimitedCount).toBe(1);
  });
});

describe('SlotLimiter.setLimit', () => {
  it('holds callers past a lowered limit in order and lets them in as slots free up or the limit rises', async () => {
    const slots = new SlotLimiter(4);
    const held = await Promise.all([slots.acquire(), slots.acquire(), slots.acquire()]);
    slots.setLimit(2);
    expect(slots.currentLimit).toBe(2);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((i) => slots.acquire().then((s) => (order.push(i), s)));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    expect(slots.waiting).toBe(3);
    held[0].release();
    held[0].release(); // idempotent
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]); // 2 still held = the limit
    held[1].release();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([1]);
    expect(slots.inUse).toBe(2);
    slots.setLimit(10); // clamped to the capacity
    expect(slots.currentLimit).toBe(4);
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([1, 2, 3]);
    expect(slots.inUse).toBe(4);
    slots.setLimit(0);
    expect(slots.currentLimit).toBe(1);
    for (const s of [held[2], ...(await Promise.all(waiting))]) s.release();
    expect(slots.inUse).toBe(0);
  });
});
