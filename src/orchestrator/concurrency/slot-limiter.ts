import { Sema } from 'async-sema';
import type { SchedulingPolicy } from '../dispatch/dispatcher';

/** A held slot. `release()` is idempotent: a second call does nothing (async-sema would raise its limit). */
export interface Slot {
  release(): void;
}

/** A slot whose `release` runs `free` the first time only. */
function releaseOnce(free: () => void): Slot {
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      free();
    },
  };
}

/** A batch's own cap (`max_concurrent`): `async-sema`'s FIFO semaphore, with slots that release once. */
export class SlotLimiter {
  private readonly sema: Sema;
  private held = 0;

  constructor(readonly capacity: number) {
    this.sema = new Sema(capacity);
  }

  async acquire(): Promise<Slot> {
    await this.sema.acquire();
    this.held++;
    return releaseOnce(() => {
      this.held--;
      this.sema.release();
    });
  }

  /** Slots held right now. */
  get inUse(): number {
    return this.held;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.sema.nrWaiting();
  }
}

interface Waiter {
  resolve: (slot: Slot) => void;
}

/**
 * The process-wide limit (`GLOBAL_MAX_CONCURRENT`) on agents running at once, shared by every batch. With the
 * `fair` policy a freed slot goes to the next batch in round-robin order among those waiting (a 10-node batch
 * submitted beside a 5,000-node one starts at once instead of queueing behind it); with `fifo`, to the longest
 * waiter. The effective limit can be lowered below `capacity` at run time (e.g. when a provider answers 429).
 */
export class GlobalSlots {
  private held = 0;
  private effective: number;
  /** Batches with waiters, in turn order: the first gets the next slot, then moves to the back. */
  private readonly turns = new Map<string, Waiter[]>();
  private readonly fifo: Waiter[] = [];
  private waiters = 0;

  constructor(
    readonly capacity: number,
    readonly policy: SchedulingPolicy = 'fair',
  ) {
    this.effective = capacity;
  }

  /** A slot for one agent of batch `batchId`; resolves when it is that batch's turn and a slot is free. */
  acquire(batchId: string): Promise<Slot> {
    if (this.held < this.effective && this.waiters === 0) {
      this.held++;
      return Promise.resolve(this.slot());
    }
    return new Promise<Slot>((resolve) => {
      this.waiters++;
      if (this.policy === 'fifo') {
        this.fifo.push({ resolve });
        return;
      }
      const queue = this.turns.get(batchId);
      if (queue) queue.push({ resolve });
      else this.turns.set(batchId, [{ resolve }]);
    });
  }

  /** The limit in force now (≤ `capacity`). */
  get limit(): number {
    return this.effective;
  }

  /** Changes the limit in force, within 1..`capacity`. Lowering it takes effect as running agents finish. */
  setLimit(limit: number): void {
    this.effective = Math.max(1, Math.min(this.capacity, Math.floor(limit)));
    this.pump();
  }

  /** Slots held right now. */
  get inUse(): number {
    return this.held;
  }

  /** Agents waiting for a slot, over all batches. */
  get waiting(): number {
    return this.waiters;
  }

  /** Agents of one batch waiting for a slot (0 under the `fifo` policy, which does not track batches). */
  waitingFor(batchId: string): number {
    return this.turns.get(batchId)?.length ?? 0;
  }

  private slot(): Slot {
    return releaseOnce(() => {
      this.held--;
      this.pump();
    });
  }

  private pump(): void {
    while (this.held < this.effective && this.waiters > 0) {
      const next = this.next();
      this.waiters--;
      this.held++;
      next.resolve(this.slot());
    }
  }

  private next(): Waiter {
    if (this.policy === 'fifo') return this.fifo.shift() as Waiter;
    const [batchId, queue] = this.turns.entries().next().value as [string, Waiter[]];
    const waiter = queue.shift() as Waiter;
    this.turns.delete(batchId);
    if (queue.length) this.turns.set(batchId, queue); // back of the line
    return waiter;
  }
}
