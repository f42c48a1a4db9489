import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { Database, Statement } from 'better-sqlite3';
import type { Observable } from 'rxjs';
import { SqliteDatabase } from '../database';
import { EventLog } from './event-log';
import { LiveFeed, settled } from './live-feed';
import { TaskNotFoundError } from './task.errors';
import type { EventDraft } from './task-store';
import { asTaskEvent, assertTaskEventTypes, type TaskEvent } from './task-events';
import { isTerminal, type TaskEventRecord, type TaskStatus } from './task.types';

interface EventRow {
  event_id: number;
  type: string;
  timestamp: string;
  data_json: string;
}

interface InsertStatements {
  last: Statement;
  exists: Statement;
  insert: Statement;
}

/** Per database handle, prepared once. */
const insertStatements = new WeakMap<Database, InsertStatements>();

/**
 * Stores `drafts` as the task's next events and returns them as records: the SQLite log's write, for callers that
 * store events together with something else. Synchronous, and meant to run inside the caller's transaction (the
 * `SqliteTaskStore`'s outcome + its events); the caller hands the records to `EventLog.publish` once it committed.
 * Throws `TaskNotFoundError` for an unknown task, a `TypeError` for an event outside the vocabulary.
 */
export function insertTaskEvents(
  db: SqliteDatabase,
  taskId: string,
  drafts: readonly EventDraft[],
): TaskEventRecord[] {
  if (drafts.length === 0) return [];
  assertTaskEventTypes(drafts);
  let s = insertStatements.get(db.handle);
  if (!s) {
    s = {
      last: db.handle.prepare('SELECT max(event_id) FROM task_events WHERE task_id = ?').pluck(),
      exists: db.handle.prepare('SELECT 1 FROM tasks WHERE task_id = ?').pluck(),
      insert: db.handle.prepare(
        'INSERT INTO task_events (task_id, event_id, type, timestamp, data_json) VALUES (?, ?, ?, ?, ?)',
      ),
    };
    insertStatements.set(db.handle, s);
  }
  // The next id from the events themselves (the primary key's last entry), not from a counter in the task's row:
  // updating that row rewrote all of it, node ids included — megabytes per event for a 100,000-node task.
  const last = s.last.get(taskId) as number | null;
  if (last === null && s.exists.get(taskId) === undefined) throw new TaskNotFoundError(taskId);
  let id = last ?? 0;
  return drafts.map((e) => {
    s.insert.run(taskId, ++id, e.type, e.timestamp, JSON.stringify(e.data));
    return { id, taskId, type: e.type, timestamp: e.timestamp, data: e.data };
  });
}

/**
 * `EventLog` on the embedded SQLite database (table `task_events`, ids per task from its primary key), live side
 * in process (`LiveFeed`). better-sqlite3 is synchronous: each read is answered as a settled promise.
 */
@Injectable()
export class SqliteEventLog extends EventLog implements OnModuleDestroy {
  private readonly feed = new LiveFeed();
  private readonly afterStatement: Statement;
  private readonly statusStatement: Statement;

  constructor(private readonly db: SqliteDatabase) {
    super();
    this.afterStatement = db.handle.prepare(
      'SELECT event_id, type, timestamp, data_json FROM task_events WHERE task_id = ? AND event_id > ? ORDER BY event_id LIMIT ?',
    );
    this.statusStatement = db.handle.prepare('SELECT status FROM tasks WHERE task_id = ?').pluck();
  }

  append(taskId: string, drafts: readonly EventDraft[]): Promise<TaskEvent[]> {
    return settled(() =>
      this.feed.publish(this.db.transaction(() => insertTaskEvents(this.db, taskId, drafts))),
    );
  }

  after(taskId: string, afterId: number, limit?: number): Promise<TaskEvent[]> {
    // (LIMIT -1: no limit)
    const sqlLimit = limit === undefined || limit === Infinity ? -1 : limit;
    return settled(() =>
      (this.afterStatement.all(taskId, afterId, sqlLimit) as EventRow[]).map((r) =>
        asTaskEvent({
          id: r.event_id,
          taskId,
          type: r.type,
          timestamp: r.timestamp,
          data: JSON.parse(r.data_json) as Record<string, unknown>,
        }),
      ),
    );
  }

  publish(records: readonly TaskEventRecord[]): void {
    this.feed.publish(records);
  }

  live(taskId: string): Observable<TaskEvent> {
    return this.feed.forTask(taskId);
  }

  all(): Observable<TaskEvent> {
    return this.feed.all();
  }

  finished(taskId: string): Promise<boolean> {
    // a task that is gone (deleted after its retention) will have no more events either
    return settled(() =>
      isTerminal((this.statusStatement.get(taskId) as TaskStatus | undefined) ?? 'failed'),
    );
  }

  get liveFeedCount(): number {
    return this.feed.count;
  }

  close(): number {
    return this.feed.close();
  }

  onModuleDestroy(): void {
    this.close();
  }
}
