import { EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import type { INestApplicationContext } from '@nestjs/common';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { firstValueFrom, toArray } from 'rxjs';
import { AgentRunError, AgentRunner, type AgentRunRequest, type AgentRunResult } from '../agent';
import { CanvasWriteError, CanvasService } from '../canvas';
import { MemoryOutbox } from '../memory';
import { EventLog, TaskStore } from '../session';
import { BatchOrchestrator } from './batch-orchestrator.service';
import { OrchestratorModule } from './orchestrator.module';
import { TaskEventStream, type SseMessage } from './task-event-stream';
import { TaskViewService } from './task-view.service';

/** A runner whose calls the test settles by hand, or by a scripted behaviour per node id. */
class ScriptedRunner extends AgentRunner {
  readonly pending = new Map<
    string,
    { resolve: (r: AgentRunResult) => void; reject: (e: unknown) => void; req: AgentRunRequest }
  >();
  script: Record<string, 'throw-string' | 'rate-limited' | 'ignore-signal' | 'ok'> = {};
  readonly seen: string[] = [];

  run(req: AgentRunRequest): Promise<AgentRunResult> {
    this.seen.push(req.node.nodeId);
    const mode = this.script[req.node.nodeId];
    if (mode === 'throw-string') return Promise.reject('plain string failure'); // eslint-disable-line @typescript-eslint/prefer-promise-reject-errors
    if (mode === 'rate-limited')
      return Promise.reject(new AgentRunError('429 from provider', 'RATE_LIMITED'));
    if (mode === 'ok')
      return Promise.resolve({ markdown: 'done', usage: { inputTokens: 1, outputTokens: 2 } });
    return new Promise((resolve, reject) => {
      this.pending.set(req.node.nodeId, { resolve, reject, req });
      if (mode !== 'ignore-signal')
        req.signal.addEventListener('abort', () => reject(req.signal.reason as Error));
    });
  }

  finish(nodeId: string): void {
    this.pending
      .get(nodeId)!
      .resolve({ markdown: `result for ${nodeId}`, usage: { inputTokens: 0, outputTokens: 0 } });
    this.pending.delete(nodeId);
  }
}

/** Waits until `condition` holds, polling on setImmediate (never faked here, so it works under fake timers too). */
async function until(condition: () => boolean | Promise<boolean>, maxTurns = 500_000): Promise<void> {
  for (let turn = 0; !(await condition()); turn++) {
    if (turn > maxTurns) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

describe('BatchOrchestrator (unit, real SQLite and temp vault, scripted runner)', () => {
  let root: string;
  let app: INestApplicationContext;
  let runner: ScriptedRunner;
  let orchestrator: BatchOrchestrator;
  let store: TaskStore;
  let log: EventLog;

  async function boot(
    extra: Record<string, unknown> = {},
    reuseRoot = false,
    script: ScriptedRunner['script'] = {},
  ): Promise<void> {
    const vault = path.join(
      reuseRoot ? root : (root = mkdtempSync(path.join(tmpdir(), 'orchestrator-spec-'))),
      'vault',
    );
    if (!reuseRoot) mkdirSync(vault);
    const nodes = Array.from({ length: 6 }, (_, i) => ({
      id: `n${i}`,
      type: 'text',
      text: `Node ${i} text`,
      x: i * 300,
      y: 0,
      width: 200,
      height: 100,
    }));
    if (!reuseRoot)
      writeFileSync(path.join(vault, 'c.canvas'), JSON.stringify({ nodes, edges: [] }, null, '\t'));
    runner = new ScriptedRunner();
    runner.script = script;
    const moduleRef = await Test.createTestingModule({
      imports: [
        EventEmitterModule.forRoot(),
        OrchestratorModule.forRoot({
          vaultRoot: vault,
          dataDir: path.join(root, 'data'),
          agentRunner: runner,
          ...extra,
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
    orchestrator = app.get(BatchOrchestrator);
    store = app.get(TaskStore);
    log = app.get(EventLog);
  }

  afterEach(async () => {
    jest.useRealTimers();
    await app?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** A new process on the same vault and data dir. */
  async function reopen(script: ScriptedRunner['script'] = {}): Promise<{ store: TaskStore }> {
    await boot({}, true, script);
    return { store };
  }

  const submit = (nodeIds = ['n0'], extra: Record<string, unknown> = {}) =>
    orchestrator.submit({
      canvasPath: 'c.canvas',
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds }],
      ...extra,
    });
  /** The task's stored events, once the writes under way have settled (one turn of the event loop). */
  const eventsOf = async (taskId: string) => {
    await new Promise((r) => setImmediate(r));
    return log.after(taskId, 0);
  };
  const types = async (taskId: string) => (await eventsOf(taskId)).map((e) => e.type);

  it('sends progress_update every 500 ms while running, and none after the end (fake timers)', async () => {
    await boot();
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const { task } = await submit();
    await until(() => runner.pending.has('n0'));
    const progressCount = async () =>
      (await types(task.taskId)).filter((t) => t === 'progress_update').length;
    expect(await progressCount()).toBe(1); // immediately at start
    jest.advanceTimersByTime(499);
    expect(await progressCount()).toBe(1);
    jest.advanceTimersByTime(1);
    expect(await progressCount()).toBe(2);
    jest.advanceTimersByTime(2000);
    expect(await progressCount()).toBe(6);
    runner.finish('n0');
    await orchestrator.waitForCompletion(task.taskId);
    const after = await progressCount();
    jest.advanceTimersByTime(5000);
    expect(await progressCount()).toBe(after);
    expect((await types(task.taskId)).at(-1)).toBe('session_completed');
  });

  it('sends a keep-alive comment on an idle stream every keepAliveIntervalMs', async () => {
    await boot({ keepAliveIntervalMs: 15_000, progressIntervalMs: 60_000 });
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const { task } = await submit();
    await until(() => runner.pending.has('n0'));
    const received: SseMessage[] = [];
    const sub = app
      .get(TaskEventStream)
      .open(task.taskId, 0)
      .subscribe((m) => received.push(m));
    const comments = () => received.filter((m) => 'comment' in m && m.comment === 'keep-alive').length;
    jest.advanceTimersByTime(14_999);
    expect(comments()).toBe(0);
    jest.advanceTimersByTime(1);
    expect(comments()).toBe(1);
    jest.advanceTimersByTime(30_000);
    expect(comments()).toBe(3);
    sub.unsubscribe();
    runner.finish('n0');
    await orchestrator.waitForCompletion(task.taskId);
  });

  it('starts at most twice its cap of nodes whose result files are not written yet (fast agents, slow disk)', async () => {
    await boot({}, false, { n0: 'ok', n1: 'ok', n2: 'ok', n3: 'ok', n4: 'ok', n5: 'ok' });
    const canvas = app.get(CanvasService);
    const real = canvas.writeResultFile.bind(canvas);
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    jest.spyOn(canvas, 'writeResultFile').mockImplementation(async (r) => {
      await gate; // the result file "takes long" to write
      return real(r);
    });
    const { task } = await submit(['n0', 'n1', 'n2', 'n3', 'n4', 'n5'], { maxConcurrent: 1 });
    try {
      await until(() => runner.seen.length >= 2);
      for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      expect(runner.seen).toEqual(['n0', 'n1']); // their agents are done, their files not yet written
    } finally {
      openGate();
    }
    const final = await orchestrator.waitForCompletion(task.taskId);
    expect(final.status).toBe('completed');
    expect(runner.seen).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
  });

  it('marks only the batch’s last result as last (its canvas write skips the pacing pause)', async () => {
    await boot({ globalMaxConcurrent: 2 });
    const writes = jest.spyOn(app.get(CanvasService), 'placeResult');
    const { task } = await submit(['n0', 'n1', 'n2', 'n3', 'n4']);
    for (const [i, id] of ['n0', 'n1', 'n2', 'n3'].entries()) {
      await until(() => runner.pending.has(id));
      runner.finish(id);
      // its result reaches the canvas (after its file is written) before the next agent ends
      await until(() => writes.mock.calls.length > i);
    }
    await until(() => runner.pending.has('n4'));
    runner.finish('n4');
    await orchestrator.waitForCompletion(task.taskId);
    expect(writes.mock.calls.map(([r]) => [r.sourceNodeId, r.last])).toEqual([
      ['n0', false],
      ['n1', false],
      ['n2', false],
      ['n3', false], // n4 still running
      ['n4', true],
    ]);
  });

  it('classifies failures: non-Error throws, typed runner errors, node timeouts, runners that ignore the signal', async () => {
    await boot({ agentTimeoutMs: 50 });
    runner.script = { n0: 'throw-string', n1: 'rate-limited', n2: 'ignore-signal', n3: 'ok' };
    const { task } = await submit(['n0', 'n1', 'n2', 'n3', 'n4']);
    const final = await orchestrator.waitForCompletion(task.taskId);
    expect(final.status).toBe('partial_failure');
    const errors = Object.fromEntries(
      (await app.get(TaskViewService).status(task.taskId)).groups[0].errors.map((e) => [e.node_id, e]),
    );
    expect(errors.n0).toMatchObject({ error_type: 'AGENT_ERROR', error_message: 'plain string failure' });
    expect(errors.n1).toMatchObject({ error_type: 'RATE_LIMITED', error_message: '429 from provider' });
    expect(errors.n2.error_type).toBe('AGENT_TIMEOUT');
    expect(errors.n4.error_type).toBe('AGENT_TIMEOUT');
    expect(final.metrics?.peak_concurrent).toBeGreaterThanOrEqual(1);
  });

  it('fails a node with CANVAS_WRITE_FAILED when its result cannot be written, and the others still complete', async () => {
    await boot();
    runner.script = { n0: 'ok', n1: 'ok' };
    writeFileSync(path.join(root, 'vault', 'c-explanations'), 'a file where the folder should be');
    const { task } = await submit(['n0', 'n1']);
    const final = await orchestrator.waitForCompletion(task.taskId);
    expect(final.status).toBe('failed');
    const errors = (await app.get(TaskViewService).status(task.taskId)).groups[0].errors;
    expect(errors.map((e) => e.error_type)).toEqual(['CANVAS_WRITE_FAILED', 'CANVAS_WRITE_FAILED']);
  });

  it('stores and shows node and task errors without absolute server paths', async () => {
    await boot();
    const vault = path.join(root, 'vault');
    const dataDir = path.join(root, 'data');
    runner.script = { n0: 'ok', n1: 'ok' };
    jest.spyOn(app.get(CanvasService), 'writeResultFile').mockImplementation((r) => {
      throw new CanvasWriteError(
        `cannot write the result file: EACCES: permission denied, open '${vault}/c-explanations/${r.sourceNodeId}.md.tmp'`,
      );
    });
    const { task } = await submit(['n0']);
    await orchestrator.waitForCompletion(task.taskId);
    const [error] = (await app.get(TaskViewService).status(task.taskId)).groups[0].errors;
    expect(error).toMatchObject({
      error_type: 'CANVAS_WRITE_FAILED',
      error_message:
        "cannot write the result file: EACCES: permission denied, open 'c-explanations/n0.md.tmp'",
    });
    expect((await eventsOf(task.taskId)).find((e) => e.type === 'task_failed')?.data.error_message).toBe(
      error.error_message,
    );
    // a whole batch that fails: the same in its error_message and its `error` event
    jest.spyOn(store, 'recordNodeResults').mockImplementationOnce(() => {
      throw new Error(
        `SQLITE_IOERR: disk I/O error writing ${dataDir}/canvas-batch.sqlite-wal (see /var/log/x)`,
      );
    });
    const second = await submit(['n1']);
    const final = await orchestrator.waitForCompletion(second.task.taskId);
    const shown =
      'SQLITE_IOERR: disk I/O error writing <DATA_DIR>/canvas-batch.sqlite-wal (see <server path>)';
    expect(final.errorMessage).toBe(shown);
    expect((await eventsOf(second.task.taskId)).find((e) => e.type === 'error')?.data.message).toBe(shown);
  });

  it('stores the outcomes of nodes finishing in one turn together, and fails the batch when the store refuses them', async () => {
    await boot();
    runner.script = { n0: 'ok', n1: 'ok', n2: 'ok' };
    const record = jest.spyOn(store, 'recordNodeResults');
    const { task } = await submit(['n0', 'n1', 'n2']);
    expect((await orchestrator.waitForCompletion(task.taskId)).status).toBe('completed');
    const stored = record.mock.calls.flatMap(([, results]) => results.map((r) => r.nodeId));
    expect(stored.sort()).toEqual(['n0', 'n1', 'n2']);
    // the event log follows the order things were counted: every node event before the group closes
    const t = (await types(task.taskId)).filter((x) => x !== 'progress_update');
    expect(t.slice(-5)).toEqual([
      'task_completed',
      'task_completed',
      'task_completed',
      'group_completed',
      'session_completed',
    ]);

    runner.script = { n3: 'ok', n4: 'ok' };
    record.mockImplementationOnce(() => {
      throw new Error('disk I/O error');
    });
    const second = await submit(['n3', 'n4']);
    const final = await orchestrator.waitForCompletion(second.task.taskId);
    expect(final.status).toBe('failed');
    expect(final.errorMessage).toBe('disk I/O error');
    expect(await types(second.task.taskId)).toContain('error');
  });

  it('fails the batch, instead of throwing out of a timer, when the store refuses a progress update', async () => {
    await boot({ progressIntervalMs: 20 });
    const uncaught = jest.fn();
    process.on('uncaughtException', uncaught);
    try {
      const { task } = await submit(['n0', 'n1']);
      await until(() => runner.pending.has('n0'));
      const append = jest.spyOn(log, 'append').mockImplementationOnce(() => {
        throw new Error('database is locked');
      });
      await until(() => append.mock.calls.length > 0);
      const final = await orchestrator.waitForCompletion(task.taskId);
      expect(final.status).toBe('failed');
      expect(final.errorMessage).toBe('database is locked');
      // the running nodes were aborted
      expect([...runner.pending.values()].map((p) => p.req.signal.aborted)).toEqual([true, true]);
      expect(uncaught).not.toHaveBeenCalled();
    } finally {
      process.off('uncaughtException', uncaught);
    }
  });

  it('keeps the result file but fails the node when its source node was deleted while the agent ran', async () => {
    await boot();
    const { task } = await submit(['n0']);
    await until(() => runner.pending.has('n0'));
    writeFileSync(path.join(root, 'vault', 'c.canvas'), JSON.stringify({ nodes: [], edges: [] }));
    runner.finish('n0');
    await orchestrator.waitForCompletion(task.taskId);
    const [error] = (await app.get(TaskViewService).status(task.taskId)).groups[0].errors;
    expect(error.error_type).toBe('NODE_NOT_FOUND');
    expect(error.error_message).toMatch(
      /no longer in the canvas; the result file is kept at c-explanations\//,
    );
  });

  it('ends the batch with EXECUTION_ERROR when the canvas vanished before it started', async () => {
    await boot();
    const { task } = await store.createTask({
      taskId: '11111111-1111-4111-8111-111111111111',
      canvasPath: 'gone.canvas',
      maxConcurrent: 2,
      timeoutMs: 1000,
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['n0'] }],
      createdAt: new Date().toISOString(),
    });
    await orchestrator.startBatchSession(task.taskId);
    const final = await orchestrator.waitForCompletion(task.taskId);
    expect(final.status).toBe('failed');
    expect((await types(task.taskId)).slice(-2)).toEqual(['error', 'session_completed']);
    expect((await eventsOf(task.taskId)).at(-2)?.data).toMatchObject({
      error_type: 'EXECUTION_ERROR',
      recoverable: false,
    });
  });

  it('validates the session: unknown, not pending, finished', async () => {
    await boot();
    await expect(orchestrator.startBatchSession('22222222-2222-4222-8222-222222222222')).rejects.toThrow(
      /No task/,
    );
    const { task } = await submit(['n0']);
    await expect(orchestrator.startBatchSession(task.taskId)).rejects.toThrow(
      /cannot go from running to running/,
    );
    await expect(orchestrator.waitForCompletion('22222222-2222-4222-8222-222222222222')).rejects.toThrow(
      /No task/,
    );
    await until(() => runner.pending.has('n0'));
    runner.finish('n0');
    await orchestrator.waitForCompletion(task.taskId);
    expect((await orchestrator.waitForCompletion(task.taskId)).status).toBe('completed');
    await expect(orchestrator.cancel(task.taskId)).rejects.toThrow(/already finished/);
    await expect(orchestrator.cancel('22222222-2222-4222-8222-222222222222')).rejects.toThrow(/No task/);
  });

  it('cancels a pending task that never started, with cancelled then session_completed', async () => {
    await boot();
    const { task } = await store.createTask({
      taskId: '33333333-3333-4333-8333-333333333333',
      canvasPath: 'c.canvas',
      maxConcurrent: 2,
      timeoutMs: 1000,
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['n0'] }],
      createdAt: new Date().toISOString(),
    });
    const events = firstValueFrom(app.get(TaskEventStream).open(task.taskId, 0).pipe(toArray()));
    const reply = await orchestrator.cancel(task.taskId);
    expect(reply).toMatchObject({ success: true, status: 'cancelled', completed_count: 0 });
    const received = (await events).filter((m) => 'type' in m).map((m) => ('type' in m ? m.type : ''));
    expect(received).toEqual(['cancelled', 'session_completed']);
  });

  it('validates in-process requests like HTTP does', async () => {
    await boot();
    await expect(orchestrator.submit({ canvasPath: 'c.canvas', groups: [] })).rejects.toThrow(
      /at least one group/,
    );
    await expect(
      orchestrator.submit({
        canvasPath: 'c.canvas',
        groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['n0'] }],
        maxConcurrent: 0,
        timeoutMs: -1,
      }),
    ).rejects.toThrow(/max_concurrent.*timeout/);
    await expect(
      orchestrator.submit({
        canvasPath: 'c.canvas',
        groups: [
          { groupId: 1, agentType: 'graphiti-memory-agent', nodeIds: ['n0', 'n0'] },
          { groupId: 1, agentType: 'nope', nodeIds: [] },
        ],
      }),
    ).rejects.toThrow(/cannot run in a batch.*unique.*unknown agent.*duplicate group_id.*at least one node/);
  });

  it('on shutdown leaves unfinished work for the next start, which resumes it without re-running recorded nodes', async () => {
    await boot({ shutdownGraceMs: 50 });
    const { task } = await submit(['n0', 'n1', 'n2', 'n3'], { maxConcurrent: 2 });
    await until(() => runner.pending.size === 2);
    runner.finish('n0');
    await until(
      async () => (await store.nodeCounts(task.taskId)).completed === 1 && runner.pending.size === 2,
    );
    orchestrator.stopAccepting();
    expect(orchestrator.accepting).toBe(false);
    await expect(submit(['n5'])).rejects.toThrow(/shutting down/);
    await app.close(); // the grace passes: n1 and n2 are aborted and left unrecorded
    const reopened = await reopen({ n1: 'ok', n2: 'ok', n3: 'ok' });
    expect((await reopened.store.findTask(task.taskId))?.status).not.toBe('cancelled');
    const final = await orchestrator.waitForCompletion(task.taskId);
    expect(final.status).toBe('completed');
    expect(runner.seen.sort()).toEqual(['n1', 'n2', 'n3']);
    const events = await eventsOf(task.taskId);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.type === 'resumed')).toHaveLength(1);
    const completed = events.filter((e) => e.type === 'task_completed').map((e) => e.data.node_id);
    expect(completed.sort()).toEqual(['n0', 'n1', 'n2', 'n3']);
    expect(events.at(-1)?.type).toBe('session_completed');
    expect((await store.findTask(task.taskId))?.resumeCount).toBe(1);
  });

  it('a cancel requested before a crash is honoured by the next start: nothing else runs', async () => {
    await boot({ shutdownGraceMs: 0 });
    const { task } = await submit(['n0', 'n1', 'n2'], { maxConcurrent: 1 });
    await until(() => runner.pending.size === 1);
    await store.requestCancel(task.taskId, 'graceful'); // as if the process died right after the cancel reply
    await app.close();
    await reopen();
    const final = await orchestrator.waitForCompletion(task.taskId);
    expect(final.status).toBe('cancelled');
    expect(runner.seen).toEqual([]);
    expect(await store.nodeCounts(task.taskId)).toEqual({ completed: 0, failed: 0, skipped: 3 });
  });

  it('keeps the deadline absolute: a task resumed after it starts no node and ends with TIMEOUT', async () => {
    await boot();
    const taskId = '55555555-5555-4555-8555-555555555555';
    await store.createTask({
      taskId,
      canvasPath: 'c.canvas',
      maxConcurrent: 2,
      timeoutMs: 1000,
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['n0', 'n1', 'n2'] }],
      createdAt: new Date(Date.now() - 5000).toISOString(),
    });
    await store.transition(taskId, 'running', {
      startedAt: new Date(Date.now() - 5000).toISOString(),
      deadlineAt: new Date(Date.now() - 4000).toISOString(),
    });
    await store.recordNodeResult(
      taskId,
      {
        groupIndex: 0,
        nodeId: 'n0',
        outcome: 'completed',
        filePath: 'x.md',
        fileSize: 1,
        durationMs: 5,
        inputTokens: 0,
        outputTokens: 0,
        finishedAt: new Date().toISOString(),
      },
      [{ type: 'task_completed', timestamp: new Date().toISOString(), data: { node_id: 'n0' } }],
    );
    await app.close();
    await reopen({ n1: 'ok', n2: 'ok' });
    const final = await orchestrator.waitForCompletion(taskId);
    expect(runner.seen).toEqual([]);
    expect(final.status).toBe('partial_failure');
    expect(await store.nodeCounts(taskId)).toEqual({ completed: 1, failed: 0, skipped: 2 });
    // n0's result was stored without its memory event (as when a kill lands between the two): the resume hands it over
    const n0Events = async () =>
      (await app.get(MemoryOutbox).forTask(taskId)).filter((e) => e.nodeId === 'n0');
    for (let turn = 0; turn < 500_000 && (await n0Events()).length === 0; turn++)
      await new Promise((resolve) => setImmediate(resolve));
    expect((await n0Events()).map((e) => e.memoryType)).toEqual(['explanation_generated']);
    const types = (await eventsOf(taskId)).map((e) => e.type);
    expect(types).toContain('resumed');
    expect(types).toContain('error');
    expect(types.at(-1)).toBe('session_completed');
  });

  it('starts a pending task left by a previous process', async () => {
    await boot();
    await store.createTask({
      taskId: '44444444-4444-4444-8444-444444444444',
      canvasPath: 'c.canvas',
      maxConcurrent: 2,
      timeoutMs: 60_000,
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['n0'] }],
      createdAt: new Date().toISOString(),
    });
    await app.close();
    await reopen({ n0: 'ok' });
    expect((await orchestrator.waitForCompletion('44444444-4444-4444-8444-444444444444')).status).toBe(
      'completed',
    );
  });

  it('reports live status while running: running group, live metrics, progress below 100', async () => {
    await boot();
    const { task } = await submit(['n0', 'n1']);
    await until(() => runner.pending.size === 2);
    runner.finish('n0');
    await until(async () => (await store.nodeCounts(task.taskId)).completed === 1);
    const view = await app.get(TaskViewService).status(task.taskId);
    expect(view.status).toBe('running');
    expect(view.progress_percent).toBe(50);
    expect(view.groups[0].status).toBe('running');
    expect(view.performance_metrics.peak_concurrent).toBe(2);
    expect((await orchestrator.live(task.taskId))?.runningNodes).toBe(1);
    expect(orchestrator.runningTasks).toBe(1);
    const listed = await app.get(TaskViewService).list({});
    expect(listed[0]).toMatchObject({
      task_id: task.taskId,
      status: 'running',
      completed_nodes: 1,
      progress_percent: 50,
    });
    runner.finish('n1');
    await orchestrator.waitForCompletion(task.taskId);
  });
});
