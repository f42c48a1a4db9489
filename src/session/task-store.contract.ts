import type { EventLog } from './event-log';
import { IdempotencyKeyReusedError, InvalidStateTransitionError, TaskNotFoundError } from './task.errors';
import type { EventDraft, TaskStore } from './task-store';
import type { NewTask, NodeResultRecord, TaskEventRecord, TaskStatus } from './task.types';

/** One store to test, empty, with the event log it publishes to, and how to dispose of both. */
export interface TaskStoreUnderTest {
  store: TaskStore;
  /** The log the store's operations append to (`after` reads what they stored, `live`/`all` what they published). */
  events: EventLog;
  close(): void | Promise<void>;
}

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

const ALL_STATUSES: TaskStatus[] = [
  'pending',
  'running',
  'completed',
  'partial_failure',
  'failed',
  'cancelled',
];

/** The rejection of `promise` (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/**
 * The behaviour every `TaskStore` adapter shares, written once: a spec file calls it with a factory of empty stores
 * (`src/session/task-store.contract.spec.ts` runs it for SQLite on a real file and for the in-memory one).
 */
export function describeTaskStoreContract(
  name: string,
  make: () => TaskStoreUnderTest | Promise<TaskStoreUnderTest>,
): void {
  describe(`TaskStore contract: ${name}`, () => {
    let subject: TaskStoreUnderTest;
    let store: TaskStore;
    let log: EventLog;

    beforeEach(async () => {
      subject = await make();
      store = subject.store;
      log = subject.events;
    });

    afterEach(async () => {
      await subject.close();
    });

    describe('createTask / findTask', () => {
      it('stores a pending task with its groups and node total', async () => {
        const { task, created } = await store.createTask(newTask('t1'));
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
          budgetUsd: null,
        });
        expect(await store.findTask('t1')).toEqual(task);
      });

      it('keeps the opt-out of the result cache (cache: false); a batch that did not opt out has no such field', async () => {
        const { task } = await store.createTask({ ...newTask('t-off'), cache: false });
        expect(task.cache).toBe(false);
        expect((await store.findTask('t-off'))?.cache).toBe(false);
        expect((await store.unfinishedTasks()).find((t) => t.taskId === 't-off')?.cache).toBe(false);
        await store.createTask({ ...newTask('t-on'), cache: true });
        expect(await store.findTask('t-on')).not.toHaveProperty('cache');
        await store.createTask(newTask('t-default'));
        expect(await store.findTask('t-default')).not.toHaveProperty('cache');
      });

      it('keeps group ids exactly as given (string or number)', async () => {
        const { groups } = (await store.createTask(newTask('t1'))).task;
        expect(groups.map((g) => g.groupId)).toEqual(['g-1', 7]);
      });

      it('finds nothing for an unknown id', async () => {
        expect(await store.findTask('nope')).toBeUndefined();
        expect(await store.taskStatus('nope')).toBeUndefined();
      });

      it('shares no object with its callers: changing a given or returned record changes nothing stored', async () => {
        const given = newTask('t1');
        const { task } = await store.createTask(given);
        given.groups[0].nodeIds.push('x');
        task.groups[1].nodeIds.push('y');
        task.status = 'failed';
        expect(await store.findTask('t1')).toMatchObject({ status: 'pending', groups: newTask('t1').groups });
      });

      it('returns the earlier task for a repeated idempotency key with the same request', async () => {
        const first = await store.createTask(newTask('t1'), { key: 'key-1', requestHash: 'h1' });
        expect(first.task.idempotencyKey).toBe('key-1');
        const again = await store.createTask(newTask('t2'), { key: 'key-1', requestHash: 'h1' });
        expect(again).toEqual({ task: first.task, created: false });
        expect(await store.findTask('t2')).toBeUndefined();
        expect(await store.listTasks({ limit: 10 })).toHaveLength(1);
      });

      it('refuses a repeated idempotency key with another request', async () => {
        await store.createTask(newTask('t1'), { key: 'key-1', requestHash: 'h1' });
        const err = await rejection(store.createTask(newTask('t2'), { key: 'key-1', requestHash: 'h2' }));
        expect(err).toBeInstanceOf(IdempotencyKeyReusedError);
        expect((err as Error).message).toBe(
          'Idempotency-Key "key-1" was already used for task t1 with a different request; use a new key',
        );
        expect(await store.findTask('t2')).toBeUndefined();
      });

      it('treats different keys independently', async () => {
        await store.createTask(newTask('t1'), { key: 'a', requestHash: 'h' });
        expect((await store.createTask(newTask('t2'), { key: 'b', requestHash: 'h' })).created).toBe(true);
      });

      it('creates one task for concurrent requests with the same key', async () => {
        const [a, b] = await Promise.all([
          store.createTask(newTask('t1'), { key: 'k', requestHash: 'h' }),
          store.createTask(newTask('t2'), { key: 'k', requestHash: 'h' }),
        ]);
        expect([a.created, b.created]).toEqual([true, false]);
        expect(b.task.taskId).toBe('t1');
        expect(await store.listTasks({ limit: 10 })).toHaveLength(1);
      });
    });

    describe('listTasks', () => {
      beforeEach(async () => {
        await store.createTask(newTask('old', { createdAt: '2026-11-26T09:00:00.000Z' }));
        await store.createTask(newTask('new', { createdAt: '2026-11-26T11:00:00.000Z' }));
        await store.createTask(newTask('mid', { createdAt: '2026-11-26T10:00:00.000Z' }));
        await store.createTask(newTask('mid-later-insert', { createdAt: '2026-11-26T10:00:00.000Z' }));
        await store.transition('old', 'running');
        await store.transition('mid', 'cancelled');
      });

      const ids = async (filter: { status?: TaskStatus; limit: number }): Promise<string[]> =>
        (await store.listTasks(filter)).map((t) => t.taskId);

      it('lists newest first, ties by insertion order (latest first)', async () => {
        expect(await ids({ limit: 10 })).toEqual(['new', 'mid-later-insert', 'mid', 'old']);
      });

      it('filters by status', async () => {
        expect(await ids({ status: 'pending', limit: 10 })).toEqual(['new', 'mid-later-insert']);
        expect(await ids({ status: 'running', limit: 10 })).toEqual(['old']);
        expect(await store.listTasks({ status: 'completed', limit: 10 })).toEqual([]);
      });

      it('honours the limit', async () => {
        expect(await ids({ limit: 2 })).toEqual(['new', 'mid-later-insert']);
        expect(await ids({ status: 'pending', limit: 1 })).toEqual(['new']);
      });

      it('reads a status alone, and counts tasks in every status', async () => {
        expect(await store.taskStatus('old')).toBe('running');
        expect(await store.taskStatus('mid')).toBe('cancelled');
        expect(await store.statusCounts()).toEqual({
          pending: 2,
          running: 1,
          completed: 0,
          partial_failure: 0,
          failed: 0,
          cancelled: 1,
        });
      });

      it('lists the unfinished tasks (running and pending), oldest first', async () => {
        expect((await store.unfinishedTasks()).map((t) => t.taskId)).toEqual([
          'old',
          'mid-later-insert',
          'new',
        ]);
      });
    });

    it('counts every status as 0 in an empty store', async () => {
      expect(await store.statusCounts()).toEqual(Object.fromEntries(ALL_STATUSES.map((s) => [s, 0])));
      expect(await store.unfinishedTasks()).toEqual([]);
    });

    describe('transition', () => {
      beforeEach(async () => {
        await store.createTask(newTask('t1'));
      });

      it('moves pending → running with its patch and events', async () => {
        const { task, events } = await store.transition(
          't1',
          'running',
          { startedAt: '2026-11-26T10:00:01.000Z', deadlineAt: '2026-11-26T10:01:01.000Z' },
          [event('progress_update', { total: 3 }), event('group_completed', { group: 0 })],
        );
        expect(task).toMatchObject({
          status: 'running',
          startedAt: '2026-11-26T10:00:01.000Z',
          deadlineAt: '2026-11-26T10:01:01.000Z',
          completedAt: null,
          lastEventId: 2,
        });
        expect(events).toEqual([
          { id: 1, taskId: 't1', type: 'progress_update', timestamp: T0, data: { total: 3 } },
          { id: 2, taskId: 't1', type: 'group_completed', timestamp: T0, data: { group: 0 } },
        ]);
        expect(await log.after('t1', 0)).toEqual(events);
      });

      it('keeps earlier fields that a later patch leaves out, and stores metrics and the error', async () => {
        await store.transition('t1', 'running', { startedAt: 'S' });
        const metrics = {
          total_duration_seconds: 1.5,
          average_duration_per_node: 0.5,
          parallel_efficiency: 0.9,
          peak_concurrent: 2,
        };
        const { task } = await store.transition('t1', 'partial_failure', {
          completedAt: 'C',
          expiresAt: '2026-11-26T12:00:00.000Z',
          errorMessage: '1 node failed',
          metrics,
        });
        expect(task).toMatchObject({
          startedAt: 'S',
          completedAt: 'C',
          errorMessage: '1 node failed',
          metrics,
        });
        expect(await store.deleteExpired(new Date('2026-11-26T11:59:59.999Z'))).toEqual([]);
        expect(await store.deleteExpired(new Date('2026-11-26T12:00:00.000Z'))).toEqual(['t1']);
      });

      it('clears the error message with null and keeps it when undefined', async () => {
        await store.transition('t1', 'running', { errorMessage: 'transient' });
        expect((await store.findTask('t1'))?.errorMessage).toBe('transient');
        await store.transition('t1', 'completed', {});
        expect((await store.findTask('t1'))?.errorMessage).toBe('transient');
        await store.createTask(newTask('t2'));
        await store.transition('t2', 'running', { errorMessage: 'x' });
        await store.transition('t2', 'failed', { errorMessage: null });
        expect((await store.findTask('t2'))?.errorMessage).toBeNull();
      });

      it('refuses running → running and leaves the task and its log alone', async () => {
        await store.transition('t1', 'running');
        await expect(store.transition('t1', 'running', {}, [event('error')])).rejects.toThrow(
          InvalidStateTransitionError,
        );
        expect((await store.findTask('t1'))?.lastEventId).toBe(0);
        expect(await log.after('t1', 0)).toEqual([]);
      });

      it.each([['completed'], ['partial_failure'], ['failed'], ['cancelled']] as [TaskStatus][])(
        'refuses any move out of the terminal status %s',
        async (terminal) => {
          await store.transition('t1', 'running');
          await store.transition('t1', terminal);
          for (const to of ALL_STATUSES) {
            const err = await rejection(store.transition('t1', to));
            expect(err).toBeInstanceOf(InvalidStateTransitionError);
            expect(err).toMatchObject({ taskId: 't1', from: terminal, to, code: 'invalid-state-transition' });
          }
          expect((await store.findTask('t1'))?.status).toBe(terminal);
        },
      );

      it('refuses an unknown task with TaskNotFoundError', async () => {
        await expect(store.transition('ghost', 'running')).rejects.toThrow(TaskNotFoundError);
      });

      it('lets two concurrent moves out of pending through one at a time: the second is refused', async () => {
        const outcomes = await Promise.allSettled([
          store.transition('t1', 'running', {}, [event('progress_update')]),
          store.transition('t1', 'running', {}, [event('progress_update')]),
        ]);
        expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
        expect(await log.after('t1', 0)).toHaveLength(1);
      });
    });

    describe('events', () => {
      beforeEach(async () => {
        await store.createTask(newTask('t1'));
        await store.createTask(newTask('t2'));
      });

      it('numbers events 1, 2, 3 … per task, independently, following those appended to the log', async () => {
        expect((await log.append('t1', [event('progress_update')]))[0].id).toBe(1);
        expect((await log.append('t2', [event('progress_update')]))[0].id).toBe(1);
        expect((await log.append('t1', [event('group_completed')]))[0].id).toBe(2);
        expect((await store.transition('t1', 'running', {}, [event('resumed')])).events[0].id).toBe(3);
        expect((await store.recordNodeResult('t1', result('a'), [event('task_completed')]))[0].id).toBe(4);
        expect((await log.append('t2', [event('error')]))[0].id).toBe(2);
        expect((await store.findTask('t1'))?.lastEventId).toBe(4);
        expect((await log.after('t1', 0)).map((e) => [e.id, e.type])).toEqual([
          [1, 'progress_update'],
          [2, 'group_completed'],
          [3, 'resumed'],
          [4, 'task_completed'],
        ]);
      });

      it('stores events readable from the log after a given id, in order, up to a limit', async () => {
        await store.transition(
          't1',
          'running',
          {},
          Array.from({ length: 10 }, (_, i) => event('progress_update', { i: i + 1 })),
        );
        expect((await log.after('t1', 7)).map((e) => e.id)).toEqual([8, 9, 10]);
        expect((await log.after('t1', 2, 3)).map((e) => e.id)).toEqual([3, 4, 5]);
        expect(await log.after('t1', 10)).toEqual([]);
        expect(await log.after('t1', 4, 1)).toEqual([
          { id: 5, taskId: 't1', type: 'progress_update', timestamp: T0, data: { i: 5 } },
        ]);
        expect(await log.after('t2', 0)).toEqual([]);
      });

      it('round-trips event data as JSON', async () => {
        const data = { nested: { list: [1, 'two', null] }, unicode: '导数', flag: false };
        const { events } = await store.transition('t1', 'running', {}, [event('error', data)]);
        expect(events[0].data).toEqual(data);
        expect((await log.after('t1', 0))[0].data).toEqual(data);
      });

      it('publishes what transition, recordNodeResult(s) and markResumed stored, before they resolve', async () => {
        const live: TaskEventRecord[] = [];
        const all: TaskEventRecord[] = [];
        const subscriptions = [
          log.live('t1').subscribe((e) => live.push(e)),
          log.all().subscribe((e) => all.push(e)),
        ];
        const stored: TaskEventRecord[] = [];
        stored.push(...(await store.transition('t1', 'running', {}, [event('progress_update')])).events);
        expect(live).toEqual(stored);
        stored.push(...(await store.recordNodeResult('t1', result('a'), [event('task_completed')])));
        stored.push(...(await store.recordNodeResults('t1', [result('b')], [event('task_completed')])));
        expect(live).toEqual(stored);
        stored.push(await store.markResumed('t1', event('resumed')));
        expect(live).toEqual(stored);
        expect(live.map((e) => e.id)).toEqual([1, 2, 3, 4]);
        await store.transition('t2', 'running', {}, [event('progress_update')]);
        expect(live).toHaveLength(4);
        expect(all.map((e) => [e.taskId, e.id])).toEqual([
          ['t1', 1],
          ['t1', 2],
          ['t1', 3],
          ['t1', 4],
          ['t2', 1],
        ]);
        subscriptions.forEach((s) => s.unsubscribe());
      });

      it('publishes nothing for a refused operation', async () => {
        const seen: TaskEventRecord[] = [];
        const subscription = log.all().subscribe((e) => seen.push(e));
        await expect(store.transition('t1', 'completed', {}, [event('error')])).rejects.toThrow(
          InvalidStateTransitionError,
        );
        await expect(store.markResumed('ghost', event('resumed'))).rejects.toThrow(TaskNotFoundError);
        expect(seen).toEqual([]);
        subscription.unsubscribe();
      });
    });

    describe('node results', () => {
      beforeEach(async () => {
        await store.createTask(newTask('t1'));
      });

      it('records a result together with its event', async () => {
        const [stored] = await store.recordNodeResult('t1', result('a'), [
          event('task_completed', { node_id: 'a' }),
        ]);
        expect(stored).toEqual({
          id: 1,
          taskId: 't1',
          type: 'task_completed',
          timestamp: T0,
          data: { node_id: 'a' },
        });
        expect(await store.nodeResults('t1')).toEqual([result('a')]);
      });

      it('round-trips what the size caps left out, and replaces it on a replay', async () => {
        const truncated = { inputChars: 4_980_736, canvasChars: 12 };
        await store.recordNodeResult('t1', result('a', { truncated }), [event('task_completed')]);
        expect(await store.nodeResults('t1')).toEqual([result('a', { truncated })]);
        await store.recordNodeResult('t1', result('a'), [event('task_completed')]);
        expect((await store.nodeResults('t1'))[0]).not.toHaveProperty('truncated');
      });

      it('round-trips that a result came from the result cache, and replaces it on a replay', async () => {
        await store.recordNodeResult('t1', result('a', { cached: true, attempts: 0 }), [
          event('task_completed'),
        ]);
        expect(await store.nodeResults('t1')).toEqual([result('a', { cached: true, attempts: 0 })]);
        expect((await store.nodeResultsPage('t1', 0, 'completed', 0, 10))[0].cached).toBe(true);
        await store.recordNodeResult('t1', result('a'), [event('task_completed')]);
        expect((await store.nodeResults('t1'))[0]).not.toHaveProperty('cached');
      });

      it('round-trips how a node of an auto group was routed, and replaces it on a replay', async () => {
        const routing = { agentType: 'memory-anchor', confidence: 0.8, routedBy: 'model' as const };
        await store.recordNodeResult('t1', result('a', { routing }), [event('task_completed')]);
        expect(await store.nodeResults('t1')).toEqual([result('a', { routing })]);
        await store.recordNodeResult('t1', result('a'), [event('task_completed')]);
        expect((await store.nodeResults('t1'))[0]).not.toHaveProperty('routing');
      });

      it('is atomic: when the event cannot be stored, neither is the result nor the event counter', async () => {
        await log.append('t1', [event('progress_update')]);
        const unserializable = { big: BigInt(1) } as unknown as Record<string, unknown>;
        await expect(
          store.recordNodeResult('t1', result('a'), [event('task_completed', unserializable)]),
        ).rejects.toThrow(TypeError);
        expect(await store.nodeResults('t1')).toEqual([]);
        expect((await store.findTask('t1'))?.lastEventId).toBe(1);
        expect((await log.append('t1', [event('progress_update')]))[0].id).toBe(2);
      });

      it('is atomic for a transition too: a refused event leaves the status as it was', async () => {
        const unserializable = { big: BigInt(1) } as unknown as Record<string, unknown>;
        await expect(store.transition('t1', 'running', {}, [event('error', unserializable)])).rejects.toThrow(
          TypeError,
        );
        expect(await store.taskStatus('t1')).toBe('pending');
        expect(await log.after('t1', 0)).toEqual([]);
      });

      it('refuses an event outside the task-event vocabulary (TypeError), storing nothing', async () => {
        await expect(
          store.recordNodeResult('t1', result('a'), [event('task_completed'), event('node_done')]),
        ).rejects.toThrow(TypeError);
        await expect(store.transition('t1', 'running', {}, [event('started')])).rejects.toThrow(TypeError);
        expect(await store.nodeResults('t1')).toEqual([]);
        expect(await store.findTask('t1')).toMatchObject({ status: 'pending', lastEventId: 0 });
        expect(await log.after('t1', 0)).toEqual([]);
      });

      it('omits absent optional fields', async () => {
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
        await store.recordNodeResult('t1', failed, [event('task_failed')]);
        expect(await store.nodeResults('t1')).toEqual([failed]);
        expect(Object.keys((await store.nodeResults('t1'))[0])).not.toContain('filePath');
      });

      it('replaces a replayed result for the same group and node', async () => {
        await store.recordNodeResult(
          't1',
          result('a', { outcome: 'failed', errorMessage: 'x', errorType: 'AGENT_ERROR' }),
          [event('task_failed')],
        );
        await store.recordNodeResult('t1', result('a'), [event('task_completed')]);
        expect(await store.nodeResults('t1')).toEqual([result('a')]);
      });

      it('keeps the same node in two groups apart', async () => {
        await store.recordNodeResults('t1', [result('a'), result('a', { groupIndex: 1 })], []);
        expect((await store.nodeResults('t1')).map((r) => [r.groupIndex, r.nodeId])).toEqual([
          [0, 'a'],
          [1, 'a'],
        ]);
      });

      it('records several results without events', async () => {
        await store.recordNodeResults(
          't1',
          [
            result('a', { outcome: 'skipped', errorType: 'CANCELLED' }),
            result('b', { outcome: 'skipped', errorType: 'CANCELLED' }),
          ],
          [],
        );
        expect(await store.nodeResults('t1')).toHaveLength(2);
        expect((await store.findTask('t1'))?.lastEventId).toBe(0);
      });

      it('orders results by group, then finish time, then node id', async () => {
        await store.recordNodeResults(
          't1',
          [
            result('z', { groupIndex: 1, finishedAt: '1' }),
            result('b', { finishedAt: '2' }),
            result('a', { finishedAt: '2' }),
            result('c', { finishedAt: '1' }),
          ],
          [],
        );
        expect((await store.nodeResults('t1')).map((r) => r.nodeId)).toEqual(['c', 'a', 'b', 'z']);
      });

      it('counts completed, failed and skipped nodes', async () => {
        expect(await store.nodeCounts('t1')).toEqual({ completed: 0, failed: 0, skipped: 0 });
        await store.recordNodeResults(
          't1',
          [
            result('a'),
            result('b'),
            result('c', { outcome: 'failed' }),
            result('d', { outcome: 'skipped', groupIndex: 1 }),
          ],
          [],
        );
        expect(await store.nodeCounts('t1')).toEqual({ completed: 2, failed: 1, skipped: 1 });
      });

      it('sums counts, tokens and durations per group and outcome', async () => {
        expect(await store.resultSummary('t1')).toEqual([]);
        await store.recordNodeResults(
          't1',
          [
            result('a', { inputTokens: 1, outputTokens: 2, durationMs: 10 }),
            result('b', { inputTokens: 3, outputTokens: 4, durationMs: 20 }),
            result('c', { outcome: 'failed', durationMs: undefined, inputTokens: 5, outputTokens: 0 }),
            result('d', {
              groupIndex: 1,
              outcome: 'skipped',
              durationMs: undefined,
              inputTokens: 0,
              outputTokens: 0,
            }),
          ],
          [],
        );
        const summary = await store.resultSummary('t1');
        expect(summary).toHaveLength(3);
        expect(summary).toEqual(
          expect.arrayContaining([
            {
              groupIndex: 0,
              outcome: 'completed',
              count: 2,
              inputTokens: 4,
              outputTokens: 6,
              sumDurationMs: 30,
            },
            { groupIndex: 0, outcome: 'failed', count: 1, inputTokens: 5, outputTokens: 0, sumDurationMs: 0 },
            {
              groupIndex: 1,
              outcome: 'skipped',
              count: 1,
              inputTokens: 0,
              outputTokens: 0,
              sumDurationMs: 0,
            },
          ]),
        );
        expect(await store.resultSummary('ghost')).toEqual([]);
      });

      it('pages one group’s results of one outcome in the order they finished', async () => {
        await store.recordNodeResults(
          't1',
          [
            result('n3', { finishedAt: '3' }),
            result('n1', { finishedAt: '1' }),
            result('n2', { finishedAt: '2' }),
            result('n4', { finishedAt: '4' }),
            result('f1', { finishedAt: '0', outcome: 'failed' }),
            result('other', { finishedAt: '0', groupIndex: 1 }),
          ],
          [],
        );
        const page = async (offset: number, limit: number): Promise<string[]> =>
          (await store.nodeResultsPage('t1', 0, 'completed', offset, limit)).map((r) => r.nodeId);
        expect(await page(0, 10)).toEqual(['n1', 'n2', 'n3', 'n4']);
        expect(await page(1, 2)).toEqual(['n2', 'n3']);
        expect(await page(3, 5)).toEqual(['n4']);
        expect(await page(4, 5)).toEqual([]);
        expect(await page(0, 0)).toEqual([]);
        expect(await store.nodeResultsPage('t1', 0, 'failed', 0, 10)).toEqual([
          result('f1', { finishedAt: '0', outcome: 'failed' }),
        ]);
        expect((await store.nodeResultsPage('t1', 1, 'completed', 0, 10)).map((r) => r.nodeId)).toEqual([
          'other',
        ]);
      });

      it('refuses a result for an unknown task', async () => {
        expect(await rejection(store.recordNodeResults('ghost', [result('a')], []))).toBeDefined();
        expect(await store.nodeResults('ghost')).toEqual([]);
      });
    });

    describe('resumption and peak', () => {
      beforeEach(async () => {
        await store.createTask(newTask('t1'));
        await store.transition('t1', 'running', {}, [event('progress_update')]);
      });

      it('counts a resumption together with its event', async () => {
        const stored = await store.markResumed('t1', event('resumed', { resume_count: 1 }));
        expect(stored).toEqual({
          id: 2,
          taskId: 't1',
          type: 'resumed',
          timestamp: T0,
          data: { resume_count: 1 },
        });
        await store.markResumed('t1', event('resumed', { resume_count: 2 }));
        expect(await store.findTask('t1')).toMatchObject({ resumeCount: 2, lastEventId: 3 });
        expect((await log.after('t1', 1)).map((e) => e.type)).toEqual(['resumed', 'resumed']);
      });

      it('refuses to resume an unknown task', async () => {
        await expect(store.markResumed('ghost', event('resumed'))).rejects.toThrow(TaskNotFoundError);
      });

      it('raises the recorded peak, never lowers it', async () => {
        await store.recordPeak('t1', 3);
        await store.recordPeak('t1', 2);
        expect((await store.findTask('t1'))?.peakConcurrent).toBe(3);
        await store.recordPeak('t1', 5);
        expect((await store.findTask('t1'))?.peakConcurrent).toBe(5);
        await expect(store.recordPeak('ghost', 1)).resolves.toBeUndefined();
      });
    });

    describe('deleteExpired', () => {
      const finish = async (taskId: string, expiresAt: string): Promise<void> => {
        await store.createTask(newTask(taskId));
        await store.transition(taskId, 'running', {}, [event('progress_update')]);
        await store.recordNodeResult(taskId, result('a'), [event('task_completed')]);
        await store.transition(taskId, 'completed', { completedAt: expiresAt, expiresAt }, [
          event('session_completed'),
        ]);
      };

      it('removes tasks whose retention ended, with their results, and returns their ids', async () => {
        await finish('expired-1', '2026-11-26T10:00:00.000Z');
        await finish('expired-2', '2026-11-26T10:30:00.000Z');
        await finish('kept', '2026-11-26T12:00:00.000Z');
        await store.createTask(newTask('running'));
        await store.transition('running', 'running');

        const removed = await store.deleteExpired(new Date('2026-11-26T10:30:00.000Z'));
        expect(removed.sort()).toEqual(['expired-1', 'expired-2']);
        for (const id of removed) {
          expect(await store.findTask(id)).toBeUndefined();
          expect(await store.nodeResults(id)).toEqual([]);
        }
        expect(await store.findTask('kept')).toBeDefined();
        expect(await store.nodeResults('kept')).toHaveLength(1);
        expect(await log.after('kept', 0)).toHaveLength(3);
        expect((await store.findTask('running'))?.status).toBe('running');
      });

      it('removes nothing when nothing expired', async () => {
        await finish('kept', '2026-11-26T12:00:00.000Z');
        expect(await store.deleteExpired(new Date('2026-11-26T11:59:59.999Z'))).toEqual([]);
        expect(await store.findTask('kept')).toBeDefined();
      });
    });

    describe('requestCancel', () => {
      it('records a cancel of a pending or running task in one step, keeping the first mode', async () => {
        await store.createTask(newTask('p'));
        expect(await store.requestCancel('p', 'abort')).toMatchObject({
          outcome: 'requested',
          task: { taskId: 'p', status: 'pending', cancelRequested: 'abort' },
        });
        await store.createTask(newTask('r'));
        await store.transition('r', 'running');
        expect(await store.requestCancel('r', 'graceful')).toMatchObject({
          outcome: 'requested',
          task: { status: 'running', cancelRequested: 'graceful' },
        });
        expect(await store.requestCancel('r', 'abort')).toMatchObject({
          task: { cancelRequested: 'graceful' },
        });
        expect((await store.findTask('r'))?.cancelRequested).toBe('graceful');
      });

      it('keeps the first of two concurrent requests', async () => {
        await store.createTask(newTask('r'));
        const [first, second] = await Promise.all([
          store.requestCancel('r', 'abort'),
          store.requestCancel('r', 'graceful'),
        ]);
        expect(first).toMatchObject({ outcome: 'requested', task: { cancelRequested: 'abort' } });
        expect(second).toMatchObject({ outcome: 'requested', task: { cancelRequested: 'abort' } });
        expect((await store.findTask('r'))?.cancelRequested).toBe('abort');
      });

      it('leaves a finished task as it is, and says when there is no such task', async () => {
        await store.createTask(newTask('done'));
        await store.transition('done', 'running');
        await store.transition('done', 'completed');
        expect(await store.requestCancel('done', 'abort')).toMatchObject({
          outcome: 'finished',
          task: { status: 'completed', cancelRequested: null },
        });
        expect((await store.findTask('done'))?.cancelRequested).toBeNull();
        expect(await store.requestCancel('nope', 'graceful')).toEqual({ outcome: 'not-found' });
      });
    });

    describe('agent durations', () => {
      it('knows none at first, then keeps the last saved estimate of each agent type', async () => {
        expect(await store.agentDurations()).toEqual([]);
        expect(
          await store.saveAgentDurations([
            { agentType: 'scoring-agent', meanMs: 40, samples: 1 },
            { agentType: 'hint-generation', meanMs: 10.5, samples: 3 },
          ]),
        ).toBe(true);
        await store.saveAgentDurations([{ agentType: 'scoring-agent', meanMs: 44, samples: 2 }]);
        const byType = (await store.agentDurations()).sort((a, b) => a.agentType.localeCompare(b.agentType));
        expect(byType).toEqual([
          { agentType: 'hint-generation', meanMs: 10.5, samples: 3 },
          { agentType: 'scoring-agent', meanMs: 44, samples: 2 },
        ]);
      });

      it('keeps the learned output tokens, also when a later save has none', async () => {
        await store.saveAgentDurations([
          {
            agentType: 'oral-explanation',
            meanMs: 900,
            samples: 2,
            meanOutputTokens: 512.5,
            outputSamples: 2,
          },
        ]);
        await store.saveAgentDurations([{ agentType: 'oral-explanation', meanMs: 950, samples: 3 }]);
        expect(await store.agentDurations()).toEqual([
          {
            agentType: 'oral-explanation',
            meanMs: 950,
            samples: 3,
            meanOutputTokens: 512.5,
            outputSamples: 2,
          },
        ]);
      });
    });

    describe('budget', () => {
      it("keeps a task's budget (null without one)", async () => {
        await store.createTask(newTask('with', { budgetUsd: 0.25 }));
        await store.createTask(newTask('zero', { budgetUsd: 0 }));
        await store.createTask(newTask('without'));
        expect((await store.findTask('with'))?.budgetUsd).toBe(0.25);
        expect((await store.findTask('zero'))?.budgetUsd).toBe(0);
        expect((await store.findTask('without'))?.budgetUsd).toBeNull();
      });
    });
  });
}
