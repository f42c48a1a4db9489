import { createHash } from 'node:crypto';
import type { MemoryEventType } from '../agent';

/** A learning-memory event waiting in (or delivered from) the durable outbox. */
export interface MemoryEvent {
  eventId: string;
  taskId: string;
  canvasPath: string;
  nodeId: string | null;
  agentType: string;
  memoryType: MemoryEventType;
  concept: string;
  createdAt: string;
  payload: Record<string, unknown>;
  deliveredAt: string | null;
  attempts: number;
}

export interface MemoryOutboxStats {
  pending: number;
  delivered: number;
}

/** What a memory store receives: an outbox event without its delivery bookkeeping. */
export type MemoryEventDraft = Omit<MemoryEvent, 'deliveredAt' | 'attempts'>;

/**
 * The durable outbox of learning-memory events (also the DI token): the listeners append, the drain loop
 * (`MemoryDeliveryService`) claims pending batches and marks them delivered. Adapters: `SqliteMemoryOutbox` (the
 * service's database), `RedisMemoryOutbox` (shared by several processes) and `InMemoryMemoryOutbox` (unit tests);
 * `describeMemoryOutboxContract` is what each must pass.
 *
 * Contract: every method is asynchronous (an adapter may live across the network) and reports a failure as a
 * rejection, never a synchronous throw. Events are plain values: what an adapter returns is a copy, so changing it
 * changes nothing stored. `append` is idempotent by `eventId` (the first version stays). Delivery order is creation
 * time, then event id. Only pending events change: marking or failing a delivered event does nothing.
 */
export abstract class MemoryOutbox {
  /** Stores the event unless one with the same id is there already; resolves with whether it was new. */
  abstract append(event: MemoryEventDraft): Promise<boolean>;

  /** The oldest undelivered events, at most `limit`, in delivery order (creation time, then id). */
  abstract pendingBatch(limit: number): Promise<MemoryEvent[]>;

  /**
   * The next batch for this process's drain loop to deliver, at most `limit`. With one deliverer it is the
   * `pendingBatch`; an outbox shared by several processes hands each pending event to one of them at a time (its
   * order across batches may then differ) and hands an event its deliverer never settled to another after a while.
   */
  claimBatch(limit: number): Promise<MemoryEvent[]> {
    return this.pendingBatch(limit);
  }

  /**
   * Marks the events delivered at `at` (one more attempt each), all or none; resolves with how many changed (an
   * event delivered already, or unknown, stays as it was).
   */
  abstract markDelivered(eventIds: readonly string[], at: string): Promise<number>;

  /** Counts one more failed attempt on each still-pending event and keeps the error (already redacted). */
  abstract recordFailure(eventIds: readonly string[], error: string): Promise<void>;

  /** How many events are pending and delivered. */
  abstract counts(): Promise<MemoryOutboxStats>;

  /** Creation time of the oldest undelivered event, or `null` when nothing is pending. */
  abstract oldestPendingCreatedAt(): Promise<string | null>;

  /** Every event of a task, delivered or not, in delivery order. */
  abstract forTask(taskId: string): Promise<MemoryEvent[]>;
}

/** The longest error text an outbox keeps for an event. */
export const MAX_OUTBOX_ERROR_CHARS = 1000;

/** Deterministic event id: the same completion always maps to the same event. */
export function memoryEventId(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}
