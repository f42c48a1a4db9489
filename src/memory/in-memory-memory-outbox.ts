import {
  MAX_OUTBOX_ERROR_CHARS,
  type MemoryEvent,
  type MemoryEventDraft,
  MemoryOutbox,
  type MemoryOutboxStats,
} from './memory-outbox';

interface Entry {
  event: MemoryEvent;
  lastError: string | null;
}

/**
 * The `MemoryOutbox` in this process's memory, for unit tests: nothing survives the process. Events go in and come
 * out as copies, so no caller shares an object with it (as with any adapter behind a network).
 */
export class InMemoryMemoryOutbox extends MemoryOutbox {
  private readonly entries = new Map<string, Entry>();

  append(event: MemoryEventDraft): Promise<boolean> {
    if (this.entries.has(event.eventId)) return Promise.resolve(false);
    this.entries.set(event.eventId, {
      event: copy({ ...event, deliveredAt: null, attempts: 0 }),
      lastError: null,
    });
    return Promise.resolve(true);
  }

  pendingBatch(limit: number): Promise<MemoryEvent[]> {
    return Promise.resolve(this.sorted((e) => e.deliveredAt === null).slice(0, Math.max(0, limit)));
  }

  markDelivered(eventIds: readonly string[], at: string): Promise<number> {
    let changed = 0;
    for (const { event } of this.pendingEntries(eventIds)) {
      event.deliveredAt = at;
      event.attempts++;
      changed++;
    }
    return Promise.resolve(changed);
  }

  recordFailure(eventIds: readonly string[], error: string): Promise<void> {
    for (const entry of this.pendingEntries(eventIds)) {
      entry.event.attempts++;
      entry.lastError = error.slice(0, MAX_OUTBOX_ERROR_CHARS);
    }
    return Promise.resolve();
  }

  counts(): Promise<MemoryOutboxStats> {
    let pending = 0;
    for (const { event } of this.entries.values()) if (event.deliveredAt === null) pending++;
    return Promise.resolve({ pending, delivered: this.entries.size - pending });
  }

  oldestPendingCreatedAt(): Promise<string | null> {
    return Promise.resolve(this.sorted((e) => e.deliveredAt === null)[0]?.createdAt ?? null);
  }

  forTask(taskId: string): Promise<MemoryEvent[]> {
    return Promise.resolve(this.sorted((e) => e.taskId === taskId));
  }

  /** Each still-pending entry among the ids, once, in the given order. */
  private pendingEntries(eventIds: readonly string[]): Entry[] {
    const seen = new Set<string>();
    const found: Entry[] = [];
    for (const id of eventIds) {
      const entry = this.entries.get(id);
      if (!entry || seen.has(id) || entry.event.deliveredAt !== null) continue;
      seen.add(id);
      found.push(entry);
    }
    return found;
  }

  /** Copies of the matching events in delivery order: creation time, then id (compared as SQLite does). */
  private sorted(match: (e: MemoryEvent) => boolean): MemoryEvent[] {
    return [...this.entries.values()]
      .map((entry) => entry.event)
      .filter(match)
      .sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.eventId, b.eventId))
      .map(copy);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A copy as a stored row reads back: the payload through JSON. */
function copy(event: MemoryEvent): MemoryEvent {
  return { ...event, payload: JSON.parse(JSON.stringify(event.payload)) as Record<string, unknown> };
}
