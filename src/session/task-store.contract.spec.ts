import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { InMemoryEventLog } from './in-memory-event-log';
import { InMemoryTaskStore } from './in-memory-task-store';
import { SqliteEventLog } from './sqlite-event-log';
import { SqliteTaskStore } from './sqlite-task-store';
import { describeTaskStoreContract } from './task-store.contract';

describeTaskStoreContract('SqliteTaskStore (real SQLite file)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'task-store-contract-'));
  const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  const events = new SqliteEventLog(db);
  return {
    store: new SqliteTaskStore(db, events),
    events,
    close: () => {
      events.close();
      db.onApplicationShutdown();
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeTaskStoreContract('InMemoryTaskStore', () => {
  // the log refuses an unknown task's events and knows a finished task by the store's status, as the SQLite one
  const events: InMemoryEventLog = new InMemoryEventLog({ taskStatus: (taskId) => store.taskStatus(taskId) });
  const store: InMemoryTaskStore = new InMemoryTaskStore(events);
  return { store, events, close: () => void events.close() };
});
