import fc from 'fast-check';
import { GlobalSlots, type Slot, SlotLimiter } from './slot-limiter';

/** Starts `acquire` calls in the given order and records the order in which they get their slot. */
function contenders(slots: GlobalSlots, batches: string[]) {
  const granted: string[] = [];
  const held: Slot[] = [];
  const all = batches.map((b, i) =>
    slots.acquire(b).then((s) => {
      granted.push(`${b}${i}`);
      held.push(s);
    }),
  );
  return { granted, held, all };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('GlobalSlots', () => {
  it('grants at once while under the limit, and never more than the limit', async () => {
    const slots = new GlobalSlots(2);
    const { granted, held } = contenders(slots, ['a', 'a', 'a']);
    await tick();
    expect(granted).toEqual(['a0', 'a1']);
    expect([slots.inUse, slots.waiting, slots.waitingFor('a')]).toEqual([2, 1, 1]);
    held[0].release();
    held[0].release(); // a second release does nothing
    await tick();
    expect(granted).toEqual(['a0', 'a1', 'a2']);
    expect([slots.inUse, slots.waiting]).toEqual([2, 0]);
  });

  it('fair: a freed slot goes round-robin between waiting batches, a newcomer does not queue behind a big batch', async () => {
    const slots = new GlobalSlots(1, 'fair');
    const first = await slots.acquire('big');
    const { granted, held } = contenders(slots, ['big', 'big', 'big', 'small', 'big', 'small', 'other']);
    await tick();
    for (let i = 0; i < 7; i++) {
      (i === 0 ? first : held[i - 1]).release();
      await tick();
    }
    expect(granted).toEqual(['big0', 'small3', 'other6', 'big1', 'small5', 'big2', 'big4']);
  });

  it('fifo: slots go in arrival order whatever the batch', async () => {
    const slots = new GlobalSlots(1, 'fifo');
    const first = await slots.acquire('big');
    const { granted, held } = contenders(slots, ['big', 'big', 'small', 'big']);
    await tick();
    first.release();
    for (let i = 0; i < 3; i++) {
      await tick();
      held[i].release();
    }
    await tick();
    expect(granted).toEqual(['big0', 'big1', 'small2', 'big3']);
    expect(slots.waitingFor('big')).toBe(0);
  });

  it('setLimit lowers the limit as slots free up and raises it at once, within 1..capacity', async () => {
    const slots = new GlobalSlots(4);
    const { granted, held } = contenders(slots, ['a', 'a', 'a', 'a', 'a', 'a']);
    await tick();
    expect(granted).toHaveLength(4);
    slots.setLimit(2);
    expect(slots.limit).toBe(2);
    held[0].release();
    held[1].release();
    await tick();
    expect([slots.inUse, granted.length]).toEqual([2, 4]); // nothing new until below the new limit
    held[2].release();
    await tick();
    expect([slots.inUse, granted.length]).toEqual([2, 5]);
    slots.setLimit(99);
    await tick();
    expect([slots.limit, slots.inUse, granted.length]).toEqual([4, 3, 6]);
    slots.setLimit(0);
    expect(slots.limit).toBe(1);
  });
});

describe('SlotLimiter', () => {
  it('caps at its capacity and releases a slot once', async () => {
    const limiter = new SlotLimiter(1);
    const a = await limiter.acquire();
    const b = limiter.acquire();
    await tick();
    expect([limiter.inUse, limiter.waiting]).toEqual([1, 1]);
    a.release();
    a.release();
    await b;
    expect([limiter.inUse, limiter.waiting]).toEqual([1, 0]);
  });
});

describe('GlobalSlots + batch caps under random batch mixes (property)', () => {
  /** One simulated run: every node takes its batch's slot, then a global one, holds it some ticks, releases both. */
  async function simulate(
    policy: 'fair' | 'fifo',
    limit: number,
    batches: { cap: number; holds: number[] }[],
  ) {
    const slots = new GlobalSlots(limit, policy);
    const grants: { batch: number }[] = [];
    // the scheduler's own choices, seen where it makes them: which batch it picked, and who else was waiting
    const picks: { batch: string; waiting: string[] }[] = [];
    const internals = slots as unknown as { next: () => unknown; turns: Map<string, unknown[]> };
    const next = internals.next.bind(slots);
    internals.next = () => {
      const waiting = [...internals.turns.keys()];
      const picked = next();
      if (policy === 'fair') picks.push({ batch: waiting[0], waiting: waiting.slice(1) });
      return picked;
    };
    const running = batches.map(() => 0);
    let maxGlobal = 0;
    const maxPerBatch = batches.map(() => 0);
    const ids = batches.map((_, i) => `b${i}`);
    await Promise.all(
      batches.map(async (b, bi) => {
        const cap = new SlotLimiter(b.cap);
        const inflight: Promise<void>[] = [];
        for (const hold of b.holds) {
          const own = await cap.acquire();
          inflight.push(
            (async () => {
              const global = await slots.acquire(ids[bi]);
              grants.push({ batch: bi });
              running[bi]++;
              maxGlobal = Math.max(maxGlobal, slots.inUse);
              maxPerBatch[bi] = Math.max(maxPerBatch[bi], running[bi]);
              for (let t = 0; t < hold; t++) await tick();
              running[bi]--;
              global.release();
              own.release();
            })(),
          );
        }
        await Promise.all(inflight);
      }),
    );
    return { grants, picks, maxGlobal, maxPerBatch, slots };
  }

  const mix = fc.record({
    limit: fc.integer({ min: 1, max: 6 }),
    batches: fc.array(
      fc.record({
        cap: fc.integer({ min: 1, max: 8 }),
        holds: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 25 }),
      }),
      { minLength: 1, maxLength: 5 },
    ),
  });

  it.each(['fair', 'fifo'] as const)(
    '%s: every node runs, never above the global limit or its batch cap, and nothing is left held',
    async (policy) => {
      await fc.assert(
        fc.asyncProperty(mix, async ({ limit, batches }) => {
          const { grants, maxGlobal, maxPerBatch, slots } = await simulate(policy, limit, batches);
          expect(grants).toHaveLength(batches.reduce((n, b) => n + b.holds.length, 0));
          expect(maxGlobal).toBeLessThanOrEqual(limit);
          maxPerBatch.forEach((m, i) => expect(m).toBeLessThanOrEqual(batches[i].cap));
          expect([slots.inUse, slots.waiting]).toEqual([0, 0]);
        }),
        { numRuns: 60 },
      );
    },
  );

  it('fair: a batch that is waiting is served before any other batch is served twice (round-robin)', async () => {
    let contended = 0;
    await fc.assert(
      fc.asyncProperty(mix, async ({ limit, batches }) => {
        const { picks } = await simulate('fair', limit, batches);
        picks.forEach((p, i) => {
          const again = picks.findIndex((q, j) => j > i && q.batch === p.batch);
          if (again < 0) return;
          for (const other of p.waiting) {
            const served = picks.findIndex((q, j) => j > i && q.batch === other);
            expect(served).toBeGreaterThan(i);
            expect(served).toBeLessThan(again);
          }
        });
        contended += picks.filter((p) => p.waiting.length > 0).length;
      }),
      { numRuns: 60 },
    );
    expect(contended).toBeGreaterThan(20); // the property was put to work, not vacuously true
  });
});
