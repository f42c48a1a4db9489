import { readFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import * as path from 'node:path';
import { SseFanout } from '../src/orchestrator/sse-fanout';
import { DELTA_INTERVAL_MS } from '../src/orchestrator/deltas/delta-coalescer';
import { writeGridCanvas } from './support/canvas-fixtures';
import { type FakeLlmServer, startFakeLlm, type Wire } from './support/fake-llm-server';
import { runBatch, startLlmServer, TEST_KEY } from './support/llm-harness';
import {
  http,
  type ReceivedDelta,
  type ReceivedEvent,
  sseClient,
  startServer,
  type TestServer,
  waitTerminal,
} from './support/harness';

type Json = Record<string, any>;
const key = (e: ReceivedEvent) => `${e.id}:${e.event}:${JSON.stringify(e.data)}`;

/** Each node's deltas in arrival order. */
function byNode(deltas: ReceivedDelta[]): Map<string, ReceivedDelta['data'][]> {
  const nodes = new Map<string, ReceivedDelta['data'][]>();
  for (const { data } of deltas) {
    if (!nodes.has(data.node_id)) nodes.set(data.node_id, []);
    nodes.get(data.node_id)!.push(data);
  }
  return nodes;
}

/**
 * `?include=deltas` on a real server with AGENT_STREAM=true and the offline agent streaming its text over its
 * latency, read by real HTTP clients: the deltas come only when asked for, are never replayed, are coalesced, add up
 * to each node's result, and a subscriber that reads nothing holds up neither the batch nor the other subscribers.
 */
describe('task_output_delta (AGENT_STREAM=true, real server, real SSE clients)', () => {
  let server: TestServer;
  let ids: string[][];
  let big: string[][];
  beforeAll(async () => {
    server = await startServer({ AGENT_STREAM: 'true', AGENT_LATENCY_MS: '1200' }, (vault) => {
      ids = writeGridCanvas(vault, 'Test/deltas.canvas', 2, 4);
      // long notes: about 3.4 KB of text per node, so subscribers that read nothing fill their buffers
      big = writeGridCanvas(vault, 'Test/deltas-big.canvas', 4, 30, (g, i) =>
        Array.from(
          { length: 40 },
          (_, k) => `Sentence ${k} of note ${g}-${i} explains how cells divide and grow with mitochondria.`,
        ).join(' '),
      );
    });
  });
  afterAll(() => server.close());

  async function start(canvas: string, groups: string[][], maxConcurrent: number): Promise<string> {
    const res = await http<Json>('POST', `${server.url}/parallel/execute`, {
      canvas_path: canvas,
      groups: groups.map((node_ids, g) => ({ group_id: `g${g}`, agent_type: 'oral-explanation', node_ids })),
      max_concurrent: maxConcurrent,
    });
    expect(res.status).toBe(202);
    return res.body.task_id as string;
  }

  it('sends deltas only to the subscriber that asked; they add up to each result; the events are the same', async () => {
    const taskId = await start('Test/deltas.canvas', ids, 4);
    const url = `${server.url}/parallel/events/${taskId}`;
    const plain = sseClient(url);
    const watcher = sseClient(`${url}?include=deltas`);
    const [plainEvents, events] = await Promise.all([plain.done, watcher.done]);
    expect(await waitTerminal(server, taskId)).toMatchObject({ status: 'completed', completed_nodes: 8 });

    expect(plain.deltas).toEqual([]);
    expect(events.map(key)).toEqual(plainEvents.map(key));
    expect(events.at(-1)!.event).toBe('session_completed');

    const completed = events.filter((e) => e.event === 'task_completed');
    const nodes = byNode(watcher.deltas);
    expect([...nodes.keys()].sort()).toEqual(ids.flat().sort());
    let grew = 0;
    for (const e of completed) {
      const d = e.data.data as { node_id: string; group_id: string; file_path: string; duration_ms: number };
      const deltas = nodes.get(d.node_id)!;
      // contiguous: each starts where the one before ended, from 0
      let offset = 0;
      for (const x of deltas) {
        expect(x).toMatchObject({ type: 'task_output_delta', task_id: taskId, group_id: d.group_id });
        expect(x.offset).toBe(offset);
        offset += x.text.length;
      }
      // coalesced: at most one per DELTA_INTERVAL_MS of the node's agent phase (plus its first and its last)
      expect(deltas.length).toBeLessThanOrEqual(Math.floor(d.duration_ms / DELTA_INTERVAL_MS) + 2);
      if (deltas.length > 1) grew++;
      // the text streamed is the result: the file is its heading and that text
      const file = readFileSync(path.join(server.vault, d.file_path), 'utf8');
      const text = deltas.map((x) => x.text).join('');
      expect(file).toBe(`${file.split('\n\n')[0]}\n\n${text.trim()}\n`);
    }
    // the text grew over several deltas (1.2 s of latency, a delta every 250 ms)
    expect(grew).toBeGreaterThan(0);
  });

  it('never replays a delta: a replay, a resume with Last-Event-ID and a late subscriber get events only', async () => {
    const taskId = await start('Test/deltas.canvas', ids, 8);
    const url = `${server.url}/parallel/events/${taskId}?include=deltas`;
    const live = sseClient(url);
    // a subscriber that leaves after the first completed node, then resumes by id
    const leaver = sseClient(url, { stopWhen: (e) => e.event === 'task_completed' });
    const firstPart = await leaver.done;
    const lastSeen = firstPart.at(-1)!.id;
    const all = await live.done;
    expect(live.deltas.length).toBeGreaterThan(0);
    await waitTerminal(server, taskId);

    const resumed = sseClient(url, { lastEventId: lastSeen });
    const replay = sseClient(url);
    const [rest, replayed] = await Promise.all([resumed.done, replay.done]);
    expect([...firstPart, ...rest].map(key)).toEqual(all.map(key));
    expect(replayed.map(key)).toEqual(all.map(key));
    expect(resumed.deltas).toEqual([]);
    expect(replay.deltas).toEqual([]);
    // events carry ids, deltas none (so an EventSource's Last-Event-ID stays the last event's)
    expect(all.every((e) => Number.isSafeInteger(e.id))).toBe(true);
  });

  it('refuses an unknown include with a problem', async () => {
    const taskId = await start('Test/deltas.canvas', [ids[0].slice(0, 1)], 1);
    const res = await http<Json>('GET', `${server.url}/parallel/events/${taskId}?include=everything`);
    expect(res.status).toBe(400);
    expect(res.type).toMatch(/application\/problem\+json/);
    expect(JSON.stringify(res.body)).toContain('include');
    await waitTerminal(server, taskId);
  });

  /** A raw HTTP client that asks for deltas and reads nothing until `resume()`; then collects what it gets. */
  function pausedClient(url: string): {
    opened: Promise<void>;
    resume(): Promise<{ ids: number[]; deltas: number }>;
  } {
    let response!: IncomingMessage;
    const opened = new Promise<void>((resolve, reject) => {
      httpGet(url, { headers: { accept: 'text/event-stream' } }, (res) => {
        response = res;
        res.pause();
        resolve();
      }).on('error', reject);
    });
    return {
      opened,
      resume: () =>
        new Promise((resolve, reject) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () =>
            resolve({
              ids: [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])),
              deltas: [...text.matchAll(/^event: task_output_delta$/gm)].length,
            }),
          );
          response.on('error', reject);
          response.resume();
        }),
    };
  }

  it('a subscriber that reads nothing stalls neither the batch nor the others, and gets every event when it reads', async () => {
    const taskId = await start('Test/deltas-big.canvas', big, 40);
    const url = `${server.url}/parallel/events/${taskId}?include=deltas`;
    const stalled = Array.from({ length: 5 }, () => pausedClient(url));
    await Promise.all(stalled.map((s) => s.opened));
    const watcher = sseClient(url);
    const events = await watcher.done;
    const final = await waitTerminal(server, taskId, 120_000);
    expect(final).toMatchObject({ status: 'completed', completed_nodes: 120 });
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.event === 'task_completed')).toHaveLength(120);
    // the reading subscriber got every node's text
    expect(byNode(watcher.deltas).size).toBe(120);

    const counts = server.app.get(SseFanout).deltaCounts;
    for (const s of stalled) {
      const got = await s.resume();
      expect(got.ids).toEqual(events.map((e) => e.id));
    }
    // what the stalled ones lost (their delta buffers full), for the record
    process.stdout.write(`output-deltas e2e: deltas sent ${counts.sent}, dropped ${counts.dropped}\n`);
  }, 180_000);
});

describe.each<Wire>(['anthropic', 'openai'])(
  'task_output_delta from an LLM provider streaming over the %s wire (real SDK, fake provider)',
  (wire) => {
    let fake: FakeLlmServer;
    let server: TestServer;
    let ids: string[];
    const words = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    beforeAll(async () => {
      // the answer in 12 text deltas, one event every 100 ms: a stream that takes about 1.5 s
      fake = await startFakeLlm({
        apiKey: TEST_KEY,
        streamChunks: 12,
        streamIntervalMs: 100,
        reply: () => `## Explanation\n\n${words}\n`,
      });
      const started = await startLlmServer(fake, wire, { AGENT_STREAM: 'true' });
      server = started.server;
      ids = started.ids[0].slice(0, 2);
    });
    afterAll(async () => {
      await server.close();
      await fake.close();
    });

    it('streams the provider’s text deltas, coalesced, adding up to the result file', async () => {
      const taskId = await runBatch(server, 'oral-explanation', ids);
      const watcher = sseClient(`${server.url}/parallel/events/${taskId}?include=deltas`);
      const events = await watcher.done;
      expect(await waitTerminal(server, taskId)).toMatchObject({ status: 'completed' });
      expect(fake.log.every((e) => e.stream)).toBe(true);
      const nodes = byNode(watcher.deltas);
      for (const e of events.filter((x) => x.event === 'task_completed')) {
        const d = e.data.data as { node_id: string; file_path: string; duration_ms: number };
        const deltas = nodes.get(d.node_id) ?? [];
        // fewer deltas than the provider's 12 chunks: coalesced
        expect(deltas.length).toBeGreaterThan(0);
        expect(deltas.length).toBeLessThanOrEqual(Math.floor(d.duration_ms / DELTA_INTERVAL_MS) + 2);
        // a subscriber that joined after the node started gets its text from where it joined
        const text = deltas.map((x) => x.text).join('');
        expect(`## Explanation\n\n${words}\n`.endsWith(text)).toBe(true);
        expect(deltas[0].offset + text.length).toBe(`## Explanation\n\n${words}\n`.length);
        const file = readFileSync(path.join(server.vault, d.file_path), 'utf8');
        expect(file).toContain(words);
      }
    });
  },
);
