import { Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import type { AgentNodeInput, AgentRunRequest, AgentRunResult, RunnerIdentity } from '../../agent';
import { AgentRouter, AgentRunner } from '../../agent';
import type { CanvasService } from '../../canvas';
import { resolveOptions } from '../../config';
import {
  type CachedResult,
  InMemoryBudgetLedger,
  InMemoryEventLog,
  InMemoryGeneratedNodes,
  InMemoryResultCache,
  InMemoryTaskStore,
  RESULT_CACHE_DEFAULTS,
  ResultCache,
} from '../../session';
import { BatchRun, NodeAbort } from '../batch-run';
import { DurationEstimates } from '../concurrency/duration-estimates';
import type { JobContext, NodeJob, NodeRunResult } from '../dispatch/dispatcher';
import { NodeExecution } from './node-execution';
import { CostEstimator } from '../cost/cost-estimator';
import { LocalOutputDeltas } from '../deltas/output-deltas';
import { OutcomeRecorder } from './outcome-recorder';

/* Node execution's use of the result cache, on the in-memory adapters with doubles for the canvas and the agent. */

Logger.overrideLogger(false);

const CANVAS = { relPath: 'c.canvas', absPath: '/vault/c.canvas' };

/** A runner that says what its output depends on (unless `anonymous`) and counts its calls. */
class CountingRunner extends AgentRunner {
  calls = 0;
  markdown = (id: string): string => `about ${id}`;
  fail = false;

  constructor(private readonly anonymous = false) {
    super();
  }

  override identity(): RunnerIdentity | undefined {
    return this.anonymous ? undefined : { provider: 'fake', model: 'm1', template: 'v1' };
  }

  run(req: AgentRunRequest): Promise<AgentRunResult> {
    this.calls++;
    if (this.fail) return Promise.reject(new Error('provider down'));
    return Promise.resolve({
      markdown: this.markdown(req.node.nodeId),
      ...(req.agentType === 'hint-generation' && {
        structured: { kind: 'hint' as const, hint: { text: 'look closer', level: 1 as const } },
      }),
      usage: { inputTokens: 100, outputTokens: 20 },
      attempts: 2,
    });
  }
}

/** A cache whose every call fails. */
class BrokenCache extends ResultCache {
  get(): Promise<CachedResult | undefined> {
    return Promise.reject(new Error('redis gone'));
  }
  put(): Promise<void> {
    return Promise.reject(new Error('redis gone'));
  }
  clear(): Promise<number> {
    return Promise.resolve(0);
  }
  size(): Promise<number> {
    return Promise.resolve(0);
  }
}

function setup(
  opts: {
    anonymous?: boolean;
    cacheOn?: boolean;
    cache?: ResultCache;
    content?: (id: string) => AgentNodeInput;
  } = {},
) {
  const options = resolveOptions({
    vaultRoot: '/vault',
    dataDir: '/data',
    resultCache: opts.cacheOn ?? true,
  });
  const log = new InMemoryEventLog();
  const store = new InMemoryTaskStore(log);
  const estimates = new DurationEstimates(store);
  const generated = new InMemoryGeneratedNodes();
  const recorder = new OutcomeRecorder(store, log, new EventEmitter2(), estimates, options, generated);
  const runner = new CountingRunner(opts.anonymous);
  const cache = opts.cache ?? new InMemoryResultCache(RESULT_CACHE_DEFAULTS);
  const contents = new Map<string, string>();
  const canvas = {
    nodeContent: (_: unknown, nodeId: string): Promise<AgentNodeInput> =>
      Promise.resolve(
        opts.content?.(nodeId) ?? {
          canvasPath: 'c.canvas',
          nodeId,
          nodeType: 'text',
          content: contents.get(nodeId) ?? `# Node ${nodeId}\nSome text.`,
        },
      ),
  } as unknown as CanvasService;
  const nodes = new NodeExecution(
    canvas,
    runner,
    recorder,
    estimates,
    options,
    cache,
    generated,
    new AgentRouter(runner),
    new InMemoryBudgetLedger(),
    // no job here has a budget: the estimator is never asked
    {} as CostEstimator,
    new LocalOutputDeltas(),
  );
  const ctx = (signal = new AbortController().signal): JobContext => ({
    signal,
    feedback: { rateLimited: jest.fn(), succeeded: jest.fn() },
    releaseAgentSlots: jest.fn(),
    releaseWriteSlot: jest.fn(),
  });
  const job = (nodeId: string, extra: Partial<NodeJob> = {}): NodeJob => ({
    taskId: 't1',
    groupIndex: 0,
    nodeId,
    agentType: 'oral-explanation',
    expectedMs: 0,
    canvasPath: 'c.canvas',
    deadlineAt: null,
    ...extra,
  });
  const run = (nodeId: string, extra: Partial<NodeJob> = {}, signal?: AbortSignal): Promise<NodeRunResult> =>
    nodes.runJob(job(nodeId, extra), ctx(signal), CANVAS);
  return { nodes, runner, cache, generated, contents, estimates, store, recorder, run, job };
}

const completed = (r: NodeRunResult) => {
  if (r.kind !== 'completed') throw new Error(`expected completed, got ${JSON.stringify(r)}`);
  return r;
};

describe('NodeExecution with the result cache', () => {
  it('a miss calls the agent and stores its output; the same node again is a hit without a call', async () => {
    const s = setup();
    const fresh = completed(await s.run('a'));
    expect(s.runner.calls).toBe(1);
    expect(fresh).not.toHaveProperty('cached');
    expect(fresh).toMatchObject({ inputTokens: 100, outputTokens: 20, attempts: 2 });
    expect(await s.cache.size()).toBe(1);

    const hit = completed(await s.run('a'));
    expect(s.runner.calls).toBe(1);
    expect(hit).toMatchObject({ cached: true, inputTokens: 0, outputTokens: 0, attempts: 0 });
    expect({ title: hit.title, markdown: hit.markdown, concept: hit.concept }).toEqual({
      title: fresh.title,
      markdown: fresh.markdown,
      concept: fresh.concept,
    });
    // the same content in another node is the same work
    s.contents.set('b', '# Node a\nSome text.');
    expect(completed(await s.run('b')).cached).toBe(true);
    expect(s.runner.calls).toBe(1);
  });

  it('keeps the structured output of a structured agent', async () => {
    const s = setup();
    const fresh = completed(await s.run('a', { agentType: 'hint-generation' }));
    const hit = completed(await s.run('a', { agentType: 'hint-generation' }));
    expect(hit.cached).toBe(true);
    expect(hit.structured).toEqual(fresh.structured);
  });

  it('an edited node, another agent: misses', async () => {
    const s = setup();
    await s.run('a');
    s.contents.set('a', '# Node a\nOther text.');
    expect(completed(await s.run('a'))).not.toHaveProperty('cached');
    expect(completed(await s.run('a', { agentType: 'memory-anchor' }))).not.toHaveProperty('cached');
    expect(s.runner.calls).toBe(3);
  });

  it('is not used for a batch that opted out, with RESULT_CACHE off, or for a runner without an identity', async () => {
    for (const [what, s, extra] of [
      ['opt-out', setup(), { cache: false }],
      ['off', setup({ cacheOn: false }), {}],
      ['anonymous runner', setup({ anonymous: true }), {}],
    ] as const) {
      await s.run('a', extra);
      const again = completed(await s.run('a', extra));
      expect({ what, calls: s.runner.calls, cached: again.cached, stored: await s.cache.size() }).toEqual({
        what,
        calls: 2,
        cached: undefined,
        stored: 0,
      });
    }
  });

  it('stores neither a failure nor an output the caps cut', async () => {
    const s = setup();
    s.runner.fail = true;
    expect((await s.run('a')).kind).toBe('failed');
    s.runner.fail = false;
    s.runner.markdown = () => 'x'.repeat(2 * 1024 * 1024);
    const cut = completed(await s.run('a'));
    expect(cut.truncated?.resultChars).toBeGreaterThan(0);
    expect(await s.cache.size()).toBe(0);
  });

  it('a cache that fails is a miss (the agent is called) and the node completes', async () => {
    const s = setup({ cache: new BrokenCache() });
    expect(completed(await s.run('a'))).not.toHaveProperty('cached');
    expect(completed(await s.run('a'))).not.toHaveProperty('cached');
    expect(s.runner.calls).toBe(2);
  });

  it('a node aborted (cancel) fails as cancelled on a hit too, with no call', async () => {
    const s = setup();
    await s.run('a');
    const abort = new AbortController();
    abort.abort(new NodeAbort('CANCELLED', 'the batch was cancelled'));
    const r = await s.run('a', {}, abort.signal);
    expect(r).toMatchObject({ kind: 'failed', errorType: 'CANCELLED', attempts: 0 });
    expect(s.runner.calls).toBe(1);
  });

  it("leaves the service's own cards out of the key: a new result card beside the node is still a hit", async () => {
    let around = ['Learner note', 'out/a-1.md'];
    const s = setup({
      content: (nodeId) => ({
        canvasPath: 'c.canvas',
        nodeId,
        nodeType: 'text',
        content: 'Mitosis',
        context: { neighbours: around, neighbourIds: ['learner', 'card-1'] },
      }),
    });
    await s.generated.record('c.canvas', 't0', { nodeIds: ['card-1', 'card-2'], edgeIds: [] });
    await s.run('a');
    around = ['Learner note', 'out/a-2.md'];
    expect(completed(await s.run('a')).cached).toBe(true);
    around = ['Learner note, edited', 'out/a-2.md'];
    expect(completed(await s.run('a'))).not.toHaveProperty('cached');
    expect(s.runner.calls).toBe(2);
  });

  it('a cached result teaches the duration estimates nothing, and its outcome says cached', async () => {
    const s = setup();
    await s.store.createTask({
      taskId: 't1',
      canvasPath: 'c.canvas',
      maxConcurrent: 1,
      timeoutMs: 60_000,
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['a'] }],
      createdAt: new Date().toISOString(),
    });
    const task = (await s.store.findTask('t1'))!;
    const canvasWrites = {
      writeResultFile: () => Promise.resolve({ filePath: 'out/a.md', fileSize: 3, body: 'abc' }),
      placeResult: () => Promise.resolve({ placed: true, alreadyPresent: false }),
    };
    Object.assign((s.nodes as unknown as { canvas: object }).canvas, canvasWrites);
    await s.run('a');
    const hit = await s.run('a');
    const run = new BatchRun(task, CANVAS, () => undefined);
    await s.nodes.settle(run, s.job('a'), hit);
    await s.recorder.flush(run);
    expect(s.estimates.estimate('oral-explanation')).toBeUndefined();
    expect((await s.store.nodeResults('t1'))[0]).toMatchObject({
      outcome: 'completed',
      cached: true,
      attempts: 0,
    });
  });

  it('jobs of a batch that opted out carry it', () => {
    const s = setup();
    const task = {
      taskId: 't1',
      canvasPath: 'c.canvas',
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['a'] }],
      deadlineAt: null,
      cache: false,
    };
    const run = { taskId: 't1', task, recorded: new Set<string>() } as unknown as BatchRun;
    expect(s.nodes.jobsOf(run)[0].cache).toBe(false);
    expect(
      s.nodes.jobsOf({ ...run, task: { ...task, cache: undefined } } as unknown as BatchRun)[0],
    ).not.toHaveProperty('cache');
  });
});
