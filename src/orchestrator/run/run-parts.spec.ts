import { Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import type { AgentNodeInput, AgentRunRequest, AgentRunResult } from '../../agent';
import { AgentRouter } from '../../agent';
import type {
  AdditionOutcome,
  CanvasService,
  ResolvedCanvasPath,
  ResultFile,
  ResultToWrite,
} from '../../canvas';
import { resolveOptions } from '../../config';
import {
  InMemoryBudgetLedger,
  InMemoryEventLog,
  InMemoryGeneratedNodes,
  InMemoryResultCache,
  InMemoryTaskStore,
  RESULT_CACHE_DEFAULTS,
  type TaskRecord,
} from '../../session';
import { BatchOrchestrator } from '../batch-orchestrator.service';
import { BatchRun } from '../batch-run';
import { DurationEstimates } from '../concurrency/duration-estimates';
import { CostEstimator } from '../cost/cost-estimator';
import type { JobContext } from '../dispatch/dispatcher';
import { InProcessDispatcher } from '../dispatch/in-process-dispatcher';
import { BatchValidationError } from '../orchestrator.errors';
import { Admission } from './admission';
import { BatchRunner } from './batch-runner';
import { NodeExecution } from './node-execution';
import { OutcomeRecorder } from './outcome-recorder';
import { Recovery } from './recovery';
import { LocalTaskLeases } from '../ownership/task-leases';
import { LocalOutputDeltas } from '../deltas/output-deltas';

/*
 * The orchestrator's parts on the in-memory adapters (task store, event log, dispatcher), with doubles for the
 * canvas and the agent: no disk, no Nest application.
 */

Logger.overrideLogger(false);

const options = resolveOptions({ vaultRoot: '/vault', dataDir: '/data', progressIntervalMs: 60_000 });

/** A canvas whose every node exists, and whose result writes succeed unless `failWrite` names the node. */
class FakeCanvas {
  failWrite = new Set<string>();
  readonly written: string[] = [];

  open(canvasPath: string): Promise<ResolvedCanvasPath> {
    return Promise.resolve({ relPath: canvasPath, absPath: `/vault/${canvasPath}` });
  }

  resolve(canvasPath: string): Promise<ResolvedCanvasPath> {
    return this.open(canvasPath);
  }

  removeLeftovers(): Promise<void> {
    return Promise.resolve();
  }

  nodeContent(canvas: ResolvedCanvasPath, nodeId: string): Promise<AgentNodeInput> {
    return Promise.resolve({ canvasPath: canvas.relPath, nodeId, nodeType: 'text', content: `# ${nodeId}` });
  }

  writeResultFile(r: ResultToWrite): Promise<ResultFile> {
    if (this.failWrite.has(r.sourceNodeId)) return Promise.reject(new Error('disk full'));
    this.written.push(r.sourceNodeId);
    return Promise.resolve({
      filePath: `out/${r.sourceNodeId}.md`,
      fileSize: r.markdown.length,
      body: r.markdown,
    });
  }

  placeResult(): Promise<AdditionOutcome> {
    return Promise.resolve({ placed: true, alreadyPresent: false });
  }
}

/** Agents that answer at once, fail for the nodes in `fail`, or wait for `release(nodeId)`. */
class FakeRunner {
  fail = new Set<string>();
  hold = new Set<string>();
  private readonly held = new Map<string, () => void>();

  run(req: AgentRunRequest): Promise<AgentRunResult> {
    const id = req.node.nodeId;
    if (this.fail.has(id)) return Promise.reject(new Error(`agent failed on ${id}`));
    const result = { markdown: `about ${id}`, usage: { inputTokens: 1, outputTokens: 1 } };
    req.onText?.('about ');
    req.onText?.(id);
    if (!this.hold.has(id)) return Promise.resolve(result);
    return new Promise((resolve, reject) => {
      this.held.set(id, () => resolve(result));
      req.signal.addEventListener('abort', () => reject(req.signal.reason as Error));
    });
  }

  isHeld(nodeId: string): boolean {
    return this.held.has(nodeId);
  }

  release(nodeId: string): void {
    this.held.get(nodeId)?.();
  }
}

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let turn = 0; !(await condition()); turn++) {
    if (turn > 100_000) throw new Error('condition not met');
    await new Promise((r) => setImmediate(r));
  }
}

function parts(opts = options) {
  const log = new InMemoryEventLog();
  const store = new InMemoryTaskStore(log);
  const canvas = new FakeCanvas();
  const runner = new FakeRunner();
  const estimates = new DurationEstimates(store);
  const recorder = new OutcomeRecorder(
    store,
    log,
    new EventEmitter2(),
    estimates,
    options,
    new InMemoryGeneratedNodes(),
  );
  const deltas = new LocalOutputDeltas();
  const dispatcher = new InProcessDispatcher({ capacity: 4 });
  const admission = new Admission(store, canvas as unknown as CanvasService, runner, options);
  const cost = new CostEstimator(
    admission,
    canvas as unknown as CanvasService,
    estimates,
    dispatcher,
    runner,
    options,
  );
  const nodes = new NodeExecution(
    canvas as unknown as CanvasService,
    runner,
    recorder,
    estimates,
    opts,
    new InMemoryResultCache(RESULT_CACHE_DEFAULTS),
    new InMemoryGeneratedNodes(),
    new AgentRouter(runner),
    new InMemoryBudgetLedger(),
    cost,
    deltas,
  );
  const batches = new BatchRunner(
    canvas as unknown as CanvasService,
    dispatcher,
    nodes,
    recorder,
    new LocalTaskLeases(),
    options,
  );
  const admit = async (nodeIds: string[], groups = 1): Promise<TaskRecord> =>
    (
      await admission.admit({
        canvasPath: 'c.canvas',
        groups: Array.from({ length: groups }, (_, g) => ({
          groupId: g + 1,
          agentType: 'oral-explanation',
          nodeIds,
        })),
        maxConcurrent: 2,
      })
    ).task;
  const types = async (taskId: string) => (await log.after(taskId, 0)).map((e) => e.type);
  return {
    log,
    store,
    canvas,
    runner,
    recorder,
    nodes,
    dispatcher,
    batches,
    admission,
    admit,
    types,
    deltas,
  };
}

describe('Admission', () => {
  it('refuses bad input and stores nothing', async () => {
    const { admission, store } = parts();
    await expect(admission.admit({ canvasPath: 'c.canvas', groups: [] })).rejects.toThrow(
      BatchValidationError,
    );
    await expect(
      admission.admit({
        canvasPath: 'c.canvas',
        groups: [{ groupId: 1, agentType: 'nope', nodeIds: ['a', 'a'] }],
        maxConcurrent: 51,
      }),
    ).rejects.toThrow(/unknown agent.*unique/);
    expect(await store.listTasks({ limit: 10 })).toEqual([]);
  });

  it('stores a good batch pending, once per idempotency key', async () => {
    const { admission } = parts();
    const request = {
      canvasPath: 'c.canvas',
      groups: [{ groupId: 'g', agentType: 'oral-explanation', nodeIds: ['a'] }],
      idempotencyKey: 'k1',
    };
    const first = await admission.admit(request);
    expect(first).toMatchObject({
      created: true,
      task: { status: 'pending', maxConcurrent: 12, totalNodes: 1 },
    });
    const again = await admission.admit(request);
    expect(again).toMatchObject({ created: false, task: { taskId: first.task.taskId } });
  });
});

describe('OutcomeRecorder', () => {
  it('emits group_completed once, after the group’s last outcome, store then publish', async () => {
    const { recorder, store, log, admit } = parts();
    const task = await admit(['a', 'b']);
    const run = new BatchRun(task, { relPath: 'c.canvas', absPath: '' }, () => undefined);
    const live: string[] = [];
    const sub = log.live(task.taskId).subscribe((e) => live.push(`${e.id}:${e.type}`));
    const base = { inputTokens: 0, outputTokens: 0, finishedAt: new Date().toISOString() };
    recorder.recordNode(run, {
      ...base,
      groupIndex: 0,
      nodeId: 'a',
      outcome: 'completed',
      filePath: 'a.md',
      fileSize: 1,
      durationMs: 1,
    });
    recorder.recordNode(run, {
      ...base,
      groupIndex: 0,
      nodeId: 'b',
      outcome: 'failed',
      errorType: 'AGENT_ERROR',
      errorMessage: 'x',
    });
    await recorder.flush(run);
    await recorder.recordSkipped(run, new Date().toISOString()); // nothing left: no second group_completed
    sub.unsubscribe();
    expect(live).toEqual(['1:task_completed', '2:task_failed', '3:group_completed']);
    expect((await log.after(task.taskId, 0)).at(-1)?.data).toMatchObject({
      status: 'partial_failure',
      completed_nodes: 1,
      failed_nodes: 1,
    });
    expect(await store.nodeCounts(task.taskId)).toEqual({ completed: 1, failed: 1, skipped: 0 });
  });
});

describe('BatchRunner', () => {
  it.each([
    ['completed', [] as string[]],
    ['partial_failure', ['b']],
    ['failed', ['a', 'b', 'c']],
  ])('finalises a batch as %s', async (status, failing) => {
    const p = parts();
    failing.forEach((id) => p.runner.fail.add(id));
    const task = await p.admit(['a', 'b', 'c']);
    await p.batches.startBatchSession(task.taskId);
    const final = await p.batches.get(task.taskId)!.done;
    expect(final.status).toBe(status);
    expect((await p.store.findTask(task.taskId))?.status).toBe(status);
    const types = await p.types(task.taskId);
    expect(types.filter((t) => t === 'group_completed')).toHaveLength(1);
    expect(types.at(-1)).toBe('session_completed');
    expect(p.batches.size).toBe(0);
  });

  it('auto: routes each node when it runs; results and events carry the agent chosen, failures too', async () => {
    const p = parts();
    p.runner.fail.add('b');
    const { task } = await p.admission.admit({
      canvasPath: 'c.canvas',
      groups: [{ groupId: 'g', agentType: 'auto', nodeIds: ['a', 'b'] }],
    });
    expect(task.groups[0].agentType).toBe('auto');
    await p.batches.startBatchSession(task.taskId);
    await p.batches.get(task.taskId)!.done;
    const routing = { agentType: 'oral-explanation', confidence: 0.5, routedBy: 'rules' };
    const results = await p.store.nodeResults(task.taskId);
    expect(results.map((r) => [r.nodeId, r.outcome, r.routing])).toEqual(
      expect.arrayContaining([
        ['a', 'completed', routing],
        ['b', 'failed', routing],
      ]),
    );
    const events = (await p.log.after(task.taskId, 0)).filter((e) => e.type.startsWith('task_'));
    for (const e of events)
      expect(e.data).toMatchObject({
        agent_type: 'oral-explanation',
        routing: { confidence: 0.5, routed_by: 'rules' },
      });
    expect(events).toHaveLength(2);
  });

  it('finalises a cancelled batch: the running node keeps its result, the rest is skipped', async () => {
    const p = parts();
    p.runner.hold.add('a');
    p.runner.hold.add('b');
    const task = await p.admit(['a', 'b', 'c']);
    const running = await p.batches.startBatchSession(task.taskId);
    await until(() => p.runner.isHeld('a') && p.runner.isHeld('b')); // the cap of 2 is full: c waits
    const reply = await p.batches.cancel(running, 'graceful');
    expect(reply.success).toBe(true);
    const done = p.batches.get(task.taskId)!.done;
    p.runner.release('a');
    p.runner.release('b');
    expect((await done).status).toBe('cancelled');
    expect(await p.store.nodeCounts(task.taskId)).toEqual({ completed: 2, failed: 0, skipped: 1 });
    expect((await p.types(task.taskId)).slice(-2)).toEqual(['cancelled', 'session_completed']);
  });

  it('cancels a task nobody runs at once (cancelled, then session_completed)', async () => {
    const p = parts();
    const task = await p.admit(['a']);
    const reply = await p.batches.cancel(task, 'graceful');
    expect(reply).toMatchObject({ status: 'cancelled', completed_count: 0 });
    expect(await p.types(task.taskId)).toEqual(['cancelled', 'session_completed']);
  });
});

describe('NodeExecution', () => {
  const ctx = () => {
    const c = {
      signal: new AbortController().signal,
      feedback: { rateLimited: jest.fn(), succeeded: jest.fn() },
    };
    return { ...c, releaseAgentSlots: jest.fn(), releaseWriteSlot: jest.fn() } satisfies JobContext;
  };
  const job = (taskId: string, nodeId: string) => ({
    taskId,
    groupIndex: 0,
    nodeId,
    agentType: 'oral-explanation',
    expectedMs: 0,
    canvasPath: 'c.canvas',
    deadlineAt: null,
  });

  it('gives the agent slots back when the agent fails, and records the failure', async () => {
    const p = parts();
    p.runner.fail.add('a');
    const task = await p.admit(['a']);
    const run = new BatchRun(task, { relPath: 'c.canvas', absPath: '' }, () => undefined);
    const c = ctx();
    await p.nodes.executeNode(run, job(task.taskId, 'a'), c);
    expect(c.releaseAgentSlots).toHaveBeenCalled();
    expect(run.running).toBe(0);
    await p.recorder.flush(run);
    expect((await p.store.nodeResults(task.taskId))[0]).toMatchObject({
      nodeId: 'a',
      outcome: 'failed',
      errorType: 'AGENT_ERROR',
    });
  });

  it('gives every slot back when the result cannot be written, and the next node still runs', async () => {
    const p = parts();
    p.canvas.failWrite.add('a');
    const task = await p.admit(['a', 'b']);
    const run = new BatchRun(task, { relPath: 'c.canvas', absPath: '' }, () => undefined);
    const c = ctx();
    await p.nodes.executeNode(run, job(task.taskId, 'a'), c);
    expect(c.releaseAgentSlots).toHaveBeenCalled();
    expect(c.releaseWriteSlot).toHaveBeenCalled();
    await p.nodes.executeNode(run, job(task.taskId, 'b'), ctx());
    await p.recorder.flush(run);
    expect(await p.store.nodeCounts(task.taskId)).toEqual({ completed: 1, failed: 1, skipped: 0 });
    expect(p.canvas.written).toEqual(['b']);
  });

  it('un-counts a job a queue reported started but whose worker found the batch stopped', async () => {
    const p = parts();
    const task = await p.admit(['a']);
    const run = new BatchRun(task, { relPath: 'c.canvas', absPath: '' }, () => undefined);
    const j = job(task.taskId, 'a');
    p.nodes.started(run, j);
    expect([run.dispatched, run.groups[0].started, run.running]).toEqual([1, 1, 1]);
    p.nodes.agentEnded(run);
    await p.nodes.settle(run, j, { kind: 'not-started' });
    expect([run.dispatched, run.groups[0].started, run.running]).toEqual([0, 0, 0]);
    expect(run.unstored.results).toEqual([]);
  });

  it('starts nothing for a stopped batch', async () => {
    const p = parts();
    const task = await p.admit(['a']);
    const run = new BatchRun(task, { relPath: 'c.canvas', absPath: '' }, () => undefined);
    run.stop('cancel', false);
    await p.nodes.executeNode(run, job(task.taskId, 'a'), ctx());
    expect(run.dispatched).toBe(0);
    expect(run.unstored.results).toEqual([]);
  });

  it('builds jobs longest expected first for the dispatcher (unknown agents count as the longest known)', async () => {
    const p = parts();
    const task = await p.admit(['a', 'b'], 2);
    const run = new BatchRun(task, { relPath: 'c.canvas', absPath: '' }, () => undefined);
    run.restore([
      { groupIndex: 0, nodeId: 'a', outcome: 'completed', inputTokens: 0, outputTokens: 0, finishedAt: '' },
    ]);
    expect(p.nodes.jobsOf(run).map((j) => `${j.groupIndex}:${j.nodeId}:${j.expectedMs}`)).toEqual([
      '0:b:0',
      '1:a:0',
      '1:b:0',
    ]);
  });
});

describe('NodeExecution with AGENT_STREAM', () => {
  const job = (taskId: string, nodeId: string, groupId?: string | number) => ({
    taskId,
    groupIndex: 0,
    ...(groupId !== undefined && { groupId }),
    nodeId,
    agentType: 'oral-explanation',
    expectedMs: 0,
    canvasPath: 'c.canvas',
    deadlineAt: null,
  });
  const ctx = (): JobContext => ({
    signal: new AbortController().signal,
    feedback: { rateLimited: () => undefined, succeeded: () => undefined },
    releaseAgentSlots: () => undefined,
    releaseWriteSlot: () => undefined,
  });

  it('publishes the agent’s text, coalesced, for the task’s delta subscribers; nothing when streaming is off', async () => {
    const p = parts(resolveOptions({ vaultRoot: '/vault', dataDir: '/data', agentStream: true }));
    const got: unknown[] = [];
    p.deltas.subscribe('t1', (d) => got.push(d));
    await p.nodes.runJob(job('t1', 'a', 'g1'), ctx());
    // the first chunk at once, the rest when the agent call ended
    expect(got).toEqual([
      { taskId: 't1', nodeId: 'a', groupId: 'g1', text: 'about ', offset: 0 },
      { taskId: 't1', nodeId: 'a', groupId: 'g1', text: 'a', offset: 6 },
    ]);
    // a job from before group ids were in jobs: its group's index
    await p.nodes.runJob(job('t1', 'b'), ctx());
    expect(got.at(-1)).toMatchObject({ nodeId: 'b', groupId: 0 });

    const off = parts();
    const none: unknown[] = [];
    off.deltas.subscribe('t1', (d) => none.push(d));
    await off.nodes.runJob(job('t1', 'a', 'g1'), ctx());
    expect(none).toEqual([]);
  });
});

describe('BatchOrchestrator (the facade over the parts)', () => {
  it('executeGroup resolves once the group settles; aggregateResults counts per group from the store', async () => {
    const p = parts();
    const estimates = new DurationEstimates(p.store);
    const recovery = new Recovery(p.store, p.recorder, p.batches, new LocalTaskLeases());
    const orchestrator = new BatchOrchestrator(
      p.admission,
      p.batches,
      recovery,
      p.dispatcher,
      estimates,
      p.store,
    );
    p.runner.fail.add('b');
    const { task } = await orchestrator.submit({
      canvasPath: 'c.canvas',
      groups: [
        { groupId: 1, agentType: 'oral-explanation', nodeIds: ['a'] },
        { groupId: 2, agentType: 'oral-explanation', nodeIds: ['b', 'c'] },
      ],
    });
    expect(await orchestrator.executeGroup(task.taskId, 1)).toEqual({
      groupId: 2,
      agentType: 'oral-explanation',
      status: 'partial_failure',
      total: 2,
      completed: 1,
      failed: 1,
      skipped: 0,
    });
    expect((await orchestrator.waitForCompletion(task.taskId)).status).toBe('partial_failure');
    expect(await orchestrator.aggregateResults(task.taskId)).toMatchObject({
      status: 'partial_failure',
      total: 3,
      completed: 2,
      failed: 1,
      skipped: 0,
      groups: [
        { groupId: 1, status: 'completed', completed: 1 },
        { groupId: 2, status: 'partial_failure', completed: 1, failed: 1 },
      ],
    });
    expect(await orchestrator.executeGroup(task.taskId, 0)).toMatchObject({ status: 'completed' });
    await expect(orchestrator.executeGroup(task.taskId, 5)).rejects.toThrow(RangeError);
  });
});
