import { get as httpGet, type IncomingMessage } from 'node:http';
import { writeGridCanvas } from './support/canvas-fixtures';
import {
  http,
  type ReceivedEvent,
  sseClient,
  startServer,
  type TestServer,
  waitTerminal,
} from './support/harness';

type Json = Record<string, any>;
const key = (e: ReceivedEvent) => `${e.id}:${e.event}:${JSON.stringify(e.data)}`;

describe('SSE progress stream (real server, real HTTP clients)', () => {
  let server: TestServer;
  let ids: string[][];
  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '60' }, (vault) => {
      ids = writeGridCanvas(vault, 'Test/sse.canvas', 2, 8);
    });
  });
  afterAll(() => server.close());

  async function start(): Promise<string> {
    const res = await http<Json>('POST', `${server.url}/parallel/execute`, {
      canvas_path: 'Test/sse.canvas',
      groups: ids.map((node_ids, g) => ({ group_id: g, agent_type: 'clarification-path', node_ids })),
      max_concurrent: 2,
    });
    expect(res.status).toBe(202);
    return res.body.task_id as string;
  }

  it('gives early, late and reconnecting subscribers the same gap-free sequence, then ends', async () => {
    const taskId = await start();
    const url = `${server.url}/parallel/events/${taskId}`;
    const early = sseClient(url);
    const second = sseClient(url);
    const dropper = sseClient(url, { stopWhen: (_e, all) => all.length === 5 });
    const firstPart = await dropper.done;
    expect(firstPart.map((e) => e.id)).toEqual([1, 2, 3, 4, 5]);
    const resumed = sseClient(url, { lastEventId: 5 });
    await new Promise((r) => setTimeout(r, 150));
    const late = sseClient(url);
    const viaQuery = sseClient(`${url}?last_event_id=3`);
    const [all, other, rest, lateAll, fromQuery] = await Promise.all([
      early.done,
      second.done,
      resumed.done,
      late.done,
      viaQuery.done,
    ]);

    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));
    expect(all.at(-1)!.event).toBe('session_completed');
    expect(other.map(key)).toEqual(all.map(key));
    expect(lateAll.map(key)).toEqual(all.map(key));
    expect([...firstPart, ...rest].map(key)).toEqual(all.map(key));
    expect(fromQuery.map(key)).toEqual(all.slice(3).map(key));
    for (const e of all) {
      expect(e.data).toMatchObject({
        type: e.event,
        task_id: taskId,
        timestamp: expect.any(String),
        data: expect.any(Object),
      });
    }
    const final = await waitTerminal(server, taskId);
    expect(final.status).toBe('completed');
    expect(final.completed_nodes).toBe(16);
  });

  it('replays a finished task and ends; a header id wins over the query', async () => {
    const taskId = await start();
    await waitTerminal(server, taskId);
    const url = `${server.url}/parallel/events/${taskId}`;
    const replay = sseClient(url);
    const events = await replay.done;
    expect(events.at(-1)!.event).toBe('session_completed');
    const tail = await sseClient(`${url}?last_event_id=1`, { lastEventId: events.length - 1 }).done;
    expect(tail.map((e) => e.id)).toEqual([events.length]);
    const none = await sseClient(url, { lastEventId: events.length }).done;
    expect(none).toEqual([]);
  });

  it('sends SSE headers and an immediate comment', async () => {
    const taskId = await start();
    const client = sseClient(`${server.url}/parallel/events/${taskId}`);
    const headers = await client.headers;
    expect(headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(headers.get('cache-control')).toMatch(/no-cache/);
    expect(headers.get('cache-control')).toMatch(/no-transform/);
    expect(headers.get('x-accel-buffering')).toBe('no');
    await client.done;
    expect(client.comments[0]).toBe('stream open');
  });

  it('a subscriber that disconnects never stops the batch', async () => {
    const taskId = await start();
    const quitter = sseClient(`${server.url}/parallel/events/${taskId}`, {
      stopWhen: (e) => e.event === 'task_completed',
    });
    await quitter.done;
    const final = await waitTerminal(server, taskId);
    expect(final.status).toBe('completed');
    expect(final.completed_nodes).toBe(16);
    const health = await http<Json>('GET', `${server.url}/health`);
    expect(health.body.status).toBe('ok');
  });
});

describe('SSE fan-out to many clients (real server, real sockets)', () => {
  let server: TestServer;
  let ids: string[][];
  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '5' }, (vault) => {
      ids = writeGridCanvas(vault, 'Test/fanout.canvas', 4, 50);
    });
  });
  afterAll(() => server.close());

  /** A raw HTTP client that reads nothing until `resume()`; then collects the event ids until the stream ends. */
  function pausedClient(url: string): { opened: Promise<void>; resume(): Promise<number[]> } {
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
        new Promise<number[]>((resolve, reject) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve([...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))));
          response.on('error', reject);
          response.resume();
        }),
    };
  }

  it('gives 50 watchers and one that reads nothing until the batch is over the same complete sequence', async () => {
    const res = await http<Json>('POST', `${server.url}/parallel/execute`, {
      canvas_path: 'Test/fanout.canvas',
      groups: ids.map((node_ids, g) => ({ group_id: g, agent_type: 'oral-explanation', node_ids })),
      max_concurrent: 12,
    });
    expect(res.status).toBe(202);
    const taskId = res.body.task_id as string;
    const url = `${server.url}/parallel/events/${taskId}`;
    const stalled = pausedClient(url);
    await stalled.opened;
    const watchers = Array.from({ length: 50 }, () => sseClient(url));
    const streams = await Promise.all(watchers.map((w) => w.done));
    const final = await waitTerminal(server, taskId);
    expect(final.status).toBe('completed');
    expect(final.completed_nodes).toBe(200);

    const all = streams[0];
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));
    expect(all.filter((e) => e.event === 'task_completed')).toHaveLength(200);
    expect(all.at(-1)!.event).toBe('session_completed');
    for (const other of streams) expect(other.map(key)).toEqual(all.map(key));

    expect(await stalled.resume()).toEqual(all.map((e) => e.id));
  });
});

describe('API_TOKEN', () => {
  let server: TestServer;
  beforeAll(async () => (server = await startServer({ API_TOKEN: 's3cret-token-0123456789' })));
  afterAll(() => server.close());

  it('protects every route but /health; SSE accepts ?access_token=', async () => {
    expect((await http('GET', `${server.url}/health`)).status).toBe(200);
    const denied = await http<Json>('GET', `${server.url}/parallel/tasks`);
    expect(denied.status).toBe(401);
    expect(denied.type).toContain('application/problem+json');
    expect(
      (await http('GET', `${server.url}/parallel/tasks`, undefined, { authorization: 'Bearer wrong' }))
        .status,
    ).toBe(401);
    const auth = { authorization: 'Bearer s3cret-token-0123456789' };
    expect((await http('GET', `${server.url}/agents`, undefined, auth)).status).toBe(200);
    const res = await http<Json>(
      'POST',
      `${server.url}/parallel/execute`,
      {
        canvas_path: 'Biology/cells.canvas',
        groups: [{ group_id: 1, agent_type: 'memory-anchor', node_ids: ['b10c0ffee0000001'] }],
      },
      auth,
    );
    expect(res.status).toBe(202);
    const blocked = sseClient(`${server.url}/parallel/events/${res.body.task_id}`);
    expect(await blocked.status).toBe(401);
    const events = await sseClient(
      `${server.url}/parallel/events/${res.body.task_id}?access_token=s3cret-token-0123456789`,
    ).done;
    expect(events.at(-1)!.event).toBe('session_completed');
  });
});
