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
