import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { describeEventLogContract } from './event-log.contract';
import { InMemoryEventLog } from './in-memory-event-log';
import { insertTaskEvents, SqliteEventLog } from './sqlite-event-log';
import type { TaskStatus } from './task.types';

describeEventLogContract('SQLite (real file)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'event-log-'));
  const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  log.mockRestore();
  const run = (sql: string, ...params: unknown[]) => db.handle.prepare(sql).run(...params);
  return {
    log: new SqliteEventLog(db),
    addTask: (taskId) => {
      run(
        `INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at)
         VALUES (?, 'Biology/cells.canvas', 'running', 1, 60000, '[]', 0, '2026-11-27T00:00:00.000Z')`,
        taskId,
      );
    },
    store: (taskId, drafts) => db.transaction(() => insertTaskEvents(db, taskId, drafts)),
    finish: (taskId) => {
      run(`UPDATE tasks SET status = 'completed' WHERE task_id = ?`, taskId);
    },
    close: () => {
      db.onApplicationShutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeEventLogContract('in memory', () => {
  const statuses = new Map<string, TaskStatus>();
  const log = new InMemoryEventLog({ taskStatus: (taskId) => Promise.resolve(statuses.get(taskId)) });
  return {
    log,
    addTask: (taskId) => void statuses.set(taskId, 'running'),
    store: (taskId, drafts) => log.insert(taskId, drafts),
    finish: (taskId) => void statuses.set(taskId, 'completed'),
    close: () => undefined,
  };
});
