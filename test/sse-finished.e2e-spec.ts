import type { IncomingMessage } from 'node:http';
import { EventSource } from 'eventsource';
import { TASK_EVENT_TYPES } from '../src/session';
import { chromiumPath, launchBrowser, type TestBrowser } from './support/browser';
import { writeGridCanvas } from './support/canvas-fixtures';
import {
  http,
  type ReceivedEvent,
  sseClient,
  startServer,
  type TestServer,
  waitTerminal,
} from './support/harness';

/**
 * A finished task's stream stops for real EventSource clients: after the replay ends, their reconnect (with
 * Last-Event-ID = the last event) is answered 204 No Content, which per the HTML standard closes the EventSource
 * (readyState CLOSED) instead of reconnecting forever. Checked with the `eventsource` package (the browsers' rules)
 * and with Chromium's own EventSource; the server counts the connections to the route.
 */
const executable = chromiumPath();
if (!executable) {
  process.stderr.write(
    'SSE Chromium test SKIPPED: Chromium not found (apt-get install -y chromium, or set CHROMIUM_PATH)\n',
  );
}
/** Named events an EventSource listens to (`error` is also its own failure event: none in these batches). */
const NAMES = TASK_EVENT_TYPES.filter((t) => t !== 'error');
const CLOSED = 2;

interface Seen {
  id: number;
  type: string;
}

describe('SSE of a finished task: reconnects end with 204', () => {
  jest.setTimeout(60_000);
  let server: TestServer;
  let ids: string[][];
  /** Requests to /parallel/events/… by path (without the query). */
  const requests = new Map<string, number>();

  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '10' }, (vault) => {
      ids = writeGridCanvas(vault, 'Test/finished.canvas', 2, 3);
    });
    server.app.getHttpServer().on('request', (req: IncomingMessage) => {
      const route = (req.url ?? '').split('?')[0];
      if (route.startsWith('/parallel/events/')) requests.set(route, (requests.get(route) ?? 0) + 1);
    });
  });
  afterAll(() => server?.close());

  /** A batch run to completion; its events route and its whole log (read once, without an id). */
  async function finishedTask(): Promise<{ route: string; url: string; log: ReceivedEvent[] }> {
    const res = await http<Record<string, unknown>>('POST', `${server.url}/parallel/execute`, {
      canvas_path: 'Test/finished.canvas',
      groups: ids.map((node_ids, g) => ({ group_id: g, agent_type: 'clarification-path', node_ids })),
    });
    expect(res.status).toBe(202);
    const taskId = res.body.task_id as string;
    expect((await waitTerminal(server, taskId)).status).toBe('completed');
    const route = `/parallel/events/${taskId}`;
    const url = `${server.url}${route}`;
    const log = await sseClient(url).done;
    expect(log.map((e) => e.id)).toEqual(log.map((_, i) => i + 1));
    expect(log.at(-1)!.event).toBe('session_completed');
    requests.delete(route); // count the clients under test only
    return { route, url, log };
  }

  /** Resolves once `check` holds (polled; generous bound, no timing asserted). */
  async function until(check: () => boolean, what: string): Promise<void> {
    for (let waited = 0; !check(); waited += 50) {
      if (waited > 30_000) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('the `eventsource` package gets the whole log once, then 204 and CLOSED: 2 connections', async () => {
    const { route, url, log } = await finishedTask();
    const es = new EventSource(url);
    const seen: Seen[] = [];
    const failures: (number | undefined)[] = [];
    for (const name of NAMES) {
      es.addEventListener(name, (e) => seen.push({ id: Number(e.lastEventId), type: e.type }));
    }
    es.addEventListener('error', (e) => failures.push(e.code));
    try {
      await until(() => es.readyState === CLOSED, 'the EventSource to close');
    } finally {
      es.close();
    }
    expect(seen).toEqual(log.map((e) => ({ id: e.id, type: e.event })));
    // the ended replay (a reconnect is scheduled: no code), then the reconnect's 204
    expect(failures).toEqual([undefined, 204]);
    expect(requests.get(route)).toBe(2);
  });

  it('a resume below the last event replays the rest (200); at the last one it is 204 without a body', async () => {
    const { url, log } = await finishedTask();
    const n = log.length;
    const rest = sseClient(url, { lastEventId: n - 2 });
    expect(await rest.status).toBe(200);
    expect((await rest.done).map((e) => e.id)).toEqual([n - 1, n]);
    const fromQuery = sseClient(`${url}?last_event_id=${n - 1}`);
    expect(await fromQuery.status).toBe(200);
    expect((await fromQuery.done).map((e) => e.id)).toEqual([n]);

    const resumes: [string, Record<string, string>][] = [
      ['', { 'last-event-id': String(n) }],
      ['', { 'last-event-id': String(n + 5) }],
      [`?last_event_id=${n}`, {}],
    ];
    for (const [query, headers] of resumes) {
      const res = await fetch(`${url}${query}`, { headers: { accept: 'text/event-stream', ...headers } });
      expect(res.status).toBe(204);
      expect(res.headers.get('content-type')).toBeNull();
      expect(await res.text()).toBe('');
    }
    // the header wins over the query, as for any resume
    const headerWins = sseClient(`${url}?last_event_id=${n}`, { lastEventId: n - 1 });
    expect(await headerWins.status).toBe(200);
    expect((await headerWins.done).map((e) => e.id)).toEqual([n]);
    // a first connection (no id) still gets the whole replay; an unknown task is still 404
    expect((await sseClient(url).done).map((e) => e.id)).toEqual(log.map((e) => e.id));
    const unknown = await fetch(`${server.url}/parallel/events/00000000-0000-4000-8000-000000000000`, {
      headers: { 'last-event-id': '1' },
    });
    expect(unknown.status).toBe(404);
  });

  (executable ? describe : describe.skip)("Chromium's EventSource", () => {
    let browser: TestBrowser;
    beforeAll(async () => {
      browser = await launchBrowser(executable!);
    });
    afterAll(() => browser?.close());

    it('gets the whole log once, then its reconnect gets 204 and it is CLOSED: 2 connections', async () => {
      const { route, url, log } = await finishedTask();
      const page = await browser.context.newPage();
      await page.goto(`${server.url}/health`); // same origin as the stream
      const result = await page.evaluate(
        ({ url, names }) =>
          new Promise<{ seen: Seen[]; state: number; errors: number }>((resolve) => {
            type Es = {
              readyState: number;
              onerror: () => void;
              addEventListener(type: string, cb: (e: { lastEventId: string; type: string }) => void): void;
              close(): void;
            };
            const Ctor = (globalThis as unknown as { EventSource: new (u: string) => Es }).EventSource;
            const es = new Ctor(url);
            const seen: Seen[] = [];
            let errors = 0;
            for (const name of names) {
              es.addEventListener(name, (e) => seen.push({ id: Number(e.lastEventId), type: e.type }));
            }
            es.onerror = () => {
              errors++;
              // CLOSED: it gave up (the fix); a few reconnects in a row: it never will (the bug)
              if (es.readyState === 2 || errors > 3) {
                const state = es.readyState;
                es.close();
                resolve({ seen, state, errors });
              }
            };
          }),
        { url, names: NAMES },
      );
      await page.close();
      expect(result.seen).toEqual(log.map((e) => ({ id: e.id, type: e.event })));
      expect(result.state).toBe(CLOSED);
      expect(result.errors).toBe(2);
      expect(requests.get(route)).toBe(2);
    });
  });
});

if (!executable && process.env.REQUIRE_SERVICES === '1') {
  it('Chromium is installed (REQUIRE_SERVICES=1)', () => {
    throw new Error(
      'Chromium is required (REQUIRE_SERVICES=1): apt-get install -y chromium, or set CHROMIUM_PATH',
    );
  });
}
