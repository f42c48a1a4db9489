import { Sema } from 'async-sema';

/** A held slot. `release()` is idempotent: a second call does nothing (async-sema would raise its limit). */
export interface Slot {
  release(): void;
}

/**
 * Slot acquisition behind one small interface, so a smarter scheduler (round-robin between batches, longest
 * first) can replace FIFO without touching node execution. This one is `async-sema`'s FIFO semaphore of
 * `capacity` slots, gated by an effective limit that `setLimit` may lower (and raise back up to `capacity`):
 * callers past the limit wait, in order, until a holder releases or the limit rises.
 */
export class SlotLimiter {
  private readonly sema: Sema;
  private held = 0;
  private limit: number;
  private readonly gated: Array<() => void> = [];

  constructor(readonly capacity: number) {
    this.sema = new Sema(capacity);
    this.limit = capacity;
  }

  async acquire(): Promise<Slot> {
    await this.sema.acquire();
    // Past the limit, wait in line: `admit` counts the slot as held when it wakes us.
    if (this.held >= this.limit || this.gated.length) await new Promise<void>((r) => this.gated.push(r));
    else this.held++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.held--;
        this.sema.release();
        this.admit();
      },
    };
  }

  /** Sets the effective limit (clamped to 1..capacity). Lowering it never interrupts a held slot. */
  setLimit(limit: number): void {
    this.limit = Math.max(1, Math.min(this.capacity, Math.floor(limit)));
    this.admit();
  }

  /** The effective limit. */
  get currentLimit(): number {
    return this.limit;
  }

  /** Slots held right now. */
  get inUse(): number {
    return this.held;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.sema.nrWaiting() + this.gated.length;
  }

  private admit(): void {
    while (this.held < this.limit) {
      const next = this.gated.shift();
      if (!next) return;
      this.held++;
      next();
    }
  }
}

/** The process-wide limit (`GLOBAL_MAX_CONCURRENT`) on agents running at once, shared by every batch. */
export class GlobalSlots extends SlotLimiter {}
