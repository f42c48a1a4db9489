import fc from 'fast-check';
import type { SchedulingPolicy } from '../dispatch/dispatcher';
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

  /** Grants the held slot's successors one at a time; returns the order in which the waiters got their slots. */
  async function grantsInOrder(slots: GlobalSlots, first: Slot, batches: string[], expected: number[] = []) {
    const granted: string[] = [];
    const held: Slot[] = [];
    void batches.map((b, i) =>
      slots.acquire(b, expected[i] ?? 0).then((s) => {
        granted.push(`${b}${i}`);
        held.push(s);
      }),
    );
    await tick();
    first.release();
    for (let i = 0; i < batches.length; i++) {
      await tick();
      held[i]?.release();
    }
    await tick();
    return granted;
  }

  describe('least-work', () => {
    it('a freed slot goes to the waiting batch with the least declared work not started yet', async () => {
      const slots = new GlobalSlots(1, 'least-work');
      slots.setWork('big', [100, 100, 100, 100, 100]);
      slots.setWork('small', [100, 100]);
      const first = await slots.acquire('big', 100);
      expect(slots.workOf('big')).toEqual({ jobs: 4, ms: 400 });
      const order = ['big', 'big', 'small', 'big', 'small'];
      const granted = await grantsInOrder(slots, first, order, [100, 100, 100, 100, 100]);
      expect(granted).toEqual(['small2', 'small4', 'big0', 'big1', 'big3']);
      expect(slots.workOf('small')).toEqual({ jobs: 0, ms: 0 });
      expect(slots.workOf('big')).toEqual({ jobs: 1, ms: 100 });
    });

    it('compares expected ms, not job counts, when estimates are known', async () => {
      const slots = new GlobalSlots(1, 'least-work');
      slots.setWork('few-long', [1_000, 1_000]);
      slots.setWork('many-short', [10, 10, 10, 10]);
      const first = await slots.acquire('other');
      const granted = await grantsInOrder(
        slots,
        first,
        ['few-long', 'many-short', 'few-long', 'many-short'],
        [1_000, 10, 1_000, 10],
      );
      expect(granted).toEqual(['many-short1', 'many-short3', 'few-long0', 'few-long2']);
    });

    it('ties go to the batch declared first, and it keeps them: it finishes first', async () => {
      const slots = new GlobalSlots(1, 'least-work');
      slots.setWork('a', [5, 5]);
      slots.setWork('b', [5, 5]);
      const first = await slots.acquire('x');
      // b waits first, but a was declared first; once a job of a started, a has less left
      const granted = await grantsInOrder(slots, first, ['b', 'a', 'b', 'a'], [5, 5, 5, 5]);
      expect(granted).toEqual(['a1', 'a3', 'b0', 'b2']);
    });

    it('without estimates (0 ms) compares jobs left; an unestimated job weighs as the mean estimated one', async () => {
      const counts = new GlobalSlots(1, 'least-work');
      counts.setWork('three', [0, 0, 0]);
      counts.setWork('two', [0, 0]);
      const first = await counts.acquire('x');
      expect(await grantsInOrder(counts, first, ['three', 'two', 'three', 'two'])).toEqual([
        'two1',
        'two3',
        'three0',
        'three2',
      ]);

      // mean estimated job = (4 × 10 + 100) / 5 = 28 ms: 'unknown' (2 × 28 = 56) goes before 'known' (2 × 10 + 100)
      const mixed = new GlobalSlots(1, 'least-work');
      mixed.setWork('known', [10, 10, 100]);
      mixed.setWork('unknown', [0, 0]);
      mixed.setWork('elsewhere', [10, 10]);
      const held = await mixed.acquire('x');
      expect(
        await grantsInOrder(mixed, held, ['known', 'unknown', 'known', 'unknown'], [10, 0, 10, 0]),
      ).toEqual(['unknown1', 'unknown3', 'known0', 'known2']);
    });

    it('forgetWork drops a batch’s declaration: an undeclared batch comes after every declared one', async () => {
      const slots = new GlobalSlots(1, 'least-work');
      slots.setWork('gone', [1]);
      slots.setWork(
        'big',
        Array.from({ length: 1_000 }, () => 1_000),
      );
      slots.forgetWork('gone');
      expect(slots.workOf('gone')).toBeUndefined();
      const first = await slots.acquire('x');
      expect(await grantsInOrder(slots, first, ['gone', 'big', 'gone'], [1, 1_000, 1])).toEqual([
        'big1',
        'gone0',
        'gone2',
      ]);
    });

    it('a waiting batch is passed over at most 2 × capacity times in a row (no starvation)', async () => {
      const slots = new GlobalSlots(2, 'least-work');
      slots.setWork(
        'big',
        Array.from({ length: 100 }, () => 10),
      );
      const a = await slots.acquire('x');
      const b = await slots.acquire('x');
      const granted: string[] = [];
      const held: Slot[] = [a, b];
      const wait = (batch: string) =>
        void slots.acquire(batch, 10).then((s) => {
          granted.push(batch);
          held.push(s);
        });
      wait('big');
      // a stream of small batches, each with less work than 'big', each waiting before the next slot frees
      for (let i = 0; i < 6; i++) {
        slots.setWork(`small${i}`, [10]);
        wait(`small${i}`);
        held.shift()?.release();
        await tick();
      }
      expect(granted).toEqual(['small0', 'small1', 'small2', 'small3', 'big', 'small4']);
    });
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
    policy: SchedulingPolicy,
    limit: number,
    batches: { cap: number; holds: number[] }[],
  ) {
    const slots = new GlobalSlots(limit, policy);
    const grants: { batch: number }[] = [];
    // the scheduler's own choices, seen where it makes them: which batch it picked, and who else was waiting
    const picks: { batch: string; waiting: string[] }[] = [];
    // least-work: each waiting batch's work left and times passed over, and the batch picked
    const leastWorkPicks: { batch: string; waiting: { batch: string; ms: number; passedOver: number }[] }[] =
      [];
    const internals = slots as unknown as {
      next: () => { batchId: string };
      turns: Map<string, unknown[]>;
      passedOver: Map<string, number>;
    };
    const next = internals.next.bind(slots);
    internals.next = () => {
      const waiting = [...internals.turns.keys()];
      const before = waiting.map((batch) => ({
        batch,
        ms: slots.workOf(batch)?.ms ?? Infinity,
        passedOver: internals.passedOver.get(batch) ?? 0,
      }));
      const picked = next();
      if (policy === 'fair') picks.push({ batch: waiting[0], waiting: waiting.slice(1) });
      if (policy === 'least-work') leastWorkPicks.push({ batch: picked.batchId, waiting: before });
      return picked;
    };
    const running = batches.map(() => 0);
    let maxGlobal = 0;
    const maxPerBatch = batches.map(() => 0);
    const ids = batches.map((_, i) => `b${i}`);
    await Promise.all(
      batches.map(async (b, bi) => {
        // every job's estimate is its hold + 1 ticks (known, and not all equal)
        slots.setWork(
          ids[bi],
          b.holds.map((h) => h + 1),
        );
        const cap = new SlotLimiter(b.cap);
        const inflight: Promise<void>[] = [];
        for (const hold of b.holds) {
          const own = await cap.acquire();
          inflight.push(
            (async () => {
              const global = await slots.acquire(ids[bi], hold + 1);
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
        slots.forgetWork(ids[bi]);
      }),
    );
    return { grants, picks, leastWorkPicks, maxGlobal, maxPerBatch, slots };
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

  it.each(['fair', 'least-work', 'fifo'] as const)(
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

  it('least-work: the batch picked has the least work left of those waiting, unless another was passed over 2 × limit times', async () => {
    let contended = 0;
    await fc.assert(
      fc.asyncProperty(mix, async ({ limit, batches }) => {
        const { leastWorkPicks } = await simulate('least-work', limit, batches);
        for (const { batch, waiting } of leastWorkPicks) {
          const picked = waiting.find((w) => w.batch === batch);
          expect(picked).toBeDefined();
          const starving = waiting.filter((w) => w.passedOver >= 2 * limit);
          if (starving.length) {
            expect(picked?.passedOver).toBe(Math.max(...starving.map((w) => w.passedOver)));
          } else {
            for (const other of waiting) expect(picked?.ms).toBeLessThanOrEqual(other.ms);
          }
          if (waiting.length > 1) contended++;
        }
      }),
      { numRuns: 60 },
    );
    expect(contended).toBeGreaterThan(20);
  });
});
