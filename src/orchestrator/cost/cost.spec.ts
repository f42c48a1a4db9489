import { Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import {
  type AgentNodeInput,
  AgentRouter,
  AgentRunError,
  AgentRunner,
  type AgentRunRequest,
  type AgentRunResult,
  OfflineAgentRunner,
} from '../../agent';
import { type CanvasService, NodeContentMissingError, type ResolvedCanvasPath } from '../../canvas';
import { resolveOptions, type ResolvedCanvasBatchOptions } from '../../config';
import {
  type BudgetAccount,
  BudgetLedger,
  type BudgetReservation,
  InMemoryBudgetLedger,
  InMemoryEventLog,
  InMemoryGeneratedNodes,
  InMemoryResultCache,
  InMemoryTaskStore,
  RESULT_CACHE_DEFAULTS,
} from '../../session';
import { DurationEstimates } from '../concurrency/duration-estimates';
import type { JobContext, NodeJob } from '../dispatch/dispatcher';
import { InProcessDispatcher } from '../dispatch/in-process-dispatcher';
import { BatchValidationError, BudgetWithoutPriceError } from '../orchestrator.errors';
import { Admission } from '../run/admission';
import { NodeExecution } from '../run/node-execution';
import { OutcomeRecorder } from '../run/outcome-recorder';
import { CostEstimator, makespan } from './cost-estimator';
import { LocalOutputDeltas } from '../deltas/output-deltas';
import { budgetView, pricing, providerOf } from './pricing';

Logger.overrideLogger(false);

const PRICED = resolveOptions({
  vaultRoot: '/vault',
  dataDir: '/data',
  tokenPrices: { inputPerMTok: 3, outputPerMTok: 15 },
});

/** Nodes with content by id: `empty` has none, `gone` cannot be read. */
class FakeCanvas {
  open(canvasPath: string): Promise<ResolvedCanvasPath> {
    return Promise.resolve({ relPath: canvasPath, absPath: `/vault/${canvasPath}` });
  }
  resolve(canvasPath: string): Promise<ResolvedCanvasPath> {
    return this.open(canvasPath);
  }
  nodeContent(canvas: ResolvedCanvasPath, nodeId: string): Promise<AgentNodeInput> {
    if (nodeId === 'gone') return Promise.reject(new NodeContentMissingError('its file is missing'));
    const content = nodeId === 'empty' ? '' : `# ${nodeId}\n${'Cells divide and grow. '.repeat(20)}`;
    return Promise.resolve({ canvasPath: canvas.relPath, nodeId, nodeType: 'text', content });
  }
}

/** Answers with fixed usage, or fails as `failWith` says. */
class FakeRunner extends AgentRunner {
  failWith: Error | undefined;
  calls = 0;
  run(req: AgentRunRequest): Promise<AgentRunResult> {
    this.calls++;
    if (this.failWith) return Promise.reject(this.failWith);
    return Promise.resolve({
      markdown: `about ${req.node.nodeId}`,
      usage: { inputTokens: 1000, outputTokens: 100 },
    });
  }
}

function parts(options: ResolvedCanvasBatchOptions = PRICED, runner: AgentRunner = new FakeRunner()) {
  const log = new InMemoryEventLog();
  const store = new InMemoryTaskStore(log);
  const canvas = new FakeCanvas() as unknown as CanvasService;
  const durations = new DurationEstimates(store);
  const dispatcher = new InProcessDispatcher({ capacity: 4 });
  const admission = new Admission(store, canvas, runner, options);
  const cost = new CostEstimator(admission, canvas, durations, dispatcher, runner, options);
  return { store, canvas, durations, dispatcher, admission, cost, runner, log };
}

const group = (nodeIds: string[], agentType = 'oral-explanation', groupId: string | number = 'g') => ({
  groupId,
  agentType,
  nodeIds,
});

describe('makespan', () => {
  it('schedules longest first on the free slot: between max(longest, work / slots) and 4/3 of the optimum', () => {
    expect(makespan([], 3)).toBe(0);
    expect(makespan([10, 10, 10], 2)).toBe(20);
    expect(makespan([5, 5, 5, 5], 4)).toBe(5);
    expect(makespan([30, 10, 10, 10], 2)).toBe(30);
    expect(makespan([3, 3, 2, 2, 2], 2)).toBe(7);
    expect(makespan([1, 2, 3], 10)).toBe(3);
  });
});

describe('pricing and provider', () => {
  it('takes the configured price, nothing for the offline runner, else unknown', () => {
    expect(pricing(PRICED, new FakeRunner())).toEqual({ inputPerMTok: 3, outputPerMTok: 15 });
    const plain = resolveOptions({ vaultRoot: '/v', dataDir: '/d' });
    expect(pricing(plain, new OfflineAgentRunner(0))).toEqual({ inputPerMTok: 0, outputPerMTok: 0 });
    expect(pricing(plain, new FakeRunner())).toBeUndefined();
  });

  it('names the provider and model; a local model by its file name only', () => {
    const plain = resolveOptions({ vaultRoot: '/v', dataDir: '/d' });
    expect(providerOf(plain, new OfflineAgentRunner(0))).toEqual({ provider: 'offline', model: null });
    expect(providerOf(plain, new FakeRunner())).toEqual({ provider: 'custom', model: null });
    const llm = {
      provider: 'local' as const,
      model: '/srv/models/small.gguf',
      baseUrl: undefined,
      apiKey: undefined,
      stream: false,
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      contextTokens: 4000,
      maxOutputTokens: 256,
      prices: undefined,
    };
    expect(providerOf(resolveOptions({ vaultRoot: '/v', dataDir: '/d', llm }), new FakeRunner())).toEqual({
      provider: 'local',
      model: 'small.gguf',
    });
    expect(
      providerOf(
        resolveOptions({
          vaultRoot: '/v',
          dataDir: '/d',
          llm: { ...llm, provider: 'anthropic', model: 'm' },
        }),
        new FakeRunner(),
      ),
    ).toEqual({ provider: 'anthropic', model: 'm' });
  });

  it('shows a budget with what remains, never below 0', () => {
    expect(budgetView(1, { spentUsd: 0.25, reservedUsd: 0.5 })).toEqual({
      limit_usd: 1,
      spent_usd: 0.25,
      reserved_usd: 0.5,
      remaining_usd: 0.25,
    });
    expect(budgetView(1, { spentUsd: 1.2, reservedUsd: 0 }).remaining_usd).toBe(0);
  });
});

describe('CostEstimator', () => {
  it('estimates per group and in all: tokens from the prompts, the bound for outputs, cost at the price', async () => {
    const { cost } = parts();
    const e = await cost.estimate({
      canvasPath: 'c.canvas',
      groups: [group(['a', 'b']), group(['c'], 'basic-decomposition', 2)],
    });
    expect(e).toMatchObject({
      provider: 'custom',
      model: null,
      price: { input_per_mtok: 3, output_per_mtok: 15 },
      concurrency: 4,
      tokens: { method: 'heuristic', tolerance: 0.25 },
    });
    const [g1, g2] = e.groups;
    expect(g1).toMatchObject({
      group_id: 'g',
      agent_type: 'oral-explanation',
      nodes: 2,
      output_basis: 'max_output_tokens',
    });
    expect(g1.output_tokens).toBe(2 * 2048);
    expect(g2.group_id).toBe(2);
    expect(g1.cost_usd).toBeCloseTo((g1.input_tokens * 3 + g1.output_tokens * 15) / 1e6, 6);
    expect(e.total).toMatchObject({
      nodes: 3,
      input_tokens: g1.input_tokens + g2.input_tokens,
      output_tokens: 3 * 2048,
      price_known: true,
      expected_duration_ms: null,
    });
    expect(e.total.cost_usd).toBeCloseTo((g1.cost_usd ?? 0) + (g2.cost_usd ?? 0), 6);
    expect(g1.expected_ms).toBeNull();
  });

  it('uses what it learned: output tokens and durations, at the batch cap and the global limit', async () => {
    const { cost, durations } = parts();
    durations.observe('oral-explanation', 1000, 300);
    durations.observe('oral-explanation', 2000, 400); // EWMA: 1200 ms, 320 tokens
    const e = await cost.estimate({
      canvasPath: 'c.canvas',
      groups: [group(['a', 'b', 'c']), group(['d'], 'memory-anchor', 'm')],
      maxConcurrent: 2,
    });
    expect(e.concurrency).toBe(2);
    const [g1, g2] = e.groups;
    expect(g1).toMatchObject({ output_basis: 'learned', output_tokens: 3 * 320, expected_ms: 3600 });
    // an agent never seen counts as the longest known
    expect(g2).toMatchObject({ output_basis: 'max_output_tokens', expected_ms: 1200 });
    // 4 nodes of 1.2 s on 2 slots
    expect(e.total.expected_duration_ms).toBe(2400);
  });

  it('counts nothing for a node without content or one that cannot be read', async () => {
    const { cost, durations } = parts();
    durations.observe('oral-explanation', 10, 50);
    const e = await cost.estimate({ canvasPath: 'c.canvas', groups: [group(['empty', 'gone'])] });
    expect(e.groups[0]).toMatchObject({ nodes: 2, input_tokens: 0, output_tokens: 0, cost_usd: 0 });
    const unknown = parts();
    const e2 = await unknown.cost.estimate({ canvasPath: 'c.canvas', groups: [group(['gone'])] });
    expect(e2.groups[0].output_basis).toBe('max_output_tokens');
  });

  it('says "unknown price" without one', async () => {
    const { cost } = parts(resolveOptions({ vaultRoot: '/v', dataDir: '/d' }));
    const e = await cost.estimate({ canvasPath: 'c.canvas', groups: [group(['a'])] });
    expect(e.price).toBeNull();
    expect(e.groups[0].cost_usd).toBeNull();
    expect(e.total).toMatchObject({ cost_usd: null, price_known: false });
    expect(
      cost.nodeCost('oral-explanation', { canvasPath: 'c', nodeId: 'a', nodeType: 'text', content: 'x' })
        .costUsd,
    ).toBeNull();
  });

  it('estimates each node with the agent a resolver routes it to', async () => {
    const { cost } = parts();
    const plain = await cost.estimate({ canvasPath: 'c.canvas', groups: [group(['a'])] });
    cost.useAgentResolver((_node, agent) => (agent === 'oral-explanation' ? 'basic-decomposition' : agent));
    const routed = await cost.estimate({ canvasPath: 'c.canvas', groups: [group(['a'])] });
    expect(routed.groups[0].agent_type).toBe('oral-explanation');
    expect(routed.groups[0].input_tokens).toBeGreaterThan(plain.groups[0].input_tokens);
  });

  it('checks the request as execute does, and gives the event loop a turn in a large batch', async () => {
    const { cost } = parts();
    await expect(cost.estimate({ canvasPath: 'c.canvas', groups: [group(['a'], 'nope')] })).rejects.toThrow(
      BatchValidationError,
    );
    const many = Array.from({ length: 600 }, (_, i) => `n${i}`);
    const e = await cost.estimate({ canvasPath: 'c.canvas', groups: [group(many)] });
    expect(e.total.nodes).toBe(600);
  });
});

describe('Admission with a budget', () => {
  it('refuses a budget without a price (422), or one that is not a finite amount ≥ 0 (400)', async () => {
    const unpriced = parts(resolveOptions({ vaultRoot: '/v', dataDir: '/d' }));
    await expect(
      unpriced.admission.admit({ canvasPath: 'c.canvas', groups: [group(['a'])], budgetUsd: 1 }),
    ).rejects.toThrow(BudgetWithoutPriceError);
    const { admission, store } = parts();
    for (const budgetUsd of [-1, Number.NaN, Number.POSITIVE_INFINITY])
      await expect(
        admission.admit({ canvasPath: 'c.canvas', groups: [group(['a'])], budgetUsd }),
      ).rejects.toThrow(/budget_usd: must be a finite number/);
    expect(await store.listTasks({ limit: 10 })).toEqual([]);
    const { task } = await admission.admit({
      canvasPath: 'c.canvas',
      groups: [group(['a'])],
      budgetUsd: 0.5,
    });
    expect(task.budgetUsd).toBe(0.5);
  });

  it('takes the budget into the idempotency fingerprint', async () => {
    const { admission } = parts();
    const request = { canvasPath: 'c.canvas', groups: [group(['a'])], idempotencyKey: 'k' };
    await admission.admit({ ...request, budgetUsd: 1 });
    await expect(admission.admit({ ...request, budgetUsd: 2 })).rejects.toThrow(/Idempotency/i);
  });
});

/** A ledger whose settlements fail (Redis gone): the reservation stays open. */
class BrokenSettleLedger extends InMemoryBudgetLedger {
  override settle(): Promise<BudgetAccount> {
    return Promise.reject(new Error('ledger unreachable'));
  }
}

describe('NodeExecution with a budget', () => {
  const ctx = (): JobContext => ({
    signal: new AbortController().signal,
    feedback: { rateLimited: () => undefined, succeeded: () => undefined },
    releaseAgentSlots: () => undefined,
    releaseWriteSlot: () => undefined,
  });
  const job = (nodeId: string, budgetUsd?: number): NodeJob => ({
    taskId: 't',
    groupIndex: 0,
    nodeId,
    agentType: 'oral-explanation',
    expectedMs: 0,
    canvasPath: 'c.canvas',
    deadlineAt: null,
    ...(budgetUsd !== undefined && { budgetUsd }),
  });
  function execution(ledger: BudgetLedger = new InMemoryBudgetLedger()) {
    const p = parts();
    const recorder = new OutcomeRecorder(
      p.store,
      p.log,
      new EventEmitter2(),
      p.durations,
      PRICED,
      new InMemoryGeneratedNodes(),
    );
    const nodes = new NodeExecution(
      p.canvas,
      p.runner,
      recorder,
      p.durations,
      PRICED,
      new InMemoryResultCache(RESULT_CACHE_DEFAULTS),
      new InMemoryGeneratedNodes(),
      new AgentRouter(p.runner),
      ledger,
      p.cost,
      new LocalOutputDeltas(),
    );
    return { ...p, nodes, ledger, runner: p.runner as FakeRunner };
  }

  it('reserves the expected cost, then settles it to the billed one', async () => {
    const { nodes, ledger, cost } = execution();
    const expected =
      cost.nodeCost(
        'oral-explanation',
        await new FakeCanvas().nodeContent({ relPath: 'c', absPath: '' }, 'a'),
      ).costUsd ?? 0;
    const result = await nodes.runJob(job('a', 1), ctx());
    expect(result).toMatchObject({ kind: 'completed', inputTokens: 1000, outputTokens: 100 });
    expect(await ledger.account('t')).toEqual({ spentUsd: (1000 * 3 + 100 * 15) / 1e6, reservedUsd: 0 });
    expect(expected).toBeGreaterThan(0);
    expect(await nodes.budget({ taskId: 't', budgetUsd: 1 })).toMatchObject({
      limit_usd: 1,
      spent_usd: 0.0045,
    });
    expect(await nodes.budget({ taskId: 't', budgetUsd: null })).toBeUndefined();
  });

  it('does not start a node whose expected cost would pass the budget: BUDGET_EXCEEDED, no call', async () => {
    const { nodes, runner, ledger } = execution();
    const result = await nodes.runJob(job('a', 0.001), ctx());
    expect(result).toMatchObject({
      kind: 'failed',
      errorType: 'BUDGET_EXCEEDED',
      attempts: 0,
      inputTokens: 0,
    });
    expect(result.kind === 'failed' && result.errorMessage).toMatch(
      /^not started: its expected cost \$[\d.]+ \(\d+ input \+ 2048 output tokens\) would take the spent \$0 and reserved \$0 past the budget of \$0.001$/,
    );
    expect(runner.calls).toBe(0);
    expect(await ledger.account('t')).toEqual({ spentUsd: 0, reservedUsd: 0 });
  });

  it('settles a failed call at what it billed, releases one that billed nothing', async () => {
    const { nodes, runner, ledger } = execution();
    runner.failWith = new AgentRunError('bad answers', 'AGENT_INVALID_OUTPUT', {
      attempts: 2,
      usage: { inputTokens: 2000, outputTokens: 0 },
    });
    expect(await nodes.runJob(job('a', 1), ctx())).toMatchObject({
      kind: 'failed',
      errorType: 'AGENT_INVALID_OUTPUT',
    });
    expect(await ledger.account('t')).toEqual({ spentUsd: 0.006, reservedUsd: 0 });
    runner.failWith = new Error('connection reset');
    expect(await nodes.runJob(job('b', 1), ctx())).toMatchObject({
      kind: 'failed',
      errorType: 'AGENT_ERROR',
    });
    expect(await ledger.account('t')).toEqual({ spentUsd: 0.006, reservedUsd: 0 });
  });

  it('leaves the reservation open when the ledger cannot settle it; the node still ends', async () => {
    const { nodes, ledger } = execution(new BrokenSettleLedger());
    expect(await nodes.runJob(job('a', 1), ctx())).toMatchObject({ kind: 'completed' });
    expect((await ledger.account('t')).reservedUsd).toBeGreaterThan(0);
  });

  it('reserves nothing for a batch without a budget', async () => {
    const spy: BudgetLedger = new InMemoryBudgetLedger();
    const reserve = jest.spyOn(spy, 'reserve') as jest.SpyInstance<Promise<BudgetReservation>>;
    const { nodes } = execution(spy);
    expect(await nodes.runJob(job('a'), ctx())).toMatchObject({ kind: 'completed' });
    expect(reserve).not.toHaveBeenCalled();
  });
});
