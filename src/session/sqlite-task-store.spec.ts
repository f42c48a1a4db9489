import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { SqliteEventLog } from './sqlite-event-log';
import { SqliteTaskStore } from './sqlite-task-store';
import type { EventDraft } from './task-store';
import type { NewTask, NodeResultRecord } from './task.types';

/*
 * What only SQL shows: columns, cascades, foreign keys and the file. Every behaviour the `TaskStore` port promises
 * is in task-store.contract.ts, run against this adapter (and the in-memory one) by task-store.contract.spec.ts.
 */

const T0 = '2026-11-26T10:00:00.000Z';

const newTask = (taskId: string, overrides: Partial<NewTask> = {}): NewTask => ({
  taskId,
  canvasPath: 'Biology/cells.canvas',
  maxConcurrent: 4,
  timeoutMs: 60_000,
  groups: [
    { groupId: 'g-1', agentType: 'oral-explanation', nodeIds: ['a', 'b'] },
    { groupId: 7, agentType: 'scoring-agent', nodeIds: ['c'] },
  ],
  createdAt: T0,
  ...overrides,
});

const event = (type: string, data: Record<string, unknown> = {}): EventDraft => ({
  type,
  timestamp: T0,
  data,
});

const result = (nodeId: string, overrides: Partial<NodeResultRecord> = {}): NodeResultRecord => ({
  groupIndex: 0,
  nodeId,
  outcome: 'completed',
  filePath: `out/${nodeId}.md`,
  fileSize: 120,
  durationMs: 35,
  inputTokens: 10,
  outputTokens: 20,
  startedAt: '2026-11-26T10:00:01.000Z',
  finishedAt: '2026-11-26T10:00:02.000Z',
  ...overrides,
});

describe('SqliteTaskStore (real SQLite file)', () => {
  let dir: string;
  let db: SqliteDatabase;
  let events: SqliteEventLog;
  let store: SqliteTaskStore;

  const open = (): void => {
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    events = new SqliteEventLog(db);
    store = new SqliteTaskStore(db, events);
  };

  const count = (table: string, taskId: string): number =>
    (db.handle.prepare(`SELECT count(*) AS n FROM ${table} WHERE task_id = ?`).get(taskId) as { n: number })
      .n;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'task-store-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    open();
  });

  afterEach(() => {
    events.close();
    db.onApplicationShutdown();
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores the retention end in expires_at', async () => {
    await store.createTask(newTask('t1'));
    await store.transition('t1', 'running', { startedAt: 'S' });
    await store.transition('t1', 'partial_failure', { completedAt: 'C', expiresAt: 'E' });
    expect(db.handle.prepare('SELECT expires_at FROM tasks WHERE task_id = ?').get('t1')).toEqual({
      expires_at: 'E',
    });
  });

  it('deletes an expired task’s results and events with it (cascade)', async () => {
    const finish = async (taskId: string, expiresAt: string): Promise<void> => {
      await store.createTask(newTask(taskId));
      await store.transition(taskId, 'running', {}, [event('progress_update')]);
      await store.recordNodeResult(taskId, result('a'), [event('task_completed')]);
      await store.transition(taskId, 'completed', { completedAt: expiresAt, expiresAt }, [
        event('session_completed'),
      ]);
    };
    await finish('expired', '2026-11-26T10:00:00.000Z');
    await finish('kept', '2026-11-26T12:00:00.000Z');
    expect(await store.deleteExpired(new Date('2026-11-26T10:30:00.000Z'))).toEqual(['expired']);
    expect(count('node_results', 'expired')).toBe(0);
    expect(count('task_events', 'expired')).toBe(0);
    expect(count('node_results', 'kept')).toBe(1);
    expect(count('task_events', 'kept')).toBe(3);
  });

  it('refuses a result for an unknown task (foreign key)', async () => {
    // (matched by message: better-sqlite3's error class may come from another test file's realm)
    await expect(store.recordNodeResults('ghost', [result('a')], [])).rejects.toMatchObject({
      message: expect.stringMatching(/FOREIGN KEY/),
    });
  });

  it('publishes an operation’s events only once its transaction committed', async () => {
    await store.createTask(newTask('t1'));
    const publish = jest.spyOn(events, 'publish').mockImplementation(() => {
      expect(db.handle.inTransaction).toBe(false);
      expect(count('task_events', 't1')).toBe(1);
    });
    await store.transition('t1', 'running', {}, [event('progress_update')]);
    expect(publish).toHaveBeenCalledTimes(1);
  });

  it('keeps tasks, results, events and agent durations in the file across a reopen', async () => {
    const { task } = await store.createTask(newTask('t1'), { key: 'k', requestHash: 'h' });
    await store.transition('t1', 'running', {}, [event('progress_update')]);
    await store.recordNodeResult('t1', result('a'), [event('task_completed')]);
    await store.saveAgentDurations([{ agentType: 'scoring-agent', meanMs: 40, samples: 1 }]);
    events.close();
    db.onApplicationShutdown();

    open();
    expect(await store.findTask('t1')).toEqual({ ...task, status: 'running', lastEventId: 2 });
    expect(await store.createTask(newTask('t2'), { key: 'k', requestHash: 'h' })).toMatchObject({
      created: false,
      task: { taskId: 't1' },
    });
    expect(await store.nodeResults('t1')).toEqual([result('a')]);
    expect((await events.after('t1', 0)).map((e) => e.type)).toEqual(['progress_update', 'task_completed']);
    expect(await store.agentDurations()).toEqual([{ agentType: 'scoring-agent', meanMs: 40, samples: 1 }]);
  });

  it('writes no agent duration once the database is closed (shutdown), and says so', async () => {
    db.onApplicationShutdown();
    expect(await store.saveAgentDurations([{ agentType: 'scoring-agent', meanMs: 40, samples: 1 }])).toBe(
      false,
    );
  });
});
