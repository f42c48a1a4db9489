/**
 * Issue 17, items 3 and 4 against a real service and the fake provider's real wire (Anthropic messages): the
 * estimate (`POST /parallel/estimate`) against the usage the provider then reports, and a budget (`budget_usd`)
 * stopping a batch at the right node.
 *
 * The fake provider counts the tokens it reports with `bpeTokens` below — a stand-in for a BPE tokenizer that splits
 * the text the provider received into GPT-style pre-tokens, independent of the service's per-script heuristic (which
 * counts characters) — so the comparison checks both that the estimate builds the very prompt the run sends and that
 * the heuristic stays within its stated tolerance (25 %).
 */
import { PassThrough } from 'node:stream';
import { type CliIo, EXIT, runCli } from '../src/cli/cli';
import { defaultReply, type FakeLlmServer, startFakeLlm } from './support/fake-llm-server';
import { http, type TestServer, waitTerminal } from './support/harness';
import { startLlmServer } from './support/llm-harness';

type Json = Record<string, any>;

const CANVAS = 'Test/llm.canvas';
const PRICE = { input: 3, output: 15 };
const MAX_OUTPUT = 512;
const TOLERANCE = 0.25;
/** The markdown agents' answer. */
const REPLY =
  '## Explanation\n\nA cell is the smallest unit of life; it takes in energy and divides to grow.';

const TEXTS = [
  '# Mitosis\nMitosis is the part of the cell cycle in which replicated chromosomes are separated into two new nuclei. ' +
    'It is preceded by the S phase of interphase, during which DNA is replicated, and is followed by cytokinesis, ' +
    'which divides the cytoplasm, organelles and cell membrane into two new cells containing roughly equal shares.',
  '# Photosynthesis\nPlants, algae and cyanobacteria convert light energy into chemical energy stored in glucose. ' +
    'The light-dependent reactions take place in the thylakoid membranes and produce ATP and NADPH; the Calvin cycle ' +
    'in the stroma then fixes carbon dioxide into three-carbon sugars.',
  '# Enzymes\nEnzymes are proteins that act as biological catalysts: they lower the activation energy of reactions ' +
    'without being consumed. Temperature, pH and inhibitors change how fast they work.',
  '# 导数\n导数描述函数在某一点附近的变化率。若函数在该点可导，则其图像在该点有切线，切线的斜率就是导数的值。' +
    '求导的基本法则包括和、差、积、商的求导法则以及链式法则，它们是微积分中最常用的工具。',
];
/** The budget group's nodes all say the same: each costs the same, so the budget's cut is exact. */
const SAME =
  '# Osmosis\nOsmosis is the movement of water across a semi-permeable membrane from a region of low solute ' +
  'concentration to one of high solute concentration, until both sides are balanced.';

/**
 * Tokens as a BPE tokenizer of a hosted model roughly counts them: GPT-style pre-tokens (a word with its leading
 * space, up to 3 digits, a run of punctuation, a run of white space), a word of up to 5 letters one token and longer
 * ones one more per 5 letters, punctuation one token per 2 characters, each Han, kana or Hangul character one token.
 */
function bpeTokens(text: string): number {
  let n = 0;
  const pieces =
    /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]| ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+/gu;
  for (const [piece] of text.matchAll(pieces)) {
    const bare = piece.trim();
    if (/^[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]$/u.test(piece)) n += 1;
    else if (/^\p{L}+$/u.test(bare)) n += Math.ceil(bare.length / 5);
    else if (/^\p{N}+$/u.test(bare)) n += 1;
    else if (bare) n += Math.ceil(bare.length / 2);
    else n += 1;
  }
  return Math.max(1, n);
}

const within = (estimate: number, actual: number): boolean =>
  Math.abs(estimate - actual) <= TOLERANCE * actual;

describe('estimate and budget (fake Anthropic provider)', () => {
  let fake: FakeLlmServer;
  let server: TestServer;
  let mixed: string[];
  let same: string[];

  beforeAll(async () => {
    // a fixed answer per output contract: every node of an agent reports the same output tokens
    fake = await startFakeLlm({
      countTokens: bpeTokens,
      reply: (req) => (/OUTPUT CONTRACT: markdown/.test(req.system) ? REPLY : defaultReply(req)),
    });
    const started = await startLlmServer(
      fake,
      'anthropic',
      { AGENT_PRICE_PER_MTOK: `${PRICE.input},${PRICE.output}`, AGENT_MAX_OUTPUT_TOKENS: String(MAX_OUTPUT) },
      { groups: 2, perGroup: 6 },
    );
    server = started.server;
    // writeGridCanvas wrote its default texts: this suite's own go in their place
    const { readFileSync, writeFileSync } = await import('node:fs');
    const file = `${server.vault}/${CANVAS}`;
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Json[] };
    for (const node of doc.nodes) {
      const m = /^g(\d)n(\d)$/.exec(String(node.id));
      if (m) node.text = m[1] === '0' ? (TEXTS[Number(m[2])] ?? SAME) : SAME;
    }
    writeFileSync(file, JSON.stringify(doc, null, 2));
    mixed = started.ids[0].slice(0, TEXTS.length);
    same = started.ids[1];
  });

  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  const estimate = (body: Json) => http<Json>('POST', `${server.url}/parallel/estimate`, body);
  const execute = (body: Json) => http<Json>('POST', `${server.url}/parallel/execute`, body);
  const billed = (nodeIds: readonly string[]) => {
    const calls = fake.log.filter(
      (e) => e.node !== undefined && nodeIds.includes(e.node) && e.status === 200,
    );
    return {
      calls: calls.length,
      input: calls.reduce((n, e) => n + e.inputTokens, 0),
      output: calls.reduce((n, e) => n + e.outputTokens, 0),
    };
  };

  it('estimates each group from the real prompts: within 25 % of the input tokens the provider then reports', async () => {
    const groups = [
      { group_id: 'explain', agent_type: 'oral-explanation', node_ids: mixed },
      { group_id: 'decompose', agent_type: 'basic-decomposition', node_ids: mixed },
    ];
    const before = await estimate({ canvas_path: CANVAS, groups, max_concurrent: 2 });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({
      provider: 'anthropic',
      model: 'fake-model',
      price: { input_per_mtok: PRICE.input, output_per_mtok: PRICE.output },
      concurrency: 2,
      tokens: { method: 'heuristic', tolerance: TOLERANCE },
      total: { nodes: 2 * mixed.length, price_known: true },
    });
    // nothing completed yet: no output tokens and no duration learned, the configured bound instead
    for (const g of before.body.groups as Json[]) {
      expect(g.output_basis).toBe('max_output_tokens');
      expect(g.output_tokens).toBe(MAX_OUTPUT * mixed.length);
      expect(g.expected_ms).toBeNull();
    }
    expect(before.body.total.expected_duration_ms).toBeNull();

    // each group estimated right before it runs: the canvas (a node's neighbours are in its prompt) is as the run sees it
    const measured: { est: Json; reported: ReturnType<typeof billed> }[] = [];
    for (const group of groups) {
      const est = (await estimate({ canvas_path: CANVAS, groups: [group], max_concurrent: 2 })).body
        .groups[0] as Json;
      fake.log.length = 0;
      const run = await execute({ canvas_path: CANVAS, groups: [group], max_concurrent: 2 });
      expect(run.status).toBe(202);
      expect((await waitTerminal(server, run.body.task_id as string, 60_000)).status).toBe('completed');
      measured.push({ est, reported: billed(mixed) });
    }
    const [[e, explain], [d, decompose]] = measured.map((m) => [m.est, m.reported] as const);
    expect([explain.calls, decompose.calls]).toEqual([mixed.length, mixed.length]);
    const ratios = {
      explain: e.input_tokens / explain.input,
      decompose: d.input_tokens / decompose.input,
    };
    process.stdout.write(`estimate/reported input tokens: ${JSON.stringify(ratios)}\n`);
    expect(within(e.input_tokens, explain.input)).toBe(true);
    expect(within(d.input_tokens, decompose.input)).toBe(true);
    // the bound holds: no answer is longer than AGENT_MAX_OUTPUT_TOKENS
    expect(explain.output).toBeLessThanOrEqual(e.output_tokens);

    // now learned: the output tokens nodes reported, and their durations
    const after = await estimate({ canvas_path: CANVAS, groups, max_concurrent: 2 });
    const [e2, d2] = after.body.groups as Json[];
    expect(e2.output_basis).toBe('learned');
    expect(within(e2.output_tokens, explain.output)).toBe(true);
    expect(within(d2.output_tokens, decompose.output)).toBe(true);
    expect(e2.expected_ms).toEqual(expect.any(Number));
    expect(after.body.total.expected_duration_ms).toEqual(expect.any(Number));
    // the cost is the tokens at the price
    const usd = (e2.input_tokens * PRICE.input + e2.output_tokens * PRICE.output) / 1e6;
    expect(e2.cost_usd).toBeCloseTo(usd, 6);
  }, 120_000);

  it('a budget stops the batch at the right node: the first k complete, the rest are BUDGET_EXCEEDED', async () => {
    // one node first, to learn what one of these nodes costs (the estimate's output tokens then are learned too)
    fake.log.length = 0;
    const one = await execute({
      canvas_path: CANVAS,
      groups: [{ group_id: 'one', agent_type: 'memory-anchor', node_ids: [same[0]] }],
    });
    expect((await waitTerminal(server, one.body.task_id as string, 60_000)).status).toBe('completed');
    const unit = billed([same[0]]);
    const actual = (unit.input * PRICE.input + unit.output * PRICE.output) / 1e6;
    // the estimate of a node like it that has no result card beside it yet (same[0] has one now: a neighbour)
    const single = await estimate({
      canvas_path: CANVAS,
      groups: [{ group_id: 'one', agent_type: 'memory-anchor', node_ids: [same[1]] }],
    });
    const expected = single.body.total.cost_usd as number;
    expect(within(expected, actual)).toBe(true);

    // k = 3: three nodes' actual cost, then the fourth's expected cost would pass the budget by half a node
    const k = 3;
    const nodes = same.slice(1);
    const budget = Math.round(((k - 1) * actual + expected + actual / 2) * 1e6) / 1e6;
    fake.log.length = 0;
    const started = await execute({
      canvas_path: CANVAS,
      groups: [{ group_id: 'budget', agent_type: 'memory-anchor', node_ids: nodes }],
      max_concurrent: 1,
      budget_usd: budget,
    });
    expect(started.status).toBe(202);
    const status = await waitTerminal(server, started.body.task_id as string, 60_000);
    expect(status.status).toBe('partial_failure');
    const [group] = status.groups as Json[];
    expect(group.completed_nodes).toBe(k);
    expect((group.results as Json[]).map((r) => r.node_id).sort()).toEqual(nodes.slice(0, k).sort());
    expect((group.errors as Json[]).map((r) => [r.node_id, r.error_type, r.attempts])).toEqual(
      nodes.slice(k).map((id) => [id, 'BUDGET_EXCEEDED', 0]),
    );
    expect((group.errors as Json[])[0].error_message).toMatch(/past the budget of \$/);
    // no provider call for a refused node; what was spent stays within the budget
    expect(billed(nodes).calls).toBe(k);
    expect(status.usage.cost_usd).toBeLessThanOrEqual(budget);
    expect(status.budget).toEqual({
      limit_usd: budget,
      spent_usd: status.usage.cost_usd,
      reserved_usd: 0,
      remaining_usd: Math.round((budget - status.usage.cost_usd) * 1e6) / 1e6,
    });
    // the progress events carried the budget too
    const events = await fetch(`${server.url}/parallel/events/${String(started.body.task_id)}`).then((r) =>
      r.text(),
    );
    const progress = events
      .split('\n')
      .filter((l) => l.startsWith('data: ') && l.includes('"progress_update"'))
      .map((l) => (JSON.parse(l.slice(6)) as Json).data as Json);
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(p.budget.limit_usd).toBe(budget);
      expect(p.budget.spent_usd + p.budget.reserved_usd).toBeLessThanOrEqual(budget + 1e-6);
      expect(p.usage).toEqual(expect.objectContaining({ cost_usd: expect.any(Number) }));
    }
  }, 120_000);

  it('a budget of 0 starts no paid node: the batch fails, nothing is billed', async () => {
    fake.log.length = 0;
    const started = await execute({
      canvas_path: CANVAS,
      groups: [{ group_id: 'zero', agent_type: 'memory-anchor', node_ids: same.slice(0, 2) }],
      budget_usd: 0,
    });
    const status = await waitTerminal(server, started.body.task_id as string, 60_000);
    expect(status.status).toBe('failed');
    expect(status.failed_nodes).toBe(2);
    expect(fake.log).toHaveLength(0);
    expect(status.budget).toMatchObject({ limit_usd: 0, spent_usd: 0, reserved_usd: 0, remaining_usd: 0 });
  });

  it.each([
    [-1, 'budget_usd must not be less than 0'],
    ['5', 'budget_usd must be a number conforming to the specified constraints'],
    [null, 'budget_usd must be a number conforming to the specified constraints'],
    [1e7, 'budget_usd must not be greater than 1000000'],
  ])('refuses budget_usd %p with 400 and changes nothing', async (value, message) => {
    const before = (await http<Json>('GET', `${server.url}/parallel/tasks?limit=100`)).body.tasks.length;
    for (const route of ['execute', 'estimate']) {
      const res = await http<Json>('POST', `${server.url}/parallel/${route}`, {
        canvas_path: CANVAS,
        groups: [{ group_id: 'g', agent_type: 'memory-anchor', node_ids: [same[0]] }],
        budget_usd: value,
      });
      expect(res.status).toBe(400);
      expect(res.type).toContain('application/problem+json');
      expect(res.body.errors).toContainEqual({ field: 'budget_usd', message });
    }
    expect((await http<Json>('GET', `${server.url}/parallel/tasks?limit=100`)).body.tasks.length).toBe(
      before,
    );
  });

  it('estimate: 404 for an unknown canvas, 422 for unknown node ids, 400 for a bad body', async () => {
    const group = { group_id: 'g', agent_type: 'memory-anchor', node_ids: [same[0]] };
    const missing = await estimate({ canvas_path: 'Nope/none.canvas', groups: [group] });
    expect([missing.status, missing.body.type]).toEqual([
      404,
      'https://canvas-batch.dev/problems/canvas-not-found',
    ]);
    const unknown = await estimate({ canvas_path: CANVAS, groups: [{ ...group, node_ids: ['nope'] }] });
    expect([unknown.status, unknown.body.type]).toEqual([
      422,
      'https://canvas-batch.dev/problems/unknown-node-ids',
    ]);
    const badAgent = await estimate({ canvas_path: CANVAS, groups: [{ ...group, agent_type: 'no-such' }] });
    expect(badAgent.status).toBe(400);
    const noGroups = await estimate({ canvas_path: CANVAS, groups: [] });
    expect(noGroups.status).toBe(400);
  });
});

/** `runCli` in this process with captured streams; `tty`: a terminal that answers `key` to a question. */
function cliIo(url: string, tty: boolean, key?: string) {
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: tty, columns: 100 });
  const stdin = Object.assign(new PassThrough(), tty ? { isTTY: true, setRawMode: () => undefined } : {});
  let err = '';
  stderr.on('data', (c: Buffer) => {
    err += c.toString();
    if (key !== undefined && err.endsWith('[y/N] ')) stdin.write(key);
  });
  const io: CliIo = {
    stdout,
    stderr,
    stdin,
    env: { CANVAS_BATCH_URL: url },
    onInterrupt: () => () => undefined,
  };
  return { io, err: () => err };
}

describe('the CLI prints the estimate before it starts a batch that costs money', () => {
  let fake: FakeLlmServer;
  let server: TestServer;
  let ids: string[];

  beforeAll(async () => {
    fake = await startFakeLlm();
    const started = await startLlmServer(
      fake,
      'anthropic',
      { AGENT_PRICE_PER_MTOK: '3,15' },
      { groups: 1, perGroup: 2 },
    );
    server = started.server;
    ids = started.ids[0];
  });

  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  const args = (...extra: string[]) => [
    'run',
    CANVAS,
    '--agent',
    'memory-anchor',
    '--nodes',
    ids.join(','),
    ...extra,
  ];

  it('asks on a terminal: no starts nothing; --yes and --budget start it at once', async () => {
    const declined = cliIo(server.url, true, 'n');
    expect(await runCli(args('--wait'), declined.io)).toBe(EXIT.completed);
    expect(declined.err()).toMatch(
      /estimate: anthropic\/fake-model, \$3 in \/ \$15 out per million tokens, 12 at once \(tokens ±25 %\)\n {2}group 1 memory-anchor: 2 node\(s\), \d+ in \+ 4096 out tokens \(at most\), \$[\d.]+, duration unknown\n {2}total: 2 node\(s\), .*duration unknown\nStart the batch\? \[y\/N\] \nnot started\n$/,
    );
    expect(fake.log).toHaveLength(0);

    const yes = cliIo(server.url, true);
    expect(await runCli(args('--yes', '--budget', '1', '--wait'), yes.io)).toBe(EXIT.completed);
    expect(yes.err()).toContain('  budget: $1\n');
    expect(yes.err()).not.toContain('[y/N]');
    expect(fake.log.filter((e) => e.status === 200)).toHaveLength(2);

    // off a terminal nothing is asked; a budget below the estimate is said so, and refuses the nodes past it
    const piped = cliIo(server.url, false);
    expect(await runCli(args('--budget', '0.000001', '--wait'), piped.io)).toBe(EXIT.failed);
    expect(piped.err()).toContain('(less than the estimate: nodes past it fail with BUDGET_EXCEEDED)');
    expect(await runCli(args('--budget', 'lots'), cliIo(server.url, false).io)).toBe(EXIT.usage);
  });
});

describe('a budget without a price', () => {
  let fake: FakeLlmServer;
  let server: TestServer;
  let ids: string[];

  beforeAll(async () => {
    fake = await startFakeLlm();
    const started = await startLlmServer(fake, 'openai', {}, { groups: 1, perGroup: 2 });
    server = started.server;
    ids = started.ids[0];
  });

  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  it('is refused with 422 budget-without-price; the estimate says "unknown price"', async () => {
    const body = {
      canvas_path: CANVAS,
      groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ids }],
      budget_usd: 1,
    };
    const refused = await http<Json>('POST', `${server.url}/parallel/execute`, body);
    expect(refused.status).toBe(422);
    expect(refused.body.type).toBe('https://canvas-batch.dev/problems/budget-without-price');
    expect(refused.body.errors).toEqual([
      { field: 'budget_usd', message: 'no price is configured (AGENT_PRICE_PER_MTOK)' },
    ]);
    expect(fake.log).toHaveLength(0);
    const estimate = await http<Json>('POST', `${server.url}/parallel/estimate`, body);
    expect(estimate.status).toBe(200);
    expect(estimate.body).toMatchObject({
      provider: 'openai-compatible',
      price: null,
      total: { cost_usd: null, price_known: false, nodes: 2 },
    });
    expect(estimate.body.groups[0].cost_usd).toBeNull();
  });
});
