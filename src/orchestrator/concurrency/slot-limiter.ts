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
  batchId: string;
  expectedMs: number;
}

/** What a batch has not started yet, as its dispatcher declared it (`setWork`); debited as its jobs get slots. */
interface Work {
  /** Jobs not granted a slot yet. */
  jobs: number;
  /** Those of them with an estimate (expected ms > 0), and the sum of their estimates. */
  estimated: number;
  ms: number;
  /** Declaration order: among equal work, the batch declared first goes first. */
  readonly seq: number;
}

/**
 * The process-wide limit (`GLOBAL_MAX_CONCURRENT`) on agents running at once, shared by every batch. Who gets a
 * freed slot depends on the policy:
 * - `fair`: the next batch in round-robin order among those waiting (a 10-node batch submitted beside a 5,000-node
 *   one starts at once instead of queueing behind it, but shares the freed slots half and half with it);
 * - `least-work`: the waiting batch with the least work not started yet (`setWork`; shortest-remaining-work-first,
 *   so a small batch gets every freed slot until it has started, and among equals the batch declared first
 *   finishes first). A job without an estimate (0 ms: an agent type never seen) counts as the mean estimated job of
 *   the declared batches, so with no estimates at all the batches are compared by their jobs left. A batch with no
 *   declared work comes last. Starvation guard: a waiting batch is passed over at most 2 × `capacity` times in a
 *   row (about two turnovers of every slot), so a big batch still gets one slot in 2 × `capacity` + 1 while smaller
 *   batches keep arriving, and a batch with less work is slowed by it by 1 / (2 × `capacity`) at most;
 * - `fifo`: the longest waiter.
 * The effective limit can be lowered below `capacity` at run time (e.g. when a provider answers 429).
 */
export class GlobalSlots {
  private held = 0;
  private effective: number;
  /** Batches with waiters, in turn order (`fair`: the first gets the next slot, then moves to the back). */
  private readonly turns = new Map<string, Waiter[]>();
  private readonly fifo: Waiter[] = [];
  private waiters = 0;
  private readonly work = new Map<string, Work>();
  private declared = 0;
  /** `least-work`: grants to other batches since each waiting batch was last served. */
  private readonly passedOver = new Map<string, number>();

  constructor(
    readonly capacity: number,
    readonly policy: SchedulingPolicy = 'least-work',
  ) {
    this.effective = capacity;
  }

  /**
   * A slot for one agent of batch `batchId`; resolves when it is that batch's turn and a slot is free. `expectedMs`:
   * the job's estimate, taken off the batch's declared work when the slot is granted.
   */
  acquire(batchId: string, expectedMs = 0): Promise<Slot> {
    if (this.held < this.effective && this.waiters === 0) {
      this.held++;
      this.debit(batchId, expectedMs);
      return Promise.resolve(this.slot());
    }
    return new Promise<Slot>((resolve) => {
      const waiter = { resolve, batchId, expectedMs };
      this.waiters++;
      if (this.policy === 'fifo') {
        this.fifo.push(waiter);
        return;
      }
      const queue = this.turns.get(batchId);
      if (queue) queue.push(waiter);
      else this.turns.set(batchId, [waiter]);
    });
  }

  /**
   * Declares the work batch `batchId` has not started yet: the expected ms of each of its jobs (replaces an earlier
   * declaration). Used by `least-work`; each granted slot takes one job off it.
   */
  setWork(batchId: string, expectedMs: readonly number[]): void {
    const estimates = expectedMs.filter((ms) => ms > 0);
    this.work.set(batchId, {
      jobs: expectedMs.length,
      estimated: estimates.length,
      ms: estimates.reduce((sum, ms) => sum + ms, 0),
      seq: this.work.get(batchId)?.seq ?? this.declared++,
    });
  }

  /** Forgets a batch's declared work (its run has ended). */
  forgetWork(batchId: string): void {
    this.work.delete(batchId);
  }

  /** The batch's declared work not started yet (jobs, and the ms of those with an estimate), if declared. */
  workOf(batchId: string): { jobs: number; ms: number } | undefined {
    const w = this.work.get(batchId);
    return w && { jobs: w.jobs, ms: w.ms };
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
      this.debit(next.batchId, next.expectedMs);
      next.resolve(this.slot());
    }
  }

  private next(): Waiter {
    if (this.policy === 'fifo') return this.fifo.shift() as Waiter;
    const batchId =
      this.policy === 'least-work' ? this.leastWork() : (this.turns.keys().next().value as string);
    const queue = this.turns.get(batchId) as Waiter[];
    const waiter = queue.shift() as Waiter;
    this.turns.delete(batchId);
    if (queue.length) this.turns.set(batchId, queue); // back of the line (`fair` takes turns in this order)
    if (this.policy === 'least-work') this.passOver(batchId);
    return waiter;
  }

  /** The waiting batch with the least work left (ties: declared first, then waiting longest), unless one starves. */
  private leastWork(): string {
    let starving: string | undefined;
    for (const [batchId, n] of this.passedOver) {
      if (n >= 2 * this.capacity && (starving === undefined || n > (this.passedOver.get(starving) ?? 0)))
        starving = batchId;
    }
    if (starving !== undefined) return starving;
    // a job without an estimate weighs as the mean estimated job (1 when nothing is estimated: counts decide)
    let ms = 0;
    let estimated = 0;
    for (const w of this.work.values()) {
      ms += w.ms;
      estimated += w.estimated;
    }
    const unknownMs = estimated ? ms / estimated : 1;
    let best: string | undefined;
    let bestKey = [Infinity, Infinity];
    for (const batchId of this.turns.keys()) {
      const w = this.work.get(batchId);
      const key = w ? [w.ms + (w.jobs - w.estimated) * unknownMs, w.seq] : [Infinity, Infinity];
      if (best === undefined || key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) {
        best = batchId;
        bestKey = key;
      }
    }
    return best as string;
  }

  /** Counts a grant to `served` against every other waiting batch; a batch no longer waiting is not passed over. */
  private passOver(served: string): void {
    this.passedOver.delete(served);
    for (const batchId of this.passedOver.keys())
      if (!this.turns.has(batchId)) this.passedOver.delete(batchId);
    for (const batchId of this.turns.keys()) {
      if (batchId !== served) this.passedOver.set(batchId, (this.passedOver.get(batchId) ?? 0) + 1);
    }
  }

  private debit(batchId: string, expectedMs: number): void {
    const w = this.work.get(batchId);
    if (!w || w.jobs === 0) return;
    w.jobs--;
    if (expectedMs > 0 && w.estimated > 0) {
      w.estimated--;
      w.ms = w.estimated ? Math.max(0, w.ms - expectedMs) : 0;
    }
  }
}
