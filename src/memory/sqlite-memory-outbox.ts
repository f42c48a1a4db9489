import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import type { MemoryEventType } from '../agent';
import { SqliteDatabase } from '../database';
import {
  MAX_OUTBOX_ERROR_CHARS,
  type MemoryEvent,
  type MemoryEventDraft,
  MemoryOutbox,
  type MemoryOutboxStats,
} from './memory-outbox';

/**
 * The `MemoryOutbox` in the service's SQLite database (table `memory_outbox`). Appends are idempotent by `eventId`
 * (derived from task, node and agent), so a replayed completion never doubles an event. better-sqlite3 answers
 * synchronously; each method still resolves (or rejects) like any other adapter's.
 */
@Injectable()
export class SqliteMemoryOutbox extends MemoryOutbox {
  private readonly insert: Statement;
  private readonly byTask: Statement;
  private readonly stats: Statement;
  private readonly pending: Statement;
  private readonly oldest: Statement;
  private readonly markOne: Statement;
  private readonly failOne: Statement;

  constructor(private readonly db: SqliteDatabase) {
    super();
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

  append(event: MemoryEventDraft): Promise<boolean> {
    return settle(() => this.insert.run({ ...event, payload: JSON.stringify(event.payload) }).changes === 1);
  }

  pendingBatch(limit: number): Promise<MemoryEvent[]> {
    return settle(() => (this.pending.all(limit) as OutboxRow[]).map(fromRow));
  }

  /** In the given order, in one transaction. */
  markDelivered(eventIds: readonly string[], at: string): Promise<number> {
    return settle(() =>
      this.db.transaction(() => eventIds.reduce((n, id) => n + this.markOne.run(at, id).changes, 0)),
    );
  }

  recordFailure(eventIds: readonly string[], error: string): Promise<void> {
    return settle(() =>
      this.db.transaction(() => {
        for (const id of eventIds) this.failOne.run(error.slice(0, MAX_OUTBOX_ERROR_CHARS), id);
      }),
    );
  }

  counts(): Promise<MemoryOutboxStats> {
    return settle(() => {
      const row = this.stats.get() as { pending: number | null; delivered: number | null };
      return { pending: row.pending ?? 0, delivered: row.delivered ?? 0 };
    });
  }

  oldestPendingCreatedAt(): Promise<string | null> {
    return settle(() => (this.oldest.get() as { oldest: string | null }).oldest);
  }

  forTask(taskId: string): Promise<MemoryEvent[]> {
    return settle(() => (this.byTask.all(taskId) as OutboxRow[]).map(fromRow));
  }
}

/** A synchronous call as a promise: its value, or its throw as a rejection. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
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
