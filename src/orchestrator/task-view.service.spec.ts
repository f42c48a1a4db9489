import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { SqliteTaskStore, type NodeResultRecord } from '../session';
import type { BatchOrchestrator } from './batch-orchestrator.service';
import { GlobalSlots } from './concurrency/slot-limiter';
import { TaskEventBus } from './task-event-bus';
import { DEFAULT_PAGE_LIMIT, FULL_LISTING_MAX_NODES, TaskViewService } from './task-view.service';

describe('TaskViewService.status on a large task (real SQLite file)', () => {
  let dir: string;
  let db: SqliteDatabase;
  let store: SqliteTaskStore;
  let view: TaskViewService;
  const taskId = randomUUID();
  const nodes = FULL_LISTING_MAX_NODES + 1_000;
  const bus = new TaskEventBus();

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'task-view-'));
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    store = new SqliteTaskStore(db);
    const nodeIds = Array.from({ length: nodes }, (_, i) => `n${i}`);
    store.createTask({
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
    store.recordNodeResults(taskId, results, []);
    const orchestrator = { live: () => undefined } as unknown as BatchOrchestrator;
    view = new TaskViewService(
      store,
      orchestrator,
      new GlobalSlots(12),
      resolveOptions({ vaultRoot: dir, dataDir: dir }),
      bus,
    );
  });
  afterAll(() => {
    db.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the first 1,000 results and errors per group by default, with totals over the whole task', () => {
    const s = view.status(taskId);
    expect(s.total_nodes).toBe(nodes);
    expect([s.completed_nodes, s.failed_nodes]).toEqual([nodes - 110, 110]);
    expect(s.usage).toEqual({ input_tokens: 3 * nodes, output_tokens: 4 * nodes });
    expect(s.groups.map((g) => g.results.length)).toEqual([DEFAULT_PAGE_LIMIT, DEFAULT_PAGE_LIMIT]);
    expect(s.groups.map((g) => g.errors.length)).toEqual([60, 50]);
    expect(s.groups[1].results[0].node_id).toBe('n6001'); // in the order they finished
    expect(s.results_page).toEqual({ offset: 0, limit: DEFAULT_PAGE_LIMIT });
    expect(s.performance_metrics.average_duration_per_node).toBeCloseTo(0.002);
  });

  it('pages past the end to empty lists, and lists everything when asked to', () => {
    expect(view.status(taskId, { offset: 6_000 }).groups.map((g) => g.results.length)).toEqual([0, 0]);
    const whole = view.status(taskId, { limit: 10_000 });
    expect(whole.groups.map((g) => g.results.length)).toEqual([5_940, 4_950]);
  });

  it('answers a repeated request from the status built a moment ago, until an event other than a node outcome', () => {
    const first = view.status(taskId, { limit: 5 });
    expect(view.status(taskId, { limit: 5 })).toBe(first);
    expect(view.status(taskId, { limit: 6 })).not.toBe(first); // another page is another view
    bus.publish([{ id: 1, taskId, type: 'task_completed', timestamp: '', data: {} }]);
    expect(view.status(taskId, { limit: 5 })).toBe(first);
    bus.publish([{ id: 2, taskId, type: 'cancelled', timestamp: '', data: {} }]);
    expect(view.status(taskId, { limit: 5 })).not.toBe(first);
  });
});
