import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import {
  IdempotencyKeyReusedError,
  InvalidStateTransitionError,
  SessionNotFoundError,
} from './session.errors';
import { SqliteTaskStore } from './sqlite-task-store';
import type { EventDraft } from './task-store';
import type { NewTask, NodeResultRecord, TaskStatus } from './task.types';

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
  let store: SqliteTaskStore;

  const count = (table: string, taskId: string): number =>
    (db.handle.prepare(`SELECT count(*) AS n FROM ${table} WHERE task_id = ?`).get(taskId) as { n: number })
      .n;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'task-store-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    store = new SqliteTaskStore(db);
  });

  afterEach(() => {
    db.onApplicationShutdown();
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('createTask / findTask', () => {
    it('stores a pending task with its groups and node total', () => {
      const { task, created } = store.createTask(newTask('t1'));
      expect(created).toBe(true);
      expect(task).toEqual({
        taskId: 't1',
        canvasPath: 'Biology/cells.canvas',
        status: 'pending',
        maxConcurrent: 4,
        timeoutMs: 60_000,
        groups: newTask('t1').groups,
        totalNodes: 3,
        createdAt: T0,
        startedAt: null,
        completedAt: null,
        deadlineAt: null,
        errorMessage: null,
        metrics: null,
        lastEventId: 0,
        idempotencyKey: null,
        resumeCount: 0,
        peakConcurrent: 0,
        cancelRequested: null,
      });
      expect(store.findTask('t1')).toEqual(task);
    });

    it('keeps group ids exactly as given (string or number)', () => {
      const groups = store.createTask(newTask('t1')).task.groups;
      expect(groups.map((g) => g.groupId)).toEqual(['g-1', 7]);
    });

    it('finds nothing for an unknown id', () => {
      expect(store.findTask('nope')).toBeUndefined();
    });

    it('returns the earlier task for a repeated idempotency key with the same request', () => {
      const first = store.createTask(newTask('t1'), { key: 'key-1', requestHash: 'h1' });
      expect(first.task.idempotencyKey).toBe('key-1');
      const again = store.createTask(newTask('t2'), { key: 'key-1', requestHash: 'h1' });
      expect(again).toEqual({ task: first.task, created: false });
      expect(store.findTask('t2')).toBeUndefined();
      expect(store.listTasks({ limit: 10 })).toHaveLength(1);
    });

    it('refuses a repeated idempotency key with another request', () => {
      store.createTask(newTask('t1'), { key: 'key-1', requestHash: 'h1' });
      const err: unknown = (() => {
        try {
          store.createTask(newTask('t2'), { key: 'key-1', requestHash: 'h2' });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(IdempotencyKeyReusedError);
      expect((err as Error).message).toBe(
        'Idempotency-Key "key-1" was already used for task t1 with a different request; use a new key',
      );
      expect(store.findTask('t2')).toBeUndefined();
    });

    it('treats different keys independently', () => {
      store.createTask(newTask('t1'), { key: 'a', requestHash: 'h' });
      expect(store.createTask(newTask('t2'), { key: 'b', requestHash: 'h' }).created).toBe(true);
    });
  });

  describe('listTasks', () => {
    beforeEach(() => {
      store.createTask(newTask('old', { createdAt: '2026-11-26T09:00:00.000Z' }));
      store.createTask(newTask('new', { createdAt: '2026-11-26T11:00:00.000Z' }));
      store.createTask(newTask('mid', { createdAt: '2026-11-26T10:00:00.000Z' }));
      store.createTask(newTask('mid-later-insert', { createdAt: '2026-11-26T10:00:00.000Z' }));
      store.transition('old', 'running');
      store.transition('mid', 'cancelled');
    });

    it('lists newest first, ties by insertion order (latest first)', () => {
      expect(store.listTasks({ limit: 10 }).map((t) => t.taskId)).toEqual([
        'new',
        'mid-later-insert',
        'mid',
        'old',
      ]);
    });

    it('filters by status', () => {
      expect(store.listTasks({ status: 'pending', limit: 10 }).map((t) => t.taskId)).toEqual([
        'new',
        'mid-later-insert',
      ]);
      expect(store.listTasks({ status: 'running', limit: 10 }).map((t) => t.taskId)).toEqual(['old']);
      expect(store.listTasks({ status: 'completed', limit: 10 })).toEqual([]);
    });

    it('honours the limit', () => {
      expect(store.listTasks({ limit: 2 }).map((t) => t.taskId)).toEqual(['new', 'mid-later-insert']);
      expect(store.listTasks({ status: 'pending', limit: 1 }).map((t) => t.taskId)).toEqual(['new']);
    });
  });

  describe('transition', () => {
    beforeEach(() => store.createTask(newTask('t1')));

    it('moves pending → running with its patch and events', () => {
      const { task, events } = store.transition(
        't1',
        'running',
        { startedAt: '2026-11-26T10:00:01.000Z', deadlineAt: '2026-11-26T10:01:01.000Z' },
        [event('task_started', { total: 3 }), event('group_started', { group: 0 })],
      );
      expect(task).toMatchObject({
        status: 'running',
        startedAt: '2026-11-26T10:00:01.000Z',
        deadlineAt: '2026-11-26T10:01:01.000Z',
        completedAt: null,
        lastEventId: 2,
      });
      expect(events).toEqual([
        { id: 1, taskId: 't1', type: 'task_started', timestamp: T0, data: { total: 3 } },
        { id: 2, taskId: 't1', type: 'group_started', timestamp: T0, data: { group: 0 } },
      ]);
    });

    it('keeps earlier fields that a later patch leaves out, and stores metrics and the error', () => {
      store.transition('t1', 'running', { startedAt: 'S' });
      const metrics = {
        total_duration_seconds: 1.5,
        average_duration_per_node: 0.5,
        parallel_efficiency: 0.9,
        peak_concurrent: 2,
      };
      const { task } = store.transition('t1', 'partial_failure', {
        completedAt: 'C',
        expiresAt: 'E',
        errorMessage: '1 node failed',
        metrics,
      });
      expect(task).toMatchObject({
        startedAt: 'S',
        completedAt: 'C',
        errorMessage: '1 node failed',
        metrics,
      });
      expect(db.handle.prepare('SELECT expires_at FROM tasks WHERE task_id = ?').get('t1')).toEqual({
        expires_at: 'E',
      });
    });

    it('clears the error message with null and keeps it when undefined', () => {
      store.transition('t1', 'running', { errorMessage: 'transient' });
      expect(store.findTask('t1')?.errorMessage).toBe('transient');
      store.transition('t1', 'completed', {});
      expect(store.findTask('t1')?.errorMessage).toBe('transient');
      store.createTask(newTask('t2'));
      store.transition('t2', 'running', { errorMessage: 'x' });
      store.transition('t2', 'failed', { errorMessage: null });
      expect(store.findTask('t2')?.errorMessage).toBeNull();
    });

    it('refuses running → running and leaves the task and its log alone', () => {
      store.transition('t1', 'running');
      expect(() => store.transition('t1', 'running', {}, [event('x')])).toThrow(InvalidStateTransitionError);
      expect(store.findTask('t1')?.lastEventId).toBe(0);
      expect(store.eventsAfter('t1', 0)).toEqual([]);
    });

    it.each([['completed'], ['partial_failure'], ['failed'], ['cancelled']] as [TaskStatus][])(
      'refuses any move out of the terminal status %s',
      (terminal) => {
        store.transition('t1', 'running');
        store.transition('t1', terminal);
        for (const to of [
          'pending',
          'running',
          'completed',
          'partial_failure',
          'failed',
          'cancelled',
        ] as TaskStatus[]) {
          const err: unknown = (() => {
            try {
              store.transition('t1', to);
            } catch (e) {
              return e;
            }
          })();
          expect(err).toBeInstanceOf(InvalidStateTransitionError);
          expect(err).toMatchObject({ taskId: 't1', from: terminal, to, code: 'invalid-state-transition' });
        }
        expect(store.findTask('t1')?.status).toBe(terminal);
      },
    );

    it('refuses an unknown task with SessionNotFoundError', () => {
      expect(() => store.transition('ghost', 'running')).toThrow(SessionNotFoundError);
    });
  });

  describe('events', () => {
    beforeEach(() => {
      store.createTask(newTask('t1'));
      store.createTask(newTask('t2'));
    });

    it('numbers events 1, 2, 3 … per task, independently', () => {
      expect(store.appendEvent('t1', event('a')).id).toBe(1);
      expect(store.appendEvent('t2', event('a')).id).toBe(1);
      expect(store.appendEvent('t1', event('b')).id).toBe(2);
      expect(store.transition('t1', 'running', {}, [event('c')]).events[0].id).toBe(3);
      expect(store.recordNodeResult('t1', result('a'), [event('d')])[0].id).toBe(4);
      expect(store.appendEvent('t2', event('b')).id).toBe(2);
      expect(store.findTask('t1')?.lastEventId).toBe(4);
      expect(store.eventsAfter('t1', 0).map((e) => [e.id, e.type])).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
        [4, 'd'],
      ]);
    });

    it('pages events after a given id, in order, up to a limit', () => {
      for (let i = 1; i <= 10; i++) store.appendEvent('t1', event(`e${i}`, { i }));
      expect(store.eventsAfter('t1', 7).map((e) => e.id)).toEqual([8, 9, 10]);
      expect(store.eventsAfter('t1', 2, 3).map((e) => e.id)).toEqual([3, 4, 5]);
      expect(store.eventsAfter('t1', 10)).toEqual([]);
      expect(store.eventsAfter('t1', 4, 1)).toEqual([
        { id: 5, taskId: 't1', type: 'e5', timestamp: T0, data: { i: 5 } },
      ]);
      expect(store.eventsAfter('t2', 0)).toEqual([]);
    });

    it('round-trips event data as JSON', () => {
      const data = { nested: { list: [1, 'two', null] }, unicode: '导数', flag: false };
      store.appendEvent('t1', event('x', data));
      expect(store.eventsAfter('t1', 0)[0].data).toEqual(data);
    });

    it('refuses an event for an unknown task', () => {
      expect(() => store.appendEvent('ghost', event('x'))).toThrow(SessionNotFoundError);
    });
  });

  describe('node results', () => {
    beforeEach(() => store.createTask(newTask('t1')));

    it('records a result together with its event', () => {
      const [stored] = store.recordNodeResult('t1', result('a'), [event('task_completed', { node_id: 'a' })]);
      expect(stored).toEqual({
        id: 1,
        taskId: 't1',
        type: 'task_completed',
        timestamp: T0,
        data: { node_id: 'a' },
      });
      expect(store.nodeResults('t1')).toEqual([result('a')]);
    });

    it('round-trips what the size caps left out, and replaces it on a replay', () => {
      const truncated = { inputChars: 4_980_736, canvasChars: 12 };
      store.recordNodeResult('t1', result('a', { truncated }), [event('task_completed')]);
      expect(store.nodeResults('t1')).toEqual([result('a', { truncated })]);
      store.recordNodeResult('t1', result('a'), [event('task_completed')]);
      expect(store.nodeResults('t1')[0]).not.toHaveProperty('truncated');
    });

    it('is atomic: when the event cannot be stored, neither is the result nor the event counter', () => {
      store.appendEvent('t1', event('before'));
      const unserializable = { big: BigInt(1) } as unknown as Record<string, unknown>;
      expect(() =>
        store.recordNodeResult('t1', result('a'), [event('task_completed', unserializable)]),
      ).toThrow(TypeError);
      expect(store.nodeResults('t1')).toEqual([]);
      expect(store.findTask('t1')?.lastEventId).toBe(1);
      expect(store.appendEvent('t1', event('after')).id).toBe(2);
    });

    it('omits absent optional fields', () => {
      const failed: NodeResultRecord = {
        groupIndex: 1,
        nodeId: 'c',
        outcome: 'failed',
        errorMessage: 'agent timed out',
        errorType: 'AGENT_TIMEOUT',
        inputTokens: 0,
        outputTokens: 0,
        finishedAt: '2026-11-26T10:00:03.000Z',
      };
      store.recordNodeResult('t1', failed, [event('task_failed')]);
      expect(store.nodeResults('t1')).toEqual([failed]);
      expect(Object.keys(store.nodeResults('t1')[0])).not.toContain('filePath');
    });

    it('replaces a replayed result for the same group and node', () => {
      store.recordNodeResult(
        't1',
        result('a', { outcome: 'failed', errorMessage: 'x', errorType: 'AGENT_ERROR' }),
        [event('f')],
      );
      store.recordNodeResult('t1', result('a'), [event('c')]);
      expect(store.nodeResults('t1')).toEqual([result('a')]);
    });

    it('keeps the same node in two groups apart', () => {
      store.recordNodeResults('t1', [result('a'), result('a', { groupIndex: 1 })], []);
      expect(store.nodeResults('t1').map((r) => [r.groupIndex, r.nodeId])).toEqual([
        [0, 'a'],
        [1, 'a'],
      ]);
    });

    it('records several results without events', () => {
      store.recordNodeResults(
        't1',
        [
          result('a', { outcome: 'skipped', errorType: 'CANCELLED' }),
          result('b', { outcome: 'skipped', errorType: 'CANCELLED' }),
        ],
        [],
      );
      expect(store.nodeResults('t1')).toHaveLength(2);
      expect(store.findTask('t1')?.lastEventId).toBe(0);
    });

    it('orders results by group, then finish time, then node id', () => {
      store.recordNodeResults(
        't1',
        [
          result('z', { groupIndex: 1, finishedAt: '1' }),
          result('b', { finishedAt: '2' }),
          result('a', { finishedAt: '2' }),
          result('c', { finishedAt: '1' }),
        ],
        [],
      );
      expect(store.nodeResults('t1').map((r) => r.nodeId)).toEqual(['c', 'a', 'b', 'z']);
    });

    it('counts completed, failed and skipped nodes', () => {
      expect(store.nodeCounts('t1')).toEqual({ completed: 0, failed: 0, skipped: 0 });
      store.recordNodeResults(
        't1',
        [
          result('a'),
          result('b'),
          result('c', { outcome: 'failed' }),
          result('d', { outcome: 'skipped', groupIndex: 1 }),
        ],
        [],
      );
      expect(store.nodeCounts('t1')).toEqual({ completed: 2, failed: 1, skipped: 1 });
    });

    it('refuses a result for an unknown task (foreign key)', () => {
      expect(() => store.recordNodeResults('ghost', [result('a')], [])).toThrow(/FOREIGN KEY/);
    });
  });

  describe('deleteExpired', () => {
    const finish = (taskId: string, expiresAt: string) => {
      store.createTask(newTask(taskId));
      store.transition(taskId, 'running', {}, [event('started')]);
      store.recordNodeResult(taskId, result('a'), [event('task_completed')]);
      store.transition(taskId, 'completed', { completedAt: expiresAt, expiresAt }, [
        event('session_completed'),
      ]);
    };

    it('removes tasks whose retention ended, with their results and events, and returns their ids', () => {
      finish('expired-1', '2026-11-26T10:00:00.000Z');
      finish('expired-2', '2026-11-26T10:30:00.000Z');
      finish('kept', '2026-11-26T12:00:00.000Z');
      store.createTask(newTask('running'));
      store.transition('running', 'running');

      const removed = store.deleteExpired(new Date('2026-11-26T10:30:00.000Z'));
      expect(removed.sort()).toEqual(['expired-1', 'expired-2']);
      for (const id of removed) {
        expect(store.findTask(id)).toBeUndefined();
        expect(count('node_results', id)).toBe(0);
        expect(count('task_events', id)).toBe(0);
      }
      expect(store.findTask('kept')).toBeDefined();
      expect(count('node_results', 'kept')).toBe(1);
      expect(count('task_events', 'kept')).toBe(3);
      expect(store.findTask('running')?.status).toBe('running');
    });

    it('removes nothing when nothing expired', () => {
      finish('kept', '2026-11-26T12:00:00.000Z');
      expect(store.deleteExpired(new Date('2026-11-26T11:59:59.999Z'))).toEqual([]);
      expect(store.findTask('kept')).toBeDefined();
    });
  });

  describe('requestCancel', () => {
    it('records a cancel of a pending or running task in one step, keeping the first mode', () => {
      store.createTask(newTask('p'));
      expect(store.requestCancel('p', 'abort')).toMatchObject({
        outcome: 'requested',
        task: { taskId: 'p', status: 'pending', cancelRequested: 'abort' },
      });
      store.createTask(newTask('r'));
      store.transition('r', 'running');
      expect(store.requestCancel('r', 'graceful')).toMatchObject({
        outcome: 'requested',
        task: { status: 'running', cancelRequested: 'graceful' },
      });
      expect(store.requestCancel('r', 'abort')).toMatchObject({ task: { cancelRequested: 'graceful' } });
      expect(store.findTask('r')?.cancelRequested).toBe('graceful');
    });

    it('leaves a finished task as it is, and says when there is no such task', () => {
      store.createTask(newTask('done'));
      store.transition('done', 'running');
      store.transition('done', 'completed');
      expect(store.requestCancel('done', 'abort')).toMatchObject({
        outcome: 'finished',
        task: { status: 'completed', cancelRequested: null },
      });
      expect(store.findTask('done')?.cancelRequested).toBeNull();
      expect(store.requestCancel('nope', 'graceful')).toEqual({ outcome: 'not-found' });
    });
  });
});
