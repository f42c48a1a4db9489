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
}
