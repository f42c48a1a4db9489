import { Sema } from 'async-sema';

/** A held slot. `release()` is idempotent: a second call does nothing (async-sema would raise its limit). */
export interface Slot {
  release(): void;
}

/**
 * Slot acquisition behind one small interface, so a smarter scheduler (round-robin between batches, longest
 * first) can replace FIFO without touching node execution. This one is `async-sema`'s FIFO semaphore.
 */
export class SlotLimiter {
  private readonly sema: Sema;
  private held = 0;

  constructor(readonly capacity: number) {
    this.sema = new Sema(capacity);
  }

  async acquire(): Promise<Slot> {
    await this.sema.acquire();
    this.held++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.held--;
        this.sema.release();
      },
    };
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

/** The process-wide limit (`GLOBAL_MAX_CONCURRENT`) on agents running at once, shared by every batch. */
export class GlobalSlots extends SlotLimiter {}
