import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import { SqliteDatabase } from '../database';
import type { MemoryEventDraft } from './memory-outbox';
import { type DeliveryReceipt, MemoryStore } from './memory-store';

/** One learning event as the embedded store keeps it (table `memory_events`). */
export interface StoredMemoryEvent {
  eventId: string;
  type: string;
  agentType: string;
  taskId: string;
  canvasPath: string;
  nodeId: string | null;
  concept: string;
  payload: Record<string, unknown>;
  createdAt: string;
  storedAt: string;
}

/**
 * The store used when Neo4j is not configured: delivered events land in the `memory_events` table of the service's
 * own SQLite database, one row per event (keyed by `event_id`), where they can be queried with SQL.
 */
@Injectable()
export class EmbeddedMemoryStore extends MemoryStore {
  readonly kind = 'embedded';
  readonly target: string;
  private readonly insert: Statement;
  private readonly byCanvas: Statement;

  constructor(private readonly db: SqliteDatabase) {
    super();
    this.target = `SQLite ${db.file} (table memory_events)`;
    this.insert = db.handle.prepare(
      `INSERT OR IGNORE INTO memory_events (event_id, type, agent_type, task_id, canvas_path, node_id, concept, payload_json, created_at, stored_at)
       VALUES (@eventId, @memoryType, @agentType, @taskId, @canvasPath, @nodeId, @concept, @payload, @createdAt, @storedAt)`,
    );
    this.byCanvas = db.handle.prepare(
      'SELECT * FROM memory_events WHERE canvas_path = ? ORDER BY created_at, event_id',
    );
  }

  prepare(): Promise<string> {
    return Promise.resolve(`embedded store (${this.target})`);
  }

  deliver(events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> {
    const storedAt = new Date().toISOString();
    this.db.transaction(() => {
      for (const e of events) this.insert.run({ ...e, payload: JSON.stringify(e.payload), storedAt });
    });
    return Promise.resolve({ stored: events.length });
  }

  /** Every stored event of a canvas, oldest first. */
  forCanvas(canvasPath: string): StoredMemoryEvent[] {
    return (this.byCanvas.all(canvasPath) as StoredRow[]).map((r) => ({
      eventId: r.event_id,
      type: r.type,
      agentType: r.agent_type,
      taskId: r.task_id,
      canvasPath: r.canvas_path,
      nodeId: r.node_id,
      concept: r.concept,
      payload: JSON.parse(r.payload_json) as Record<string, unknown>,
      createdAt: r.created_at,
      storedAt: r.stored_at,
    }));
  }
}

interface StoredRow {
  event_id: string;
  type: string;
  agent_type: string;
  task_id: string;
  canvas_path: string;
  node_id: string | null;
  concept: string;
  payload_json: string;
  created_at: string;
  stored_at: string;
}
