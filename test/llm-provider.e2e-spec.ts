import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { BatchOrchestrator } from '../src/orchestrator/batch-orchestrator.service';
import { type FakeLlmServer, type RequestLogEntry, startFakeLlm, type Wire } from './support/fake-llm-server';
import { http, readCanvas, sseClient, type TestServer, waitTerminal } from './support/harness';
import { runBatch, runToEnd, startLlmServer, TEST_KEY } from './support/llm-harness';

type Json = Record<string, any>;

/** Requests per node, in arrival order. */
function byNode(log: RequestLogEntry[]): Map<string, RequestLogEntry[]> {
  const m = new Map<string, RequestLogEntry[]>();
  for (const e of log) m.set(e.node ?? '?', [...(m.get(e.node ?? '?') ?? []), e]);
  return m;
}

// Each test takes about a second; on a loaded 2-core CI machine (Neo4j and other suites beside it) a few need more
// than Jest's default 30 s before a retry schedule plays out.
jest.setTimeout(90_000);

const results = (status: Json): Json[] => status.groups.flatMap((g: Json) => g.results);
const errors = (status: Json): Json[] => status.groups.flatMap((g: Json) => g.errors);

describe.each<[Wire, boolean]>([
  ['anthropic', false],
  ['anthropic', true],
  ['openai', false],
  ['openai', true],
  ['google', false],
  ['google', true],
])('LLM provider over the %s wire format (stream: %s), real SDK against the fake server', (wire, stream) => {
  let fake: FakeLlmServer;
  let server: TestServer;
  let ids: string[];

  beforeAll(async () => {
    fake = await startFakeLlm({ apiKey: TEST_KEY, latencyMs: { min: 5, max: 30 } });
    const started = await startLlmServer(fake, wire, { AGENT_STREAM: String(stream) });
    server = started.server;
    ids = started.ids[0];
  });
  afterAll(async () => {
    await server.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.log.length = 0;
    fake.configure({ script: undefined, apiKey: TEST_KEY });
  });

  it('completes a batch with one real call per node; usage totals equal what the server reported', async () => {
    const status = await runToEnd(server, 'oral-explanation', ids);
    expect(status.status).toBe('completed');
    expect(fake.log).toHaveLength(ids.length);
    expect(fake.log.every((e) => e.status === 200 && e.stream === stream && e.wire === wire)).toBe(true);
    expect(fake.log.every((e) => e.credential === TEST_KEY)).toBe(true);
    // the prompt: the template, the language rule, the output contract; the node with its surroundings
    const first = fake.log.find((e) => e.node === ids[0])!;
    expect(first.system).toContain('professor');
    expect(first.system).toContain("Answer in the language of the node's content (here: English)");
    expect(first.system).toContain('OUTPUT CONTRACT: markdown');
    expect(first.prompt).toContain('Concept number 0 of group 0');
    expect(first.prompt).toContain('Group: First row');
    expect(first.prompt).toContain('- # Topic 0-1 Concept number 1 of group 0');
    const sum = (k: 'inputTokens' | 'outputTokens'): number => fake.log.reduce((a, e) => a + e[k], 0);
    expect(status.usage).toEqual({ input_tokens: sum('inputTokens'), output_tokens: sum('outputTokens') });
    for (const r of results(status)) {
      const entry = fake.log.find((e) => e.node === r.node_id)!;
      expect(r.usage).toEqual({ input_tokens: entry.inputTokens, output_tokens: entry.outputTokens });
      expect(r.attempts).toBe(1);
      const file = readFileSync(path.join(server.vault, r.file_path as string), 'utf8');
      expect(file).toContain('A short explanation of the concept.');
    }
  });

  it('waits out a 429 exactly as long as Retry-After says, then succeeds (attempts: 2)', async () => {
    fake.configure({
      script: (req) =>
        req.headers['x-canvas-batch-attempt'] === '1'
          ? { kind: 'status', status: 429, headers: { 'retry-after': '1' } }
          : { kind: 'ok' },
    });
    const status = await runToEnd(server, 'oral-explanation', ids);
    expect(status.status).toBe('completed');
    for (const [node, reqs] of byNode(fake.log)) {
      expect(reqs.map((r) => r.status)).toEqual([429, 200]);
      // the second try starts no earlier than Retry-After after the 429 was answered
      expect(reqs[1].arrivedAt - reqs[0].closedAt!).toBeGreaterThanOrEqual(1000 - 5);
      expect(results(status).find((r) => r.node_id === node)?.attempts).toBe(2);
    }
  });

  it('retries a 500, then succeeds', async () => {
    fake.configure({
      script: (req) =>
        req.headers['x-canvas-batch-attempt'] === '1' ? { kind: 'status', status: 500 } : { kind: 'ok' },
    });
    const status = await runToEnd(server, 'oral-explanation', ids.slice(0, 2));
    expect(status.status).toBe('completed');
    expect(fake.log.map((e) => e.status).sort()).toEqual([200, 200, 500, 500]);
    expect(results(status).map((r) => r.attempts)).toEqual([2, 2]);
  });

  it('fails fast on 401 without a retry (AGENT_AUTH_FAILED) and never echoes the key', async () => {
    fake.configure({ apiKey: 'another-key' });
    const status = await runToEnd(server, 'oral-explanation', ids.slice(0, 2));
    expect(status.status).toBe('failed');
    expect(fake.log).toHaveLength(2);
    for (const e of errors(status)) {
      expect(e.error_type).toBe('AGENT_AUTH_FAILED');
      expect(e.attempts).toBe(1);
    }
    expect(JSON.stringify(status)).not.toContain(TEST_KEY);
  });
});

describe('LLM provider: timeouts, cancel, deadline (every wire format)', () => {
  let fake: FakeLlmServer;
  beforeAll(async () => {
    fake = await startFakeLlm({ apiKey: TEST_KEY });
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.log.length = 0;
    fake.configure({ script: undefined, capacity: undefined });
  });

  it.each<Wire>(['anthropic', 'openai', 'google'])(
    '%s: a hung request hits AGENT_TIMEOUT_MS and the connection is closed',
    async (wire) => {
      const { server, ids } = await startLlmServer(fake, wire, { AGENT_TIMEOUT_MS: '800' });
      try {
        fake.configure({ script: () => ({ kind: 'hang' }) });
        const status = await runToEnd(server, 'oral-explanation', ids[0].slice(0, 2));
        expect(errors(status).map((e) => e.error_type)).toEqual(['AGENT_TIMEOUT', 'AGENT_TIMEOUT']);
        await fake.idle();
        expect(fake.log).toHaveLength(2);
        expect(fake.log.every((e) => e.clientClosed && e.status === 0)).toBe(true);
      } finally {
        await server.close();
      }
    },
  );

  it.each<Wire>(['anthropic', 'openai', 'google'])(
    '%s: with AGENT_ATTEMPT_TIMEOUT_MS a hung call is aborted on the wire and retried (a timeout is transient)',
    async (wire) => {
      // long enough for the second (answered) attempt on a loaded machine, short beside the 120 s node timeout
      const { server, ids } = await startLlmServer(fake, wire, { AGENT_ATTEMPT_TIMEOUT_MS: '2000' });
      try {
        fake.configure({
          script: (req) =>
            req.headers['x-canvas-batch-attempt'] === '1' ? { kind: 'hang' } : { kind: 'ok' },
        });
        const status = await runToEnd(server, 'oral-explanation', ids[0].slice(0, 2));
        expect(status.status).toBe('completed');
        expect(results(status).map((r) => r.attempts)).toEqual([2, 2]);
        for (const reqs of byNode(fake.log).values()) {
          expect(reqs[0]).toMatchObject({ clientClosed: true, status: 0 });
          expect(reqs[1].status).toBe(200);
        }
      } finally {
        await server.close();
      }
    },
  );

  it.each<Wire>(['anthropic', 'openai', 'google'])(
    '%s: a stream that stalls after its first events hits AGENT_TIMEOUT_MS too',
    async (wire) => {
      const { server, ids } = await startLlmServer(fake, wire, {
        AGENT_TIMEOUT_MS: '800',
        AGENT_STREAM: 'true',
      });
      try {
        fake.configure({ script: () => ({ kind: 'stall' }) });
        const status = await runToEnd(server, 'oral-explanation', ids[0].slice(0, 2));
        expect(errors(status).map((e) => e.error_type)).toEqual(['AGENT_TIMEOUT', 'AGENT_TIMEOUT']);
        await fake.idle();
        expect(fake.log.every((e) => e.clientClosed && e.status === 200 && e.stream)).toBe(true);
      } finally {
        await server.close();
      }
    },
  );

  it.each<Wire>(['anthropic', 'openai', 'google'])(
    '%s: cancel-abort closes the in-flight connections (the server sees them close)',
    async (wire) => {
      const { server, ids } = await startLlmServer(fake, wire);
      try {
        fake.configure({ script: () => ({ kind: 'hang' }) });
        const taskId = await runBatch(server, 'oral-explanation', ids[0]);
        while (fake.inFlight < ids[0].length) await new Promise((r) => setTimeout(r, 10));
        const cancel = await http('DELETE', `${server.url}/parallel/cancel/${taskId}?mode=abort`);
        expect(cancel.status).toBe(200);
        await fake.idle();
        expect(fake.log).toHaveLength(ids[0].length);
        expect(fake.log.every((e) => e.clientClosed)).toBe(true);
        const status = await waitTerminal(server, taskId);
        expect(status.status).toBe('cancelled');
      } finally {
        await server.close();
      }
    },
  );

  it.each<Wire>(['anthropic', 'openai', 'google'])(
    '%s: never sleeps for a retry past the batch deadline (Retry-After longer than the time left)',
    async (wire) => {
      const { server, ids } = await startLlmServer(fake, wire, { AGENT_TIMEOUT_MS: '3600000' });
      try {
        fake.configure({ script: () => ({ kind: 'status', status: 429, headers: { 'retry-after': '90' } }) });
        const t0 = Date.now();
        const status = await runToEnd(server, 'oral-explanation', ids[0].slice(0, 2), { timeout: 60 });
        expect(Date.now() - t0).toBeLessThan(60_000); // decided at once, not after sleeping into the deadline
        expect(fake.log).toHaveLength(2);
        for (const e of errors(status)) {
          expect(e.error_type).toBe('RATE_LIMITED');
          expect(e.error_message).toMatch(/would pass the deadline/);
          expect(e.attempts).toBe(1);
        }
      } finally {
        await server.close();
      }
    },
  );

  it.each<Wire>(['anthropic', 'openai', 'google'])(
    '%s: the batch deadline aborts the in-flight requests on the wire',
    async (wire) => {
      const { server, ids } = await startLlmServer(fake, wire, { AGENT_TIMEOUT_MS: '3600000' });
      try {
        fake.configure({ script: () => ({ kind: 'hang' }) });
        // in-process callers may give a deadline below HTTP's 60 s minimum
        const orchestrator = server.app.get(BatchOrchestrator);
        const { task } = await orchestrator.submit({
          canvasPath: 'Test/llm.canvas',
          groups: [{ groupId: 'g', agentType: 'oral-explanation', nodeIds: ids[0].slice(0, 3) }],
          timeoutMs: 700,
        });
        await orchestrator.waitForCompletion(task.taskId);
        await fake.idle();
        expect(fake.log).toHaveLength(3);
        expect(fake.log.every((e) => e.clientClosed && e.status === 0)).toBe(true);
        const status = await waitTerminal(server, task.taskId);
        expect(errors(status).map((e) => e.error_type)).toEqual(['TIMEOUT', 'TIMEOUT', 'TIMEOUT']);
      } finally {
        await server.close();
      }
    },
  );

  it('random 5xx and malformed bodies (30 % + 20 % of answers) are retried: no node is lost', async () => {
    const { server, ids } = await startLlmServer(fake, 'openai', {}, { groups: 1, perGroup: 20 });
    try {
      fake.configure({ errorRate: 0.3, malformedRate: 0.2, seed: 42 });
      const status = await runToEnd(server, 'oral-explanation', ids[0]);
      expect(status.status).toBe('completed');
      const statuses = fake.log.map((e) => e.behaviour);
      expect(statuses).toContain('status'); // the random 500s
      expect(statuses).toContain('malformed-json');
      const attempts = results(status).reduce((a, r) => a + (r.attempts as number), 0);
      expect(attempts).toBe(fake.log.length);
      expect(attempts).toBeGreaterThan(20);
    } finally {
      fake.configure({ errorRate: 0, malformedRate: 0 });
      await server.close();
    }
  });

  it('retry-after-ms (OpenAI) is honoured too, and 5xx retries stop at AGENT_MAX_ATTEMPTS', async () => {
    const { server, ids } = await startLlmServer(fake, 'openai', { AGENT_MAX_ATTEMPTS: '3' });
    try {
      fake.configure({
        script: (req) =>
          req.headers['x-canvas-batch-node'] === ids[0][0]
            ? { kind: 'status', status: 503 }
            : req.headers['x-canvas-batch-attempt'] === '1'
              ? { kind: 'status', status: 429, headers: { 'retry-after-ms': '300' } }
              : { kind: 'ok' },
      });
      const status = await runToEnd(server, 'oral-explanation', ids[0].slice(0, 2));
      const nodes = byNode(fake.log);
      expect(nodes.get(ids[0][0])!.map((e) => e.status)).toEqual([503, 503, 503]);
      expect(errors(status)).toEqual([
        expect.objectContaining({ node_id: ids[0][0], error_type: 'AGENT_PROVIDER_ERROR', attempts: 3 }),
      ]);
      const second = nodes.get(ids[0][1])!;
      expect(second.map((e) => e.status)).toEqual([429, 200]);
      expect(second[1].arrivedAt - second[0].closedAt!).toBeGreaterThanOrEqual(300 - 5);
    } finally {
      await server.close();
    }
  });

  it('a 400 fails fast as AGENT_BAD_REQUEST; a malformed body and a reset connection are retried', async () => {
    const { server, ids } = await startLlmServer(fake, 'anthropic');
    try {
      const [a, b, c] = ids[0];
      fake.configure({
        script: (req) => {
          const node = req.headers['x-canvas-batch-node'];
          const first = req.headers['x-canvas-batch-attempt'] === '1';
          if (node === a) return { kind: 'status', status: 400, message: 'bad model' };
          if (node === b && first) return { kind: 'malformed-json' };
          if (node === c && first) return { kind: 'reset' };
          return { kind: 'ok' };
        },
      });
      const status = await runToEnd(server, 'oral-explanation', [a, b, c]);
      expect(errors(status)).toEqual([
        expect.objectContaining({ node_id: a, error_type: 'AGENT_BAD_REQUEST', attempts: 1 }),
      ]);
      expect(Object.fromEntries(results(status).map((r) => [r.node_id, r.attempts]))).toEqual({
        [b]: 2,
        [c]: 2,
      });
    } finally {
      await server.close();
    }
  });
});

describe('adaptive concurrency (AIMD) against a provider with a capacity', () => {
  it('drops the effective limit on 429s, shows it in progress_update and status, and loses no node', async () => {
    const fake = await startFakeLlm({ capacity: 2, retryAfterMs: 100, latencyMs: { min: 40, max: 60 } });
    const { server, ids } = await startLlmServer(
      fake,
      'openai',
      { GLOBAL_MAX_CONCURRENT: '8' },
      {
        groups: 1,
        perGroup: 24,
      },
    );
    try {
      const taskId = await runBatch(server, 'oral-explanation', ids[0], { max_concurrent: 8 });
      const sse = sseClient(`${server.url}/parallel/events/${taskId}`);
      const events = await sse.done;
      const status = await waitTerminal(server, taskId);
      expect(status.status).toBe('completed');
      expect(fake.log.some((e) => e.status === 429)).toBe(true);
      const limits = events
        .filter((e) => e.event === 'progress_update')
        .map((e) => e.data.data.concurrency_limit as number);
      expect(limits.length).toBeGreaterThan(0);
      expect(Math.min(...limits)).toBeLessThan(8);
      expect(status.performance_metrics.concurrency_limit).toBeGreaterThanOrEqual(1);
      expect(status.performance_metrics.concurrency_limit).toBeLessThanOrEqual(8);
    } finally {
      await server.close();
      await fake.close();
    }
  });
});

describe('structured outputs: valid, malformed-then-valid, always malformed (per structured agent)', () => {
  const STRUCTURED = [
    'basic-decomposition',
    'deep-decomposition',
    'question-decomposition',
    'verification-question-agent',
    'scoring-agent',
    'hint-generation',
  ];
  let fake: FakeLlmServer;
  let server: TestServer;
  let ids: string[];
  beforeAll(async () => {
    fake = await startFakeLlm();
    const started = await startLlmServer(
      fake,
      'anthropic',
      { AGENT_PRICE_PER_MTOK: '3,15' },
      { groups: 1, perGroup: 3 },
    );
    server = started.server;
    ids = started.ids[0];
  });
  afterAll(async () => {
    await server.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.log.length = 0;
  });

  it.each(STRUCTURED)(
    '%s: a valid answer is accepted; the request carried its JSON schema',
    async (agent) => {
      fake.configure({ script: undefined });
      const status = await runToEnd(server, agent, ids.slice(0, 1));
      expect(status.status).toBe('completed');
      expect(results(status)[0].attempts).toBe(1);
      const [req] = fake.log;
      const kind = agent === 'scoring-agent' ? 'score' : agent === 'hint-generation' ? 'hint' : 'questions';
      expect(req.system).toContain(`OUTPUT CONTRACT: ${kind}`);
      expect(req.system).toContain('JSON Schema');
      // the optional cost estimate from the configured price table
      expect(status.usage).toEqual({
        input_tokens: req.inputTokens,
        output_tokens: req.outputTokens,
        cost_usd: Math.round(((req.inputTokens * 3 + req.outputTokens * 15) / 1e6) * 1e6) / 1e6,
      });
      const file = readFileSync(path.join(server.vault, results(status)[0].file_path as string), 'utf8');
      // the structured output reached the canvas as nodes (question cards, a score card, a hint card)
      const onCanvas = JSON.stringify(readCanvas(server.vault, 'Test/llm.canvas').nodes);
      expect(onCanvas).toContain(
        agent === 'scoring-agent'
          ? 'Accurate; add an example.'
          : agent === 'hint-generation'
            ? 'Look at its parts.'
            : 'How would you test it?',
      );
      if (agent === 'scoring-agent') expect(file).toContain('65 / 100');
      else if (agent === 'hint-generation') expect(file).toContain('Look at its parts.');
      else expect(file).toContain('1. What is it made of?');
    },
  );

  it.each(STRUCTURED)('%s: a malformed answer is asked for once more, then accepted', async (agent) => {
    fake.configure({
      script: (req) =>
        req.headers['x-canvas-batch-attempt'] === '1'
          ? {
              kind: 'ok',
              text: agent === 'scoring-agent' ? '{"breakdown": {"accuracy": 99}}' : 'Sure! Here you go.',
            }
          : { kind: 'ok' },
    });
    const status = await runToEnd(server, agent, ids.slice(0, 1));
    expect(status.status).toBe('completed');
    expect(results(status)[0].attempts).toBe(2);
    // both answers were billed
    const sum = fake.log.reduce((a, e) => a + e.outputTokens, 0);
    expect(status.usage.output_tokens).toBe(sum);
    expect(fake.log).toHaveLength(2);
  });

  it.each(STRUCTURED)(
    '%s: always malformed fails the node with AGENT_INVALID_OUTPUT after two answers',
    async (agent) => {
      fake.configure({ script: () => ({ kind: 'ok', text: '{"unexpected": true}' }) });
      const status = await runToEnd(server, agent, ids.slice(0, 2));
      expect(status.status).toBe('failed');
      expect(errors(status)).toHaveLength(2);
      for (const e of errors(status)) {
        expect(e).toMatchObject({ error_type: 'AGENT_INVALID_OUTPUT', attempts: 2 });
        expect(e.usage.output_tokens).toBeGreaterThan(0);
      }
      expect(fake.log).toHaveLength(4);
    },
  );
});
