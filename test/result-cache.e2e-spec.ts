import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { type FakeLlmServer, startFakeLlm } from './support/fake-llm-server';
import { http, sseClient, type TestServer } from './support/harness';
import { runToEnd, startLlmServer, TEST_KEY } from './support/llm-harness';

type Json = Record<string, any>;

jest.setTimeout(120_000);

const results = (status: Json): Json[] => status.groups.flatMap((g: Json) => g.results);
const byNode = (status: Json): Map<string, Json> => new Map(results(status).map((r) => [r.node_id, r]));
/** A result file's text without its heading line (the title names the agent and the concept, as before). */
const fileText = (server: TestServer, r: Json): string =>
  readFileSync(path.join(server.vault, r.file_path), 'utf8');

/**
 * The result cache ("never pay twice") end to end: a real server (RESULT_CACHE on, SQLite) on the fake provider
 * speaking the Anthropic wire through the real SDK; the fake's request log counts the provider calls.
 */
describe('result cache: an identical node run again makes no provider call', () => {
  let fake: FakeLlmServer;
  let server: TestServer;
  let ids: string[];

  beforeAll(async () => {
    fake = await startFakeLlm({ apiKey: TEST_KEY });
    const started = await startLlmServer(fake, 'anthropic', { RESULT_CACHE: 'on' });
    server = started.server;
    ids = started.ids[0];
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
  });

  it('a second identical batch: zero provider calls, cached: true, the same content, zero usage', async () => {
    const first = await runToEnd(server, 'oral-explanation', ids);
    expect(first.status).toBe('completed');
    expect(fake.log).toHaveLength(ids.length);
    expect(results(first).some((r) => 'cached' in r)).toBe(false);
    const calls = fake.log.length;

    const second = await runToEnd(server, 'oral-explanation', ids);
    expect(second.status).toBe('completed');
    expect(fake.log).toHaveLength(calls); // not one call more
    const before = byNode(first);
    for (const r of results(second)) {
      expect(r).toMatchObject({ cached: true, attempts: 0, usage: { input_tokens: 0, output_tokens: 0 } });
      // a result file and card of its own, with the same content as the fresh run's
      expect(r.file_path).not.toBe(before.get(r.node_id)!.file_path);
      expect(fileText(server, r)).toBe(fileText(server, before.get(r.node_id)!));
    }
    expect(second.usage).toEqual({ input_tokens: 0, output_tokens: 0 });
    const canvas = JSON.parse(readFileSync(path.join(server.vault, 'Test/llm.canvas'), 'utf8')) as Json;
    for (const r of results(second))
      expect(canvas.nodes.some((n: Json) => n.type === 'file' && n.file === r.file_path)).toBe(true);

    // the events say so too
    const events = await sseClient(`${server.url}/parallel/events/${second.task_id}`).done;
    const completed = events.filter((e) => e.event === 'task_completed');
    expect(completed).toHaveLength(ids.length);
    expect(completed.every((e) => e.data.data.cached === true)).toBe(true);
  });

  it('cache: false calls the provider again; null is refused', async () => {
    const calls = fake.log.length;
    const status = await runToEnd(server, 'oral-explanation', ids, { cache: false });
    expect(status.status).toBe('completed');
    expect(fake.log).toHaveLength(calls + ids.length);
    expect(results(status).some((r) => 'cached' in r)).toBe(false);

    const refused = await http<Json>('POST', `${server.url}/parallel/execute`, {
      canvas_path: 'Test/llm.canvas',
      groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ids }],
      cache: null,
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('cache');
  });

  it('an edited node is a miss; another agent on the same node is a miss', async () => {
    const file = path.join(server.vault, 'Test/llm.canvas');
    const canvas = JSON.parse(readFileSync(file, 'utf8')) as Json;
    const edited = ids[3]; // no edge: no other node's context changes with it
    canvas.nodes.find((n: Json) => n.id === edited).text += ' Edited: mitosis has four phases.';
    writeFileSync(file, JSON.stringify(canvas, null, '\t'));
    const calls = fake.log.length;
    const status = await runToEnd(server, 'oral-explanation', ids);
    expect(status.status).toBe('completed');
    expect(fake.log.slice(calls).map((e) => e.node)).toEqual([edited]);
    const got = byNode(status);
    expect(got.get(edited)).not.toHaveProperty('cached');
    for (const id of ids.filter((i) => i !== edited)) expect(got.get(id)!.cached).toBe(true);

    const other = await runToEnd(server, 'memory-anchor', [ids[2]]);
    expect(fake.log.slice(calls + 1).map((e) => e.node)).toEqual([ids[2]]);
    expect(results(other)[0]).not.toHaveProperty('cached');
  });

  it('DELETE /cache empties it: the next run calls the provider again', async () => {
    const res = await http<Json>('DELETE', `${server.url}/cache`);
    expect(res.status).toBe(200);
    expect(res.body.removed).toBeGreaterThanOrEqual(ids.length + 1);
    const calls = fake.log.length;
    const status = await runToEnd(server, 'oral-explanation', [ids[0]]);
    expect(fake.log).toHaveLength(calls + 1);
    expect(results(status)[0]).not.toHaveProperty('cached');
  });
});
