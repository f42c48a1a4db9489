import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import { SqliteDatabase } from '../database';
import type { MemoryEventDraft } from './memory-outbox';
import {
  type DeliveryReceipt,
  MemoryStore,
  type RecallQuery,
  type RecalledMemoryEvent,
} from './memory-store';

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
  private readonly byTask: Statement;
  private readonly byTaskNodes: Statement;

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
    // both through the index memory_events_task
    this.byTask = db.handle.prepare(
      'SELECT * FROM memory_events WHERE task_id = ? ORDER BY created_at, event_id',
    );
    this.byTaskNodes = db.handle.prepare(
      `SELECT * FROM memory_events WHERE task_id = ?
         AND (node_id IS NULL OR node_id IN (SELECT value FROM json_each(?)))
       ORDER BY created_at, event_id`,
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

  override recall({ taskId, nodeIds }: RecallQuery): Promise<RecalledMemoryEvent[]> {
    // a throw of the query (a closed database) becomes the rejection
    return new Promise((resolve) => {
      const rows = (
        nodeIds === undefined
          ? this.byTask.all(taskId)
          : this.byTaskNodes.all(taskId, JSON.stringify(nodeIds))
      ) as StoredRow[];
      resolve(rows.map((r) => recalled(fromRow(r))));
    });
  }

  /** Every stored event of a canvas, oldest first. */
  forCanvas(canvasPath: string): StoredMemoryEvent[] {
    return (this.byCanvas.all(canvasPath) as StoredRow[]).map(fromRow);
  }
}

function fromRow(r: StoredRow): StoredMemoryEvent {
  return {
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
  };
}

/** A stored event as the port reads it back (without the embedded store's own `storedAt`). */
function recalled({ storedAt: _storedAt, ...event }: StoredMemoryEvent): RecalledMemoryEvent {
  return event;
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
