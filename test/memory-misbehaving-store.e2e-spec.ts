import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import type { DeliveryReceipt, MemoryEventDraft } from '../src/memory';
import { MemoryStore } from '../src/memory';
import { batchShape } from './support/batch-shape';
import { writeGridCanvas } from './support/canvas-fixtures';
import { http, sseClient, startServer, type TestServer, waitTerminal } from './support/harness';
import { type MemoryStatusBody, waitMemory } from './support/memory-graph';

type Json = Record<string, any>;

/** A store that never delivers anything properly, in one of several ways; it counts the calls it got. */
class MisbehavingStore extends MemoryStore {
  readonly kind = 'misbehaving';
  readonly target = 'a store that misbehaves on purpose';
  calls = 0;
  aborted = 0;

  constructor(private readonly how: (events: readonly MemoryEventDraft[]) => Promise<DeliveryReceipt>) {
    super();
  }

  prepare(): Promise<string> {
    return Promise.reject(new Error('prepare refused'));
  }

  deliver(events: readonly MemoryEventDraft[], signal?: AbortSignal): Promise<DeliveryReceipt> {
    this.calls++;
    signal?.addEventListener('abort', () => this.aborted++);
    return this.how(events);
  }
}

/** A store whose every member, even `kind`, throws. */
class ExplodingStore extends MemoryStore {
  get kind(): string {
    throw new Error('no kind');
  }
  get target(): string {
    throw new Error('no target');
  }
  prepare(): Promise<string> {
    throw new Error('prepare exploded');
  }
  deliver(): Promise<DeliveryReceipt> {
    throw new Error('deliver exploded synchronously');
  }
}

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);
const garbage: unknown[] = [undefined, null, 42, 'ok', { stored: 'all' }, { stored: -1 }, [1, 2, 3]];

const cases: [string, () => MemoryStore, RegExp][] = [
  [
    'rejects with an Error',
    () => new MisbehavingStore(() => Promise.reject(new Error('graph on fire'))),
    /graph on fire/,
  ],
  [
    'rejects with something that is not an Error',
    () => new MisbehavingStore(() => Promise.reject({ code: 'WEIRD', nested: { deep: true } })), // eslint-disable-line @typescript-eslint/prefer-promise-reject-errors
    /WEIRD/,
  ],
  ['throws synchronously (every member)', () => new ExplodingStore(), /deliver exploded synchronously/],
  ['hangs forever', () => new MisbehavingStore(() => never()), /no answer within 500 ms/],
  [
    'answers garbage',
    () => {
      let i = 0;
      return new MisbehavingStore(() => Promise.resolve(garbage[i++ % garbage.length] as DeliveryReceipt));
    },
    /the store answered .* instead of \{ stored: \d+ \}/,
  ],
  [
    'confirms fewer events than it was given',
    () => new MisbehavingStore((events) => Promise.resolve({ stored: events.length - 1 })),
    /instead of \{ stored: \d+ \}/,
  ],
];

const ENV = {
  AGENT_LATENCY_MS: '5-20',
  MEMORY_RETRY_MAX_MS: '200',
  MEMORY_ATTEMPT_TIMEOUT_MS: '500',
  MEMORY_SHUTDOWN_MS: '500',
};
let ids: string[][] = [];
const setupVault = (vault: string): void => {
  ids = writeGridCanvas(vault, 'Test/memory.canvas', 2, 15);
};

async function runBatch(server: TestServer): Promise<Json> {
  const started = await http<Json>('POST', `${server.url}/parallel/execute`, {
    canvas_path: 'Test/memory.canvas',
    groups: [
      { group_id: 1, agent_type: 'oral-explanation', node_ids: ids[0] },
      { group_id: 2, agent_type: 'memory-anchor', node_ids: ids[1] },
    ],
    max_concurrent: 5,
  });
  expect(started.status).toBe(202);
  const taskId = started.body.task_id as string;
  const final = await waitTerminal(server, taskId, 60_000);
  const events = await sseClient(`${server.url}/parallel/events/${taskId}`).done;
  return batchShape(final, events);
}

describe('a misbehaving MemoryStore never changes a batch (real server, store swapped behind the port)', () => {
  let reference: Json;

  beforeAll(async () => {
    const server = await startServer(ENV, setupVault);
    try {
      reference = await runBatch(server);
      expect(reference).toMatchObject({ status: 'completed', completed_nodes: 30 });
      await waitMemory(server.url, (s) => s.pending === 0 && s.delivered === 31, 30_000);
    } finally {
      await server.close();
    }
  });

  it.each(cases)(
    'store that %s: same batch status and events; all 31 events stay pending; close is bounded and loses nothing',
    async (_name, makeStore, errorPattern) => {
      const store = makeStore();
      const server = await startServer(ENV, setupVault, { memoryStore: store });
      let status: MemoryStatusBody;
      try {
        expect(await runBatch(server)).toEqual(reference);
        status = await waitMemory(server.url, (s) => s.pending === 31 && s.failed_attempts >= 2, 60_000);
        expect(status).toMatchObject({ delivered: 0, oldest_pending_age_seconds: expect.any(Number) });
        expect(status.last_error).toMatch(errorPattern);
        expect(['delivering', 'retrying']).toContain(status.state);
        // the service still answers everything else
        expect((await http('GET', `${server.url}/health`)).status).toBe(200);
        if (store instanceof MisbehavingStore) {
          expect(store.calls).toBeGreaterThanOrEqual(2);
          expect(status).toMatchObject({
            store: 'misbehaving',
            target: 'a store that misbehaves on purpose',
          });
        } else {
          expect(status).toMatchObject({ store: 'custom', target: 'custom' });
        }
      } finally {
        await server.close({ keepFiles: true });
      }
      if (store instanceof MisbehavingStore && errorPattern.source.includes('no answer')) {
        expect(store.aborted).toBeGreaterThanOrEqual(1);
      }
      // after close: every event is still in the outbox, pending, with its failed attempts counted
      const db = new Database(path.join(server.dataDir, 'canvas-batch.sqlite'), { readonly: true });
      try {
        const rows = db
          .prepare(
            'SELECT count(*) AS n, sum(delivered_at IS NULL) AS pending, min(attempts) >= 1 AS attempted FROM memory_outbox',
          )
          .get();
        expect(rows).toEqual({ n: 31, pending: 31, attempted: 1 });
        expect(db.prepare('SELECT count(*) AS n FROM memory_events').get()).toEqual({ n: 0 });
      } finally {
        db.close();
        rmSync(path.dirname(server.dataDir), { recursive: true, force: true });
      }
    },
    90_000,
  );
});
