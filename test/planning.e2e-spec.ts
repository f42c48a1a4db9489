import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { type CliIo, EXIT, runCli } from '../src/cli/cli';
import { type FakeLlmServer, startFakeLlm } from './support/fake-llm-server';
import { http, startServer, type TestServer, waitTerminal } from './support/harness';
import { llmEnv, TEST_KEY } from './support/llm-harness';

type Json = Record<string, any>;

const ROUTING_SYSTEM = 'You route a study note';

describe('POST /parallel/plan (offline agents)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, (vault) => {
      // 20,001 nodes: one more than a plan considers
      const nodes = Array.from({ length: 20_001 }, (_, i) => ({
        id: `n${i}`,
        type: 'text',
        text: `note ${i}`,
        x: 0,
        y: i * 10,
        width: 100,
        height: 50,
      }));
      writeFileSync(path.join(vault, 'huge.canvas'), JSON.stringify({ nodes, edges: [] }));
      writeFileSync(
        path.join(vault, 'empty.canvas'),
        JSON.stringify({
          nodes: [
            { id: 'e1', type: 'text', text: '   ', x: 0, y: 0, width: 10, height: 10 },
            { id: 'e2', type: 'group', label: 'G', x: 0, y: 0, width: 10, height: 10 },
          ],
          edges: [],
        }),
      );
    });
  });
  afterAll(() => server.close());

  const plan = (body: unknown) => http<Json>('POST', `${server.url}/parallel/plan`, body);

  it('suggests groups for the Chinese canvas, leaving out the group container and the link, the same every time', async () => {
    const res = await plan({ canvas_path: '数学/微积分.canvas' });
    expect(res.status).toBe(200);
    expect(res.body.canvas_path).toBe('数学/微积分.canvas');
    expect(res.body.left_out).toEqual([
      { node_id: '94e6b0c2d8a1f357', reason: 'group' },
      { node_id: '6d2c8f4b1e7a9035', reason: 'link' },
    ]);
    const planned = (res.body.groups as Json[]).flatMap((g) => g.node_ids as string[]).sort();
    // the five text nodes and the markdown file node
    expect(planned).toEqual(
      [
        '7a3d1f9c0e5b2864',
        'e1c94b7a2f06d358',
        '5b8f2e0d6a4c9173',
        'c0d7a5e39b1f4682',
        '2f5a9d8e4c7b0613',
        'b6e0f3a1d9c82745',
      ].sort(),
    );
    expect(res.body.clustering.k).toBe(res.body.groups.length);
    for (const [i, g] of (res.body.groups as Json[]).entries()) {
      expect(g).toMatchObject({ group_id: `g${i + 1}`, routed_by: 'rules' });
      expect(g.name).toEqual(expect.any(String));
      expect(g.confidence).toBeGreaterThan(0);
      expect(['high', 'normal', 'low']).toContain(g.priority);
    }
    expect(res.body.execute).toEqual({
      canvas_path: '数学/微积分.canvas',
      groups: (res.body.groups as Json[]).map((g) => ({
        group_id: g.group_id,
        agent_type: g.agent_type,
        node_ids: g.node_ids,
      })),
    });
    expect((await plan({ canvas_path: '数学/微积分.canvas' })).body).toEqual(res.body);
  });

  it('plan → execute with auto → every result names its routed agent; results are then left out as generated', async () => {
    const suggested = (await plan({ canvas_path: 'Biology/cells.canvas', max_groups: 3 })).body;
    expect(suggested.groups.length).toBeLessThanOrEqual(3);
    const body = {
      ...suggested.execute,
      groups: (suggested.execute.groups as Json[]).map((g) => ({ ...g, agent_type: 'auto' })),
    };
    const started = await http<Json>('POST', `${server.url}/parallel/execute`, body);
    expect(started.status).toBe(202);
    const status = await waitTerminal(server, started.body.task_id as string);
    expect(status.status).toBe('completed');
    const results = (status.groups as Json[]).flatMap((g) => g.results as Json[]);
    expect(results.length).toBe((suggested.execute.groups as Json[]).flatMap((g) => g.node_ids).length);
    for (const r of results) {
      expect(r.agent_type).toEqual(expect.any(String));
      expect(r.agent_type).not.toBe('auto');
      expect(r.routing).toEqual({ confidence: expect.any(Number), routed_by: 'rules' });
      // the file is named after the routed agent
      expect(r.file_path).toContain(r.agent_type);
    }
    // the node comparing prokaryotes vs. eukaryotes went to comparison-table
    expect(results.find((r) => r.node_id === 'b10c0ffee0000002')?.agent_type).toBe('comparison-table');
    expect((status.groups as Json[]).every((g) => g.agent_type === 'auto')).toBe(true);
    const events = await http<string>(
      'GET',
      `${server.url}/parallel/events/${started.body.task_id}`,
      undefined,
      {
        accept: 'text/event-stream',
      },
    );
    expect(String(events.body)).toMatch(
      /"agent_type":"comparison-table".*"routing":\{"confidence":0\.75,"routed_by":"rules"\}/s,
    );

    const again = await plan({ canvas_path: 'Biology/cells.canvas' });
    const generated = (again.body.left_out as Json[]).filter((l) => l.reason === 'generated');
    expect(generated.length).toBeGreaterThanOrEqual(results.length);
  });

  it('filters by colour and node ids (unknown ids are left out as not_found)', async () => {
    const res = await plan({
      canvas_path: '数学/微积分.canvas',
      node_ids: ['5b8f2e0d6a4c9173', 'b6e0f3a1d9c82745', 'nope'],
      colour: '4',
    });
    expect(res.status).toBe(200);
    expect(res.body.groups).toEqual([expect.objectContaining({ node_ids: ['5b8f2e0d6a4c9173'] })]);
    expect(res.body.clustering).toMatchObject({ k: 1, silhouette: null });
    expect(res.body.left_out).toEqual([
      { node_id: 'b6e0f3a1d9c82745', reason: 'colour' },
      { node_id: 'nope', reason: 'not_found' },
    ]);
  });

  it('refuses bad input with problem+json and changes nothing', async () => {
    const cases: [unknown, number, string][] = [
      [{ canvas_path: 'Nope/missing.canvas' }, 404, 'canvas-not-found'],
      [{ canvas_path: '../outside.canvas' }, 400, 'canvas-path-outside-vault'],
      [{ canvas_path: 'Biology/cells.canvas', max_groups: 0 }, 400, 'validation-failed'],
      [{ canvas_path: 'Biology/cells.canvas', max_groups: 21 }, 400, 'validation-failed'],
      [{ canvas_path: 'Biology/cells.canvas', max_groups: '3' }, 400, 'validation-failed'],
      [{ canvas_path: 'Biology/cells.canvas', colour: 'red' }, 400, 'validation-failed'],
      [{ canvas_path: 'Biology/cells.canvas', extra: 1 }, 400, 'validation-failed'],
      [{ canvas_path: 'empty.canvas' }, 422, 'no-eligible-nodes'],
      [{ canvas_path: 'Biology/cells.canvas', node_ids: ['x', 'y'] }, 422, 'no-eligible-nodes'],
      [{ canvas_path: 'huge.canvas' }, 413, 'canvas-too-large'],
    ];
    for (const [body, status, type] of cases) {
      const res = await plan(body);
      expect({ body, status: res.status, type: res.body.type }).toEqual({
        body,
        status,
        type: `https://canvas-batch.dev/problems/${type}`,
      });
      expect(res.type).toContain('application/problem+json');
    }
    const empty = await plan({ canvas_path: 'empty.canvas' });
    expect(empty.body.detail).toBe('no node of "empty.canvas" can be planned: 1 empty, 1 group');
    expect(empty.body.errors).toEqual([
      { field: 'nodes', message: '1 node(s) left out as empty: e1' },
      { field: 'nodes', message: '1 node(s) left out as group: e2' },
    ]);
    const huge = await plan({ canvas_path: 'huge.canvas' });
    expect(huge.body.detail).toContain('at most 20000');
    // the service still answers
    expect((await plan({ canvas_path: 'Biology/cells.canvas' })).status).toBe(200);
  });
});

/** `runCli` in this process with captured output. */
async function cli(server: TestServer, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: false, columns: 100 });
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const io: CliIo = {
    stdout,
    stderr,
    stdin: new PassThrough(),
    env: { CANVAS_BATCH_URL: server.url },
    onInterrupt: () => () => undefined,
  };
  const code = await runCli(args, io);
  return { code, out, err };
}

describe('CLI: plan and run --auto', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '0' });
  });
  afterAll(() => server.close());

  it('prints the suggested groups, their reasons and the command that runs them; --json prints the answer', async () => {
    const human = await cli(server, ['plan', '数学/微积分.canvas', '--max-groups', '3']);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^GROUP\s+PRIORITY\s+AGENT\s+CONFIDENCE\s+NODES\s+NAME/);
    expect(human.out).toMatch(/^g1: .+ route to /m);
    expect(human.out).toMatch(/^clustering: k=\d+, silhouette /m);
    expect(human.out).toContain('left out: 1 group, 1 link');
    expect(human.out).toMatch(/^run it: canvas-batch run 数学\/微积分\.canvas --agent [a-z-]+ --nodes /m);
    const json = await cli(server, ['plan', '数学/微积分.canvas', '--colour', '4', '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ groups: [{ node_ids: ['5b8f2e0d6a4c9173'] }] });
    const bad = await cli(server, ['plan', '数学/微积分.canvas', '--max-groups', '30']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('max_groups');
  });

  it('run --auto routes every node; --auto with --agent, or neither, is a usage error', async () => {
    const run = await cli(server, ['run', 'Biology/cells.canvas', '--auto', '--wait', '--json']);
    expect(run.code).toBe(EXIT.completed);
    const status = JSON.parse(run.out) as Json;
    expect(status.groups[0].agent_type).toBe('auto');
    expect((status.groups[0].results as Json[]).every((r) => typeof r.routing?.confidence === 'number')).toBe(
      true,
    );
    const both = await cli(server, ['run', 'Biology/cells.canvas', '--auto', '--agent', 'oral-explanation']);
    expect(both).toMatchObject({ code: EXIT.usage });
    expect(both.err).toContain('give --agent or --auto, not both');
    const neither = await cli(server, ['run', 'Biology/cells.canvas']);
    expect(neither.code).toBe(EXIT.usage);
    expect(neither.err).toContain("required option '--agent <type>' not specified");
  });
});

describe('POST /parallel/plan and auto with an LLM provider (fake, real wire)', () => {
  let fake: FakeLlmServer;
  let server: TestServer;
  let failRouting = false;
  beforeAll(async () => {
    fake = await startFakeLlm({
      apiKey: TEST_KEY,
      script: (req) =>
        req.system.startsWith(ROUTING_SYSTEM)
          ? failRouting
            ? { kind: 'status', status: 400, message: 'no' }
            : { kind: 'ok', text: 'memory-anchor' }
          : { kind: 'ok' },
    });
    server = await startServer(llmEnv(fake, 'anthropic'));
  });
  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  it('asks the model about nodes the patterns route below 0.70, and says so', async () => {
    const res = await http<Json>('POST', `${server.url}/parallel/plan`, {
      canvas_path: 'Physics/mechanics.canvas',
    });
    expect(res.status).toBe(200);
    const routed = fake.log.filter((e) => e.system.startsWith(ROUTING_SYSTEM));
    expect(routed.length).toBeGreaterThan(0);
    const byModel = (res.body.groups as Json[]).filter((g) => g.routed_by === 'model');
    expect(byModel.length).toBeGreaterThan(0);
    for (const g of byModel) {
      expect(g.agent_type).toBe('memory-anchor');
      expect(g.reason).toMatch(/chosen by the model/);
    }
  });

  it('auto: a node the patterns are unsure of is routed by the model at run time', async () => {
    const before = fake.log.length;
    const started = await http<Json>('POST', `${server.url}/parallel/execute`, {
      canvas_path: 'Physics/mechanics.canvas',
      groups: [{ group_id: 'a', agent_type: 'auto', node_ids: ['2d7f4a1c9e0b8365'] }],
    });
    expect(started.status).toBe(202);
    const status = await waitTerminal(server, started.body.task_id as string);
    expect(status.groups[0].results[0]).toMatchObject({
      agent_type: 'memory-anchor',
      routing: { confidence: 0.8, routed_by: 'model' },
    });
    const calls = fake.log.slice(before);
    expect(calls.filter((e) => e.system.startsWith(ROUTING_SYSTEM))).toHaveLength(1);
    // the routing call's tokens are billed to the node
    const tokens = calls.reduce((s, e) => s + e.inputTokens, 0);
    expect(status.groups[0].results[0].usage.input_tokens).toBe(tokens);
  });

  it("a failing model never fails the plan: the patterns' routing stands", async () => {
    failRouting = true;
    try {
      const res = await http<Json>('POST', `${server.url}/parallel/plan`, {
        canvas_path: 'Physics/mechanics.canvas',
      });
      expect(res.status).toBe(200);
      expect((res.body.groups as Json[]).every((g) => g.routed_by === 'rules')).toBe(true);
    } finally {
      failRouting = false;
    }
  });
});
