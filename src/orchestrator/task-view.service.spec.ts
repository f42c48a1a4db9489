import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import {
  InMemoryEventLog,
  InMemoryTaskStore,
  InvalidTaskIdError,
  TaskNotFoundError,
  SqliteEventLog,
  SqliteTaskStore,
  type NodeResultRecord,
  InMemoryBudgetLedger,
} from '../session';
import type { BatchOrchestrator } from './batch-orchestrator.service';
import { InProcessDispatcher } from './dispatch/in-process-dispatcher';
import { DEFAULT_PAGE_LIMIT, FULL_LISTING_MAX_NODES, TaskViewService } from './task-view.service';

describe('TaskViewService.status on a large task (real SQLite file)', () => {
  let dir: string;
  let db: SqliteDatabase;
  let store: SqliteTaskStore;
  let view: TaskViewService;
  const taskId = randomUUID();
  const nodes = FULL_LISTING_MAX_NODES + 1_000;
  let bus: SqliteEventLog;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'task-view-'));
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    bus = new SqliteEventLog(db);
    store = new SqliteTaskStore(db, bus);
    const nodeIds = Array.from({ length: nodes }, (_, i) => `n${i}`);
    await store.createTask({
      taskId,
      canvasPath: 'big.canvas',
      maxConcurrent: 12,
      timeoutMs: 600_000,
      createdAt: new Date().toISOString(),
      groups: [
        { groupId: 'a', agentType: 'oral-explanation', nodeIds: nodeIds.slice(0, 6_000) },
        { groupId: 'b', agentType: 'memory-anchor', nodeIds: nodeIds.slice(6_000) },
      ],
    });
    const results: NodeResultRecord[] = nodeIds.map((nodeId, i) => ({
      groupIndex: i < 6_000 ? 0 : 1,
      nodeId,
      outcome: i % 100 === 0 ? 'failed' : 'completed',
      ...(i % 100 === 0
        ? { errorType: 'AGENT_ERROR' as const, errorMessage: 'boom' }
        : { filePath: `out/${nodeId}.md`, fileSize: 10 }),
      durationMs: 2,
      inputTokens: 3,
      outputTokens: 4,
      finishedAt: new Date(1_700_000_000_000 + i).toISOString(),
    }));
    await store.recordNodeResults(taskId, results, []);
    const orchestrator = { live: () => undefined } as unknown as BatchOrchestrator;
    view = new TaskViewService(
      store,
      orchestrator,
      new InProcessDispatcher({ capacity: 12 }),
      resolveOptions({ vaultRoot: dir, dataDir: dir }),
      bus,
      new InMemoryBudgetLedger(),
    );
  });
  afterAll(() => {
    bus.close();
    db.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the first 1,000 results and errors per group by default, with totals over the whole task', async () => {
    const s = await view.status(taskId);
    expect(s.total_nodes).toBe(nodes);
    expect([s.completed_nodes, s.failed_nodes]).toEqual([nodes - 110, 110]);
    expect(s.usage).toEqual({ input_tokens: 3 * nodes, output_tokens: 4 * nodes });
    expect(s.groups.map((g) => g.results.length)).toEqual([DEFAULT_PAGE_LIMIT, DEFAULT_PAGE_LIMIT]);
    expect(s.groups.map((g) => g.errors.length)).toEqual([60, 50]);
    expect(s.groups[1].results[0].node_id).toBe('n6001'); // in the order they finished
    expect(s.results_page).toEqual({ offset: 0, limit: DEFAULT_PAGE_LIMIT });
    expect(s.performance_metrics.average_duration_per_node).toBeCloseTo(0.002);
    // beyond a full listing, the groups' node ids are left out; not running here: no `running`
    expect(s.groups.map((g) => [g.node_ids, g.running])).toEqual([
      [undefined, undefined],
      [undefined, undefined],
    ]);
  });

  it('pages past the end to empty lists, and lists everything when asked to', async () => {
    expect((await view.status(taskId, { offset: 6_000 })).groups.map((g) => g.results.length)).toEqual([
      0, 0,
    ]);
    const whole = await view.status(taskId, { limit: 10_000 });
    expect(whole.groups.map((g) => g.results.length)).toEqual([5_940, 4_950]);
  });

  it('answers a repeated request from the status built a moment ago, until an event other than a node outcome', async () => {
    const first = await view.status(taskId, { limit: 5 });
    expect(await view.status(taskId, { limit: 5 })).toBe(first);
    expect(await view.status(taskId, { limit: 6 })).not.toBe(first); // another page is another view
    bus.publish([{ id: 1, taskId, type: 'task_completed', timestamp: '', data: {} }]);
    expect(await view.status(taskId, { limit: 5 })).toBe(first);
    bus.publish([{ id: 2, taskId, type: 'cancelled', timestamp: '', data: {} }]);
    expect(await view.status(taskId, { limit: 5 })).not.toBe(first);
  });
});

describe('TaskViewService on the in-memory store', () => {
  const orchestrator = { live: () => undefined } as unknown as BatchOrchestrator;
  const options = resolveOptions({ vaultRoot: tmpdir(), dataDir: tmpdir() });
  let events: InMemoryEventLog;
  let store: InMemoryTaskStore;
  let view: TaskViewService;
  const create = (taskId: string, createdAt: string) =>
    store.createTask({
      taskId,
      canvasPath: 'a.canvas',
      maxConcurrent: 2,
      timeoutMs: 60_000,
      createdAt,
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['a', 'b'] }],
    });

  beforeEach(() => {
    events = new InMemoryEventLog();
    store = new InMemoryTaskStore(events);
    view = new TaskViewService(
      store,
      orchestrator,
      new InProcessDispatcher({ capacity: 2 }),
      options,
      events,
      new InMemoryBudgetLedger(),
    );
  });

  it('finds a task, refusing a malformed id (400) and an unknown one (404)', async () => {
    const id = randomUUID();
    await create(id, '2026-01-01T00:00:00.000Z');
    expect(await view.find(id)).toMatchObject({ taskId: id, status: 'pending' });
    await expect(view.find('not-a-uuid')).rejects.toThrow(InvalidTaskIdError);
    await expect(view.find(randomUUID())).rejects.toThrow(TaskNotFoundError);
  });

  it('does not reuse a failed status: a task created after a 404 is answered', async () => {
    const id = randomUUID();
    await expect(view.status(id)).rejects.toThrow(TaskNotFoundError);
    await create(id, '2026-01-01T00:00:00.000Z');
    expect((await view.status(id)).task_id).toBe(id);
    expect((await view.statusJson(id)).body.toString('utf8')).toContain(`"task_id":"${id}"`);
  });

  it("lists each group's node ids, and while it runs here its running nodes with when they started", async () => {
    const id = randomUUID();
    await create(id, '2026-01-01T00:00:00.000Z');
    expect((await view.status(id)).groups[0]).toMatchObject({ node_ids: ['a', 'b'] });
    expect((await view.status(id, { limit: 0 })).groups[0].node_ids).toBeUndefined(); // a summary: counts only
    expect((await view.status(id)).groups[0].running).toBeUndefined();
    const started = Date.parse('2026-01-01T00:00:01.000Z');
    const live = {
      live: () => ({
        runningNodes: 1,
        peakConcurrent: 1,
        groupsStarted: [1],
        waitingForSlot: 0,
        groupsRunning: [[{ nodeId: 'b', startedAt: started }]],
      }),
      schedulerState: () => ({ policy: 'fair', limit: 2, capacity: 2, inUse: 1, waiting: 0, estimates: {} }),
    };
    const running = new TaskViewService(
      store,
      live as unknown as BatchOrchestrator,
      new InProcessDispatcher({ capacity: 2 }),
      options,
      events,
      new InMemoryBudgetLedger(),
    );
    expect((await running.status(id)).groups[0].running).toEqual([
      { node_id: 'b', started_at: '2026-01-01T00:00:01.000Z' },
    ]);
  });

  it('lists tasks newest first, with their node counts', async () => {
    const [older, newer] = [randomUUID(), randomUUID()];
    await create(older, '2026-01-01T00:00:00.000Z');
    await create(newer, '2026-01-02T00:00:00.000Z');
    await store.transition(newer, 'running');
    await store.recordNodeResult(
      newer,
      { groupIndex: 0, nodeId: 'a', outcome: 'completed', inputTokens: 1, outputTokens: 1, finishedAt: 'F' },
      [],
    );
    const listed = await view.list({});
    expect(listed.map((t) => [t.task_id, t.status, t.completed_nodes, t.progress_percent])).toEqual([
      [newer, 'running', 1, 50],
      [older, 'pending', 0, 0],
    ]);
    expect(await view.list({ status: 'pending', limit: 1 })).toHaveLength(1);
  });
});
