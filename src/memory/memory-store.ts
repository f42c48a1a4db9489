import type { MemoryEventDraft } from './memory-outbox';

/** What a store confirms for one delivery: how many of the given events it now holds. */
export interface DeliveryReceipt {
  stored: number;
}

/**
 * The port the drain loop delivers learning-memory events to (also the DI token). Adapters: `Neo4jMemoryStore`
 * (when Neo4j is configured) and `EmbeddedMemoryStore` (SQLite, beside the tasks); a host may bring its own.
 *
 * Contract: `deliver` is idempotent by `eventId` (delivering an event twice leaves one copy), and resolves only once
 * every given event is durably stored, with `{ stored: events.length }`. Anything else (a rejection, a hang, another
 * answer) counts as a failed attempt: the events stay pending and are offered again later.
 */
export abstract class MemoryStore {
  /** `neo4j`, `embedded`, or a host's own name. */
  abstract readonly kind: string;
  /** Where events go, for logs and `GET /memory/status`; never contains credentials. */
  abstract readonly target: string;

  /** Checks the store is reachable and ready (e.g. schema in place); resolves with a short description of it. */
  abstract prepare(): Promise<string>;

  /** `signal` aborts when the drain loop stops waiting (attempt timeout, shutdown deadline). */
  abstract deliver(events: readonly MemoryEventDraft[], signal?: AbortSignal): Promise<DeliveryReceipt>;

  /**
   * The read side (`GET /parallel/status/{task_id}/memory`): the events of one task the store holds, in delivery
   * order (creation time, then id) — with `nodeIds`, only those about these nodes, plus the task's own events (no
   * node: `canvas_opened`). Optional: a host's write-only store leaves it out and the route answers from the outbox
   * alone. `signal` aborts when the caller stops waiting.
   */
  recall?(query: RecallQuery, signal?: AbortSignal): Promise<RecalledMemoryEvent[]>;
}

/** What `MemoryStore.recall` reads back. */
export interface RecallQuery {
  taskId: string;
  /** Only events about these nodes (and the task's node-less events); all of the task's when absent. */
  nodeIds?: readonly string[];
}

/** One learning event as a store holds it, read back. */
export interface RecalledMemoryEvent {
  eventId: string;
  taskId: string;
  /** The memory event type (`explanation_generated`, …). */
  type: string;
  agentType: string;
  canvasPath: string;
  nodeId: string | null;
  concept: string;
  /** ISO 8601, milliseconds, UTC. */
  createdAt: string;
  /** The event's other members as stored (`group_id`, `file_path`, `duration_ms`, …). */
  payload: Record<string, unknown>;
}

/**
 * A store's self-description (`kind`, `target`, `prepare`'s answer) read without trusting it: a host's store may
 * throw from a getter or answer something else than a non-empty string — then `fallback`.
 */
export function safeString(get: () => unknown, fallback: string): string {
  try {
    const v = get();
    return typeof v === 'string' && v.length > 0 ? v : fallback;
  } catch {
    return fallback;
  }
}
