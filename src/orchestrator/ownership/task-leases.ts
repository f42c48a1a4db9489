/**
 * Port: which process runs a batch (its owner: it feeds the batch's jobs to the dispatcher, places results on the
 * canvas, records outcomes and finalises). In one process every batch is its own (`LocalTaskLeases`); over Redis an
 * owner holds a lease that it renews while it runs the batch, and a batch whose owner died (its lease expired) is
 * taken over by another process (`RedisTaskLeases`).
 */
export abstract class TaskLeases {
  /** Other processes may own batches: a batch not running here may be running elsewhere. */
  abstract readonly shared: boolean;
  /** How long a lease lives without renewal (a dead owner's batch waits at most this long for a new owner). */
  abstract readonly ttlMs: number;
  /**
   * Takes the task's lease for this process (true), or keeps it when this process holds it already; false when
   * another process holds it. A held lease is renewed in the background until `release`.
   */
  abstract acquire(taskId: string): Promise<boolean>;
  /** Gives the lease up (the batch ended here, or this process shuts down and hands it over). */
  abstract release(taskId: string): Promise<void>;
  /** Registers who hears that a lease was lost (another process took the batch over: this one must let go). */
  abstract onLost(listener: (taskId: string) => void): void;
  /** Stops renewing; leases still held expire on their own. */
  abstract close(): Promise<void>;
}

/** The embedded engine: one process, every batch its own. */
export class LocalTaskLeases extends TaskLeases {
  readonly shared = false;
  readonly ttlMs = 0;

  acquire(): Promise<boolean> {
    return Promise.resolve(true);
  }

  release(): Promise<void> {
    return Promise.resolve();
  }

  onLost(): void {
    /* never lost */
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
