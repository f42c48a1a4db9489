import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import { SqliteDatabase } from '../database';
import { type CanvasItemIds, type GeneratedItems, GeneratedNodes, sortedItems } from './generated-nodes';
import { settled } from './live-feed';

interface ItemRow {
  kind: 'node' | 'edge';
  item_id: string;
  task_id: string;
}

/** `GeneratedNodes` on the embedded SQLite database: one row per card or edge (`generated_items`, migration 7). */
@Injectable()
export class SqliteGeneratedNodes extends GeneratedNodes {
  private readonly insert: Statement;
  private readonly select: Statement;

  constructor(private readonly db: SqliteDatabase) {
    super();
    this.insert = db.handle.prepare(
      `INSERT INTO generated_items (canvas_path, kind, item_id, task_id) VALUES (?, ?, ?, ?)
       ON CONFLICT (canvas_path, kind, item_id) DO NOTHING`,
    );
    this.select = db.handle.prepare(
      'SELECT kind, item_id, task_id FROM generated_items WHERE canvas_path = ? ORDER BY kind, item_id',
    );
  }

  record(canvasPath: string, taskId: string, items: CanvasItemIds): Promise<void> {
    return settled(() =>
      this.db.transaction(() => {
        for (const id of items.nodeIds) this.insert.run(canvasPath, 'node', id, taskId);
        for (const id of items.edgeIds) this.insert.run(canvasPath, 'edge', id, taskId);
      }),
    );
  }

  inCanvas(canvasPath: string): Promise<GeneratedItems> {
    return settled(() => {
      const found: GeneratedItems = { nodes: [], edges: [] };
      for (const row of this.select.all(canvasPath) as ItemRow[]) {
        (row.kind === 'node' ? found.nodes : found.edges).push({ id: row.item_id, taskId: row.task_id });
      }
      // SQLite's collation is by bytes, JS sorts by UTF-16 units: sorted here as every adapter sorts
      return sortedItems(found);
    });
  }
}
