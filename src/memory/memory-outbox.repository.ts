import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { MemoryEventType } from '../agent';
import { SqliteDatabase } from '../database';

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
 * The durable outbox of learning-memory events in the service's SQLite database. Appends are idempotent by
 * `eventId` (derived from task, node and agent), so a replayed completion never doubles an event.
 */
@Injectable()
export class MemoryOutboxRepository {
  private readonly insert: Statement;
  private readonly byTask: Statement;
  private readonly stats: Statement;
  private readonly pending: Statement;
  private readonly oldest: Statement;
  private readonly markOne: Statement;
  private readonly failOne: Statement;

  constructor(private readonly db: SqliteDatabase) {
    this.insert = db.handle.prepare(
      `INSERT OR IGNORE INTO memory_outbox (event_id, task_id, canvas_path, node_id, agent_type, memory_type, concept, payload_json, created_at)
       VALUES (@eventId, @taskId, @canvasPath, @nodeId, @agentType, @memoryType, @concept, @payload, @createdAt)`,
    );
    this.byTask = db.handle.prepare(
      'SELECT * FROM memory_outbox WHERE task_id = ? ORDER BY created_at, event_id',
    );
    this.stats = db.handle.prepare(
      'SELECT sum(delivered_at IS NULL) AS pending, sum(delivered_at IS NOT NULL) AS delivered FROM memory_outbox',
    );
    // both use the partial index memory_outbox_pending (created_at WHERE delivered_at IS NULL)
    this.pending = db.handle.prepare(
      'SELECT * FROM memory_outbox WHERE delivered_at IS NULL ORDER BY created_at, event_id LIMIT ?',
    );
    this.oldest = db.handle.prepare(
      'SELECT min(created_at) AS oldest FROM memory_outbox WHERE delivered_at IS NULL',
    );
    this.markOne = db.handle.prepare(
      'UPDATE memory_outbox SET delivered_at = ?, attempts = attempts + 1 WHERE event_id = ? AND delivered_at IS NULL',
    );
    this.failOne = db.handle.prepare(
      'UPDATE memory_outbox SET attempts = attempts + 1, last_error = ? WHERE event_id = ? AND delivered_at IS NULL',
    );
  }

  /** Stores the event unless one with the same id is there already; returns whether it was new. */
  append(event: MemoryEventDraft): boolean {
    return this.insert.run({ ...event, payload: JSON.stringify(event.payload) }).changes === 1;
  }

  forTask(taskId: string): MemoryEvent[] {
    return (this.byTask.all(taskId) as OutboxRow[]).map(fromRow);
  }

  /** The oldest undelivered events, at most `limit`, in delivery order (creation time, then id). */
  pendingBatch(limit: number): MemoryEvent[] {
    return (this.pending.all(limit) as OutboxRow[]).map(fromRow);
  }

  /** Creation time of the oldest undelivered event, or `null` when nothing is pending. */
  oldestPendingCreatedAt(): string | null {
    return (this.oldest.get() as { oldest: string | null }).oldest;
  }

  /**
   * Marks the events delivered, in the given order, in one transaction; returns how many changed (an event
   * delivered already stays as it was).
   */
  markDelivered(eventIds: readonly string[], at: string): number {
    return this.db.transaction(() => eventIds.reduce((n, id) => n + this.markOne.run(at, id).changes, 0));
  }

  /** Counts one more failed attempt on each still-pending event and keeps the error (already redacted). */
  recordFailure(eventIds: readonly string[], error: string): void {
    this.db.transaction(() => {
      for (const id of eventIds) this.failOne.run(error.slice(0, 1000), id);
    });
  }

  counts(): MemoryOutboxStats {
    const row = this.stats.get() as { pending: number | null; delivered: number | null };
    return { pending: row.pending ?? 0, delivered: row.delivered ?? 0 };
  }
}

function fromRow(r: OutboxRow): MemoryEvent {
  return {
    eventId: r.event_id,
    taskId: r.task_id,
    canvasPath: r.canvas_path,
    nodeId: r.node_id,
    agentType: r.agent_type,
    memoryType: r.memory_type as MemoryEventType,
    concept: r.concept,
    createdAt: r.created_at,
    payload: JSON.parse(r.payload_json) as Record<string, unknown>,
    deliveredAt: r.delivered_at,
    attempts: r.attempts,
  };
}

interface OutboxRow {
  event_id: string;
  task_id: string;
  canvas_path: string;
  node_id: string | null;
  agent_type: string;
  memory_type: string;
  concept: string;
  payload_json: string;
  created_at: string;
  delivered_at: string | null;
  attempts: number;
}

/** Deterministic event id: the same completion always maps to the same event. */
export function memoryEventId(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}
