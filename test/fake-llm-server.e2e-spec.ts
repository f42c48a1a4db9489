import {
  type FakeLlmServer,
  peakConcurrency,
  type RequestLogEntry,
  startFakeLlm,
} from './support/fake-llm-server';
import { processKey } from './support/cluster';

/** Waits for `check` with a generous bound (no timed assertions: the machine is shared). */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An OpenAI-format call as process `name` would make it (its own key), for node `node`. */
function call(fake: FakeLlmServer, name: string, node: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${fake.baseUrl('openai')}/chat/completions`, {
    method: 'POST',
    signal,
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${processKey(name)}`,
      'x-canvas-batch-node': node,
      'x-canvas-batch-attempt': '1',
    },
    body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: `node ${node}` }] }),
  });
}

/** A log entry for the pure tests of `peakConcurrency`. */
function entry(proc: string | undefined, openOrder: number, closeOrder: number | undefined): RequestLogEntry {
  return { process: proc, openOrder, closeOrder } as RequestLogEntry;
}

describe('fake LLM provider: calls recorded per process, with open and close', () => {
  let fake: FakeLlmServer;
  beforeAll(async () => {
    fake = await startFakeLlm({ processKeys: { [processKey('A')]: 'A', [processKey('B')]: 'B' } });
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.log.length = 0;
    fake.configure({ script: undefined });
  });

  it('names the process of each call by its key and the node by its header; an unknown key is a 401', async () => {
    expect((await call(fake, 'A', 'n1')).status).toBe(200);
    expect((await call(fake, 'B', 'n2')).status).toBe(200);
    expect((await call(fake, 'Z', 'n3')).status).toBe(401);
    expect(fake.log.map((e) => [e.process, e.node, e.attempt, e.status])).toEqual([
      ['A', 'n1', 1, 200],
      ['B', 'n2', 1, 200],
      [undefined, 'n3', 1, 401],
    ]);
    for (const e of fake.log) {
      expect(e.closedAt).toBeGreaterThanOrEqual(e.arrivedAt);
      expect(e.closeOrder).toBeGreaterThan(e.openOrder);
      expect(e.clientClosed).toBe(false);
    }
  });

  it('records the close of a call the client aborts (hung call)', async () => {
    fake.configure({ script: () => ({ kind: 'hang' }) });
    const controller = new AbortController();
    const pending = call(fake, 'A', 'n1', controller.signal);
    await until(() => fake.log.length === 1 && fake.log[0].behaviour === 'hang', 'the call to hang');
    expect(fake.log[0].closedAt).toBeUndefined();
    expect(fake.inFlight).toBe(1);
    const abortedAt = Date.now();
    controller.abort();
    await expect(pending).rejects.toThrow();
    await fake.idle();
    const [e] = fake.log;
    expect(e).toMatchObject({ process: 'A', node: 'n1', clientClosed: true, status: 0 });
    expect(e.closedAt).toBeGreaterThanOrEqual(abortedAt);
    expect(e.closeOrder).toBeGreaterThan(e.openOrder);
  });

  it('counts the calls open at once, overall and per process', async () => {
    // three hung calls from A and B at once, then one more after one of A's closed
    fake.configure({ script: () => ({ kind: 'hang' }) });
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const calls = [
      call(fake, 'A', 'n1', controllers[0].signal),
      call(fake, 'A', 'n2', controllers[1].signal),
      call(fake, 'B', 'n3', controllers[2].signal),
    ].map((p) => p.catch(() => undefined));
    await until(() => fake.inFlight === 3, 'three open calls');
    controllers[0].abort();
    await until(() => fake.inFlight === 2, 'one call closed');
    fake.configure({ script: undefined });
    expect((await call(fake, 'B', 'n4')).status).toBe(200);
    controllers.forEach((c) => c.abort());
    await Promise.all(calls);
    await fake.idle();
    expect(peakConcurrency(fake.log)).toEqual({
      peak: 3,
      byProcess: { A: { calls: 2, peak: 2 }, B: { calls: 2, peak: 2 } },
    });
  });

  it('peakConcurrency follows the order of opens and closes; a call still open counts as open', () => {
    expect(peakConcurrency([])).toEqual({ peak: 0, byProcess: {} });
    // A [1,3), B [2,4), A [5,7), B [6, open), ? [8,9): never more than two at once
    const log = [
      entry('A', 1, 3),
      entry('B', 2, 4),
      entry('A', 5, 7),
      entry('B', 6, undefined),
      entry(undefined, 8, 9),
    ];
    expect(peakConcurrency(log)).toEqual({
      peak: 2,
      byProcess: { A: { calls: 2, peak: 1 }, B: { calls: 2, peak: 1 }, '?': { calls: 1, peak: 1 } },
    });
    expect(peakConcurrency([entry('A', 1, undefined), entry('A', 2, undefined), entry('B', 3, 4)])).toEqual({
      peak: 3,
      byProcess: { A: { calls: 2, peak: 2 }, B: { calls: 1, peak: 1 } },
    });
  });
});
