import * as path from 'node:path';
import type { Page } from 'playwright-core';
import type { DeliveryReceipt, MemoryEventDraft, RecalledMemoryEvent } from '../src/memory';
import { MemoryOutbox, MemoryStore } from '../src/memory';
import {
  chromiumPath,
  DOCS_SCREENSHOT_DIR,
  launchBrowser,
  recordCspViolations,
  SCREENSHOT_DIR,
  type TestBrowser,
  UPDATE_DOCS_SCREENSHOTS,
} from './support/browser';
import { ajv, OPENAPI_ID, validator } from './support/contract';
import { http, startServer, type TestServer, waitTerminal } from './support/harness';
import { describeWithService, neo4jFromEnv, reachableSync } from './support/neo4j';
import { freePort } from './support/service-process';

type Json = Record<string, any>;
/** The page's DOM inside `page.evaluate` callbacks (this project compiles without the DOM lib). */
declare const window: any;

/**
 * "What the system now remembers" (issue 18 item 3): after a batch, `GET /parallel/status/{task_id}/memory` lists each
 * node's concept with its learning events, read back from the store (embedded always, Neo4j when NEO4J_URI is
 * reachable); a store that is down or hangs gives the outbox's view, saying so; bad input is problem+json; and the
 * dashboard's task page shows the same in real Chromium.
 */

const CANVAS = 'Biology/cells.canvas';
const [N1, N2, N3] = ['b10c0ffee0000001', 'b10c0ffee0000002', '4e0b7a91c2d35f68'];
const BATCH = {
  canvas_path: CANVAS,
  groups: [
    { group_id: 'explain', agent_type: 'oral-explanation', node_ids: [N1, N2] },
    { group_id: 'anchor', agent_type: 'memory-anchor', node_ids: [N3] },
    { group_id: 'score', agent_type: 'scoring', node_ids: [N1] },
  ],
};
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

const taskMemory = validator(`${OPENAPI_ID}#/components/schemas/TaskMemory`);
const problem = validator(`${OPENAPI_ID}#/components/schemas/ProblemDetails`);
function expectValid(v: typeof taskMemory, body: unknown): void {
  if (!v(body))
    throw new Error(`${ajv.errorsText(v.errors)}\n${JSON.stringify(body, null, 2).slice(0, 3000)}`);
}

/** Runs the batch and waits until it finished. */
async function runBatch(server: TestServer): Promise<string> {
  const started = await http<Json>('POST', `${server.url}/parallel/execute`, BATCH);
  expect(started.status).toBe(202);
  const taskId = started.body.task_id as string;
  expect((await waitTerminal(server, taskId)).status).toBe('completed');
  return taskId;
}

/** Polls the memory route until `until` holds (bounded). */
async function waitTaskMemory(
  server: TestServer,
  taskId: string,
  until: (body: Json) => boolean,
  timeoutMs = 60_000,
): Promise<Json> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const res = await http<Json>('GET', `${server.url}/parallel/status/${taskId}/memory`);
    if (res.status === 200 && until(res.body)) return res.body;
    if (Date.now() > end) throw new Error(`the task's memory never got there: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a finished batch of BATCH must show when every event reached the store. */
async function expectRemembered(server: TestServer, taskId: string, store: string): Promise<Json> {
  const body = await waitTaskMemory(server, taskId, (b) => b.delivered === 5);
  expectValid(taskMemory, body);
  const outbox = await server.app.get(MemoryOutbox).forTask(taskId);
  const concept = new Map(outbox.map((e) => [e.nodeId, e.concept]));
  const status = (await http<Json>('GET', `${server.url}/parallel/status/${taskId}`)).body;
  const resultFile = new Map<string, string>(
    (status.groups as Json[]).flatMap((g) =>
      (g.results as Json[]).map((r): [string, string] => [`${String(g.group_id)}/${r.node_id}`, r.file_path]),
    ),
  );
  expect(body).toMatchObject({
    task_id: taskId,
    store,
    store_read: 'ok',
    store_error: null,
    events: 5,
    delivered: 5,
    pending: 0,
    failing: 0,
    page: { offset: 0, limit: 100, total: 3, next_offset: null },
  });
  expect(body.session_events).toEqual([
    expect.objectContaining({
      type: 'canvas_opened',
      agent_type: 'canvas-orchestrator',
      delivery: 'delivered',
      in_store: true,
    }),
  ]);
  const concepts = body.concepts as Json[];
  expect(concepts.map((c) => c.node_id).sort()).toEqual([N1, N2, N3].sort());
  for (const c of concepts) {
    expect(c.name).toBe(concept.get(c.node_id));
    expect(c.name.length).toBeGreaterThan(0);
    for (const e of c.events as Json[]) {
      expect(e).toMatchObject({ delivery: 'delivered', in_store: true, attempts: 1 });
      expect(e.file_path).toBe(resultFile.get(`${String(e.group_id)}/${c.node_id}`));
    }
  }
  const byNode = Object.fromEntries(
    concepts.map((c) => [c.node_id, (c.events as Json[]).map((e) => [e.type, e.agent_type]).sort()]),
  );
  expect(byNode).toEqual({
    [N1]: [
      ['explanation_generated', 'oral-explanation'],
      ['scoring_completed', 'scoring-agent'],
    ],
    [N2]: [['explanation_generated', 'oral-explanation']],
    [N3]: [['node_created', 'memory-anchor']],
  });
  return body;
}

describe('GET /parallel/status/{task_id}/memory (embedded store)', () => {
  let server: TestServer;
  let taskId: string;
  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '5-20' });
    taskId = await runBatch(server);
  }, 60_000);
  afterAll(() => server.close());

  it("lists each node's concept with its learning events, read back from the store", async () => {
    const body = await expectRemembered(server, taskId, 'embedded');
    // no absolute server path in the answer
    expect(body.target).toBe('SQLite <DATA_DIR>/canvas-batch.sqlite (table memory_events)');
  });

  it('pages over concepts: the pages together are the whole list, in order', async () => {
    const whole = await waitTaskMemory(server, taskId, (b) => b.delivered === 5);
    const seen: Json[] = [];
    let offset: number | null = 0;
    for (let i = 0; offset !== null && i < 10; i++) {
      const res = await http<Json>(
        'GET',
        `${server.url}/parallel/status/${taskId}/memory?offset=${offset}&limit=2`,
      );
      expect(res.status).toBe(200);
      expectValid(taskMemory, res.body);
      expect(res.body.page).toMatchObject({ offset, limit: 2, total: 3 });
      expect(res.body.session_events).toHaveLength(1);
      seen.push(...(res.body.concepts as Json[]));
      offset = res.body.page.next_offset as number | null;
    }
    expect(seen).toEqual(whole.concepts);
    const past = await http<Json>('GET', `${server.url}/parallel/status/${taskId}/memory?offset=99`);
    expect(past.body).toMatchObject({ concepts: [], page: { total: 3, next_offset: null }, events: 5 });
  });

  it('bad input: problem+json 404 unknown task, 400 malformed id or paging', async () => {
    const cases: [string, number, string][] = [
      [`/parallel/status/${UNKNOWN_ID}/memory`, 404, 'task-not-found'],
      ['/parallel/status/not-a-task/memory', 400, 'invalid-task-id'],
      [`/parallel/status/${taskId}/memory?limit=0`, 400, 'validation-failed'],
      [`/parallel/status/${taskId}/memory?limit=1001`, 400, 'validation-failed'],
      [`/parallel/status/${taskId}/memory?limit=abc`, 400, 'validation-failed'],
      [`/parallel/status/${taskId}/memory?offset=-1`, 400, 'validation-failed'],
      [`/parallel/status/${taskId}/memory?offset=1.5`, 400, 'validation-failed'],
    ];
    for (const [route, status, code] of cases) {
      const res = await http<Json>('GET', `${server.url}${route}`);
      expect({ route, status: res.status, type: res.type }).toEqual({
        route,
        status,
        type: 'application/problem+json; charset=utf-8',
      });
      expectValid(problem, res.body);
      expect(res.body.type).toBe(`https://canvas-batch.dev/problems/${code}`);
    }
    // a task's own events only: another batch's do not appear
    const other = await runBatch(server);
    const mine = await waitTaskMemory(server, taskId, (b) => b.delivered === 5);
    const theirs = await waitTaskMemory(server, other, (b) => b.delivered === 5);
    const ids = (b: Json) =>
      new Set(
        [...(b.session_events as Json[]), ...(b.concepts as Json[]).flatMap((c) => c.events as Json[])].map(
          (e) => e.event_id,
        ),
      );
    expect([...ids(mine)].filter((id) => ids(theirs).has(id))).toEqual([]);
  });
});

/** A store that takes nothing and never answers a read: the route must still answer, from the outbox. */
class HangingStore extends MemoryStore {
  readonly kind = 'hanging';
  readonly target = 'a store that never answers';
  reads = 0;
  prepare(): Promise<string> {
    return Promise.resolve(this.target);
  }
  deliver(_events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> {
    return Promise.reject(new Error('store refuses'));
  }
  override recall(): Promise<RecalledMemoryEvent[]> {
    this.reads++;
    return new Promise(() => undefined);
  }
}

describe('a store that is down or hangs: the outbox’s view, saying so', () => {
  it('Neo4j unreachable (nothing listens): every event failing, in_store unknown, the reason given', async () => {
    const server = await startServer({
      AGENT_LATENCY_MS: '5-20',
      NEO4J_URI: `bolt://127.0.0.1:${await freePort()}`,
      NEO4J_USER: 'neo4j',
      NEO4J_PASSWORD: 'not-a-real-password',
      MEMORY_RETRY_MAX_MS: '500',
      MEMORY_ATTEMPT_TIMEOUT_MS: '2000',
    });
    try {
      const taskId = await runBatch(server);
      const body = await waitTaskMemory(server, taskId, (b) => b.failing === 5);
      expectValid(taskMemory, body);
      expect(body).toMatchObject({
        store: 'neo4j',
        store_read: 'unavailable',
        events: 5,
        delivered: 0,
        pending: 0,
        failing: 5,
      });
      expect(body.store_error).toMatch(/cannot reach Neo4j at bolt:\/\/127\.0\.0\.1/);
      expect(JSON.stringify(body)).not.toContain('not-a-real-password');
      const events = (body.concepts as Json[]).flatMap((c) => c.events as Json[]);
      expect(events).toHaveLength(4);
      for (const e of events) expect(e).toMatchObject({ delivery: 'failing', in_store: null });
      expect(events.every((e) => e.attempts >= 1)).toBe(true);
    } finally {
      await server.close();
    }
  }, 90_000);

  it('a store whose read never answers: the route answers anyway (bounded), from the outbox', async () => {
    const store = new HangingStore();
    const server = await startServer(
      { AGENT_LATENCY_MS: '5-20', MEMORY_ATTEMPT_TIMEOUT_MS: '300', MEMORY_RETRY_MAX_MS: '500' },
      undefined,
      { memoryStore: store },
    );
    try {
      const taskId = await runBatch(server);
      const res = await http<Json>('GET', `${server.url}/parallel/status/${taskId}/memory`);
      expect(res.status).toBe(200);
      expectValid(taskMemory, res.body);
      expect(res.body).toMatchObject({
        store: 'hanging',
        store_read: 'unavailable',
        store_error: 'the store did not answer within 300 ms',
        events: 5,
        delivered: 0,
      });
      expect(res.body.pending + res.body.failing).toBe(5);
      expect(store.reads).toBe(1);
    } finally {
      await server.close();
    }
  }, 60_000);
});

const neo = neo4jFromEnv();
const neoMissing = !neo
  ? 'NEO4J_URI is not set (.ci/run starts test/neo4j-launcher and sets it; see docs/testing.md "Neo4j")'
  : !reachableSync(neo.uri)
    ? `NEO4J_URI ${neo.uri} is not reachable`
    : undefined;

describeWithService('GET /parallel/status/{task_id}/memory (Neo4j, NEO4J_URI)', neoMissing, () => {
  it("lists each node's concept with its learning events, read back from the graph", async () => {
    const env = neo ?? { uri: 'bolt://unset', user: '', password: '' };
    const server = await startServer({
      AGENT_LATENCY_MS: '5-20',
      NEO4J_URI: env.uri,
      NEO4J_USER: env.user,
      NEO4J_PASSWORD: env.password,
    });
    try {
      const taskId = await runBatch(server);
      const body = await expectRemembered(server, taskId, 'neo4j');
      expect(body.target).toBe(`Neo4j at ${env.uri}`);
    } finally {
      await server.close();
    }
  }, 180_000);
});

const executable = chromiumPath();
if (!executable) {
  process.stderr.write(
    'memory panel browser test SKIPPED: Chromium not found (apt-get install -y chromium, or set CHROMIUM_PATH)\n',
  );
}

(executable ? describe : describe.skip)(
  'dashboard: "What the system now remembers" (headless Chromium)',
  () => {
    jest.setTimeout(90_000);
    let browser: TestBrowser;
    let page: Page;
    const problems: string[] = [];
    beforeAll(async () => {
      browser = await launchBrowser(executable!);
      await recordCspViolations(browser.context);
      page = await browser.context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
    });
    afterAll(() => browser?.close());
    const shot = async (name: string, docs?: string) => {
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
      if (docs && UPDATE_DOCS_SCREENSHOTS) {
        await page.screenshot({ path: path.join(DOCS_SCREENSHOT_DIR, `${docs}.png`), fullPage: true });
      }
    };

    it("a finished task's page lists its concepts and their learning events, as remembered", async () => {
      const server = await startServer({ AGENT_LATENCY_MS: '5-20' });
      try {
        const taskId = await runBatch(server);
        const body = await waitTaskMemory(server, taskId, (b) => b.delivered === 5);
        await page.goto(`${server.url}/#/tasks/${taskId}`);
        const panel = page.getByRole('region', { name: 'What the system now remembers' });
        await panel.waitFor();
        await panel.locator('.memory-concept').nth(2).waitFor();
        for (const c of body.concepts as Json[]) {
          const item = panel.locator(`.memory-concept[data-node-id="${c.node_id}"]`);
          await expect(item.locator('.memory-name').innerText()).resolves.toBe(c.name);
          for (const e of c.events as Json[]) {
            const event = item.locator(`.memory-event[data-event-id="${e.event_id}"]`);
            await expect(event.locator('.memory-type').innerText()).resolves.toBe(
              String(e.type).replaceAll('_', ' '),
            );
            await expect(event.innerText()).resolves.toContain(e.agent_type);
            await expect(event.locator('.memory-state').innerText()).resolves.toBe('remembered');
          }
        }
        await expect(panel.locator('#memory-summary').innerText()).resolves.toMatch(
          /^3 concepts · 5 of 5 learning events delivered\. Read back from the embedded store/,
        );
        await expect(panel.locator('#memory-session').innerText()).resolves.toMatch(
          /^Batch session opened .* \(canvas opened, remembered\)\.$/,
        );
        await panel.scrollIntoViewIfNeeded();
        await shot('memory-panel', 'dashboard-memory');
        expect(await page.evaluate(() => window.__cspViolations as string[])).toEqual([]);
        expect(problems).toEqual([]);
      } finally {
        await server.close();
      }
    });

    it('while the store is down, events show as on their way; the panel keeps asking', async () => {
      const server = await startServer({
        AGENT_LATENCY_MS: '5-20',
        NEO4J_URI: `bolt://127.0.0.1:${await freePort()}`,
        NEO4J_USER: 'neo4j',
        NEO4J_PASSWORD: 'not-a-real-password',
        MEMORY_RETRY_MAX_MS: '500',
        MEMORY_ATTEMPT_TIMEOUT_MS: '2000',
      });
      try {
        const taskId = await runBatch(server);
        await waitTaskMemory(server, taskId, (b) => b.failing === 5);
        await page.goto(`${server.url}/#/tasks/${taskId}`);
        const panel = page.getByRole('region', { name: 'What the system now remembers' });
        await panel.locator('.memory-concept').nth(2).waitFor();
        await expect(panel.locator('#memory-summary').innerText()).resolves.toMatch(
          /^3 concepts · 0 of 5 learning events delivered · 5 on their way \(5 after failed attempts\)\. The neo4j store cannot be read right now \(cannot reach Neo4j/,
        );
        const states = await panel.locator('.memory-event .memory-state').allInnerTexts();
        expect(states).toHaveLength(4);
        for (const s of states) expect(s).toMatch(/^on its way · \d+ failed attempts?$/);
        // it asks again while events are on their way
        const asked = (url: string) => url.includes(`/parallel/status/${taskId}/memory`);
        await page.waitForRequest((r) => asked(r.url()), { timeout: 15_000 });
        await shot('memory-panel-on-its-way');
        expect(await page.evaluate(() => window.__cspViolations as string[])).toEqual([]);
      } finally {
        await server.close();
      }
    });
  },
);
