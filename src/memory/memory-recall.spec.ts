import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { EmbeddedMemoryStore } from './embedded-memory-store';
import { InMemoryMemoryOutbox } from './in-memory-memory-outbox';
import type { MemoryEvent, MemoryEventDraft } from './memory-outbox';
import {
  conceptOrder,
  MemoryRecallService,
  MemoryUnavailableError,
  type StoreRead,
  taskMemoryView,
} from './memory-recall';
import {
  type DeliveryReceipt,
  MemoryStore,
  type RecallQuery,
  type RecalledMemoryEvent,
} from './memory-store';
import { fromNeo4jEvent, Neo4jMemoryStore } from './neo4j-memory-store';

const at = (ms: number): string => new Date(Date.UTC(2026, 10, 26, 10, 0, 0, ms)).toISOString();

function outboxEvent(
  eventId: string,
  nodeId: string | null,
  ms: number,
  state: Partial<Pick<MemoryEvent, 'deliveredAt' | 'attempts'>> = {},
): MemoryEvent {
  return {
    eventId,
    taskId: 't1',
    canvasPath: 'Biology/cells.canvas',
    nodeId,
    agentType: nodeId === null ? 'canvas-orchestrator' : 'oral-explanation',
    memoryType: nodeId === null ? 'canvas_opened' : 'explanation_generated',
    concept: nodeId === null ? 'Biology/cells.canvas' : `Concept ${nodeId}`,
    createdAt: at(ms),
    payload: nodeId === null ? { total_nodes: 2 } : { group_id: 'g1', file_path: `${nodeId}.md` },
    deliveredAt: null,
    attempts: 0,
    ...state,
  };
}

const stored = (e: MemoryEvent): RecalledMemoryEvent => ({
  eventId: e.eventId,
  taskId: e.taskId,
  type: e.memoryType,
  agentType: e.agentType,
  canvasPath: e.canvasPath,
  nodeId: e.nodeId,
  concept: e.concept,
  createdAt: e.createdAt,
  payload: e.payload,
});

const head = { taskId: 't1', store: 'embedded', target: 'SQLite x' };
const DELIVERED = { deliveredAt: at(100), attempts: 1 };

describe('taskMemoryView', () => {
  const open = outboxEvent('open', null, 0, DELIVERED);
  const a1 = outboxEvent('a1', 'a', 1, DELIVERED);
  const b1 = outboxEvent('b1', 'b', 2, { attempts: 3 });
  const a2 = outboxEvent('a2', 'a', 3);
  const c1 = outboxEvent('c1', 'c', 4, DELIVERED);
  const all = [open, a1, b1, a2, c1];

  it('groups events by node in the order of each node’s first event, with delivery states and counts', () => {
    const view = taskMemoryView(head, all, { outcome: 'ok', events: [open, a1, c1].map(stored) });
    expect(view).toMatchObject({
      task_id: 't1',
      store: 'embedded',
      target: 'SQLite x',
      store_read: 'ok',
      store_error: null,
      events: 5,
      delivered: 3,
      pending: 1,
      failing: 1,
      page: { offset: 0, limit: 100, total: 3, next_offset: null },
    });
    expect(view.session_events).toEqual([
      {
        event_id: 'open',
        type: 'canvas_opened',
        agent_type: 'canvas-orchestrator',
        at: at(0),
        group_id: null,
        file_path: null,
        delivery: 'delivered',
        attempts: 1,
        in_store: true,
      },
    ]);
    expect(view.concepts.map((c) => [c.node_id, c.name, c.events.map((e) => e.event_id)])).toEqual([
      ['a', 'Concept a', ['a1', 'a2']],
      ['b', 'Concept b', ['b1']],
      ['c', 'Concept c', ['c1']],
    ]);
    expect(view.concepts[0].events).toEqual([
      expect.objectContaining({ group_id: 'g1', file_path: 'a.md', delivery: 'delivered', in_store: true }),
      expect.objectContaining({ delivery: 'pending', attempts: 0, in_store: false }),
    ]);
    expect(view.concepts[1].events[0]).toMatchObject({ delivery: 'failing', attempts: 3, in_store: false });
  });

  it('pages over concepts; counts and session events always cover the whole task', () => {
    const first = taskMemoryView(head, all, { outcome: 'ok', events: [] }, { offset: 0, limit: 2 });
    expect(first.concepts.map((c) => c.node_id)).toEqual(['a', 'b']);
    expect(first.page).toEqual({ offset: 0, limit: 2, total: 3, next_offset: 2 });
    const second = taskMemoryView(head, all, { outcome: 'ok', events: [] }, { offset: 2, limit: 2 });
    expect(second.concepts.map((c) => c.node_id)).toEqual(['c']);
    expect(second.page).toEqual({ offset: 2, limit: 2, total: 3, next_offset: null });
    expect(second.session_events.map((e) => e.event_id)).toEqual(['open']);
    expect(second).toMatchObject({ events: 5, delivered: 3, pending: 1, failing: 1 });
    const past = taskMemoryView(head, all, { outcome: 'ok', events: [] }, { offset: 10, limit: 2 });
    expect(past.concepts).toEqual([]);
    expect(past.page).toEqual({ offset: 10, limit: 2, total: 3, next_offset: null });
  });

  it('without the store’s side: in_store is null, and the reason is given', () => {
    const down = taskMemoryView(head, all, { outcome: 'unavailable', error: 'connect ECONNREFUSED' });
    expect(down).toMatchObject({ store_read: 'unavailable', store_error: 'connect ECONNREFUSED' });
    expect(down.concepts.flatMap((c) => c.events).every((e) => e.in_store === null)).toBe(true);
    const unsupported = taskMemoryView(head, all, { outcome: 'unsupported' });
    expect(unsupported).toMatchObject({ store_read: 'unsupported', store_error: null });
    expect(unsupported.session_events[0].in_store).toBeNull();
  });

  it('shows what only the store knows as delivered, on its node (when on the page) or as a session event', () => {
    const extra: RecalledMemoryEvent[] = [
      { ...stored(outboxEvent('x-open', null, 0)), payload: { group_id: 7 } },
      stored(outboxEvent('a0', 'a', 0)),
      stored(outboxEvent('zz', 'z', 0)),
    ];
    const view = taskMemoryView(head, [a1], { outcome: 'ok', events: [...extra, stored(a1)] });
    expect(view.session_events).toEqual([
      expect.objectContaining({
        event_id: 'x-open',
        delivery: 'delivered',
        attempts: 0,
        in_store: true,
        group_id: 7,
      }),
    ]);
    expect(view.concepts).toEqual([
      {
        node_id: 'a',
        name: 'Concept a',
        events: [
          expect.objectContaining({ event_id: 'a0', delivery: 'delivered', attempts: 0, in_store: true }),
          expect.objectContaining({ event_id: 'a1', in_store: true }),
        ],
      },
    ]);
    // counts are the outbox's
    expect(view).toMatchObject({ events: 1, delivered: 1 });
  });

  it('orders events of the same instant by id', () => {
    const events = ['b', 'a', 'c', 'a2'].map((id) => outboxEvent(id, 'n', 1));
    const view = taskMemoryView(head, [outboxEvent('z', 'n', 0), ...events], { outcome: 'unsupported' });
    expect(view.concepts[0].events.map((e) => e.event_id)).toEqual(['z', 'a', 'a2', 'b', 'c']);
    const same = taskMemoryView(head, [outboxEvent('a', 'n', 1), outboxEvent('a', 'n', 1)], {
      outcome: 'unsupported',
    });
    expect(same.concepts[0].events).toHaveLength(2);
  });

  it('an empty task', () => {
    expect(taskMemoryView(head, [], { outcome: 'ok', events: [] })).toMatchObject({
      events: 0,
      concepts: [],
      session_events: [],
      page: { total: 0, next_offset: null },
    });
    expect(conceptOrder([])).toEqual([]);
  });
});

/** A store whose read does what the test says. */
class ScriptedStore extends MemoryStore {
  readonly kind: string = 'scripted';
  readonly target: string = 'a scripted store';
  readonly queries: RecallQuery[] = [];
  signal: AbortSignal | undefined;
  constructor(private readonly read: () => Promise<RecalledMemoryEvent[]>) {
    super();
  }
  prepare(): Promise<string> {
    return Promise.resolve(this.target);
  }
  deliver(events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> {
    return Promise.resolve({ stored: events.length });
  }
  override recall(query: RecallQuery, signal?: AbortSignal): Promise<RecalledMemoryEvent[]> {
    this.queries.push(query);
    this.signal = signal;
    return this.read();
  }
}

describe('MemoryRecallService', () => {
  const draft = (e: MemoryEvent): MemoryEventDraft => {
    const { deliveredAt: _d, attempts: _a, ...rest } = e;
    return rest;
  };
  let outbox: InMemoryMemoryOutbox;
  beforeEach(async () => {
    outbox = new InMemoryMemoryOutbox();
    for (const e of [outboxEvent('open', null, 0), outboxEvent('a1', 'a', 1), outboxEvent('b1', 'b', 2)]) {
      await outbox.append(draft(e));
    }
    await outbox.markDelivered(['open', 'a1'], at(50));
  });
  const service = (store: MemoryStore, attemptTimeoutMs = 30_000, password?: string) =>
    new MemoryRecallService(outbox, store, {
      memoryDelivery: { attemptTimeoutMs },
      ...(password ? { neo4j: { uri: 'bolt://x', user: 'neo4j', password } } : {}),
    });

  it('asks the store for the page’s nodes only, and merges its answer', async () => {
    const store = new ScriptedStore(() => Promise.resolve([stored(outboxEvent('a1', 'a', 1))]));
    const view = await service(store).forTask('t1', { offset: 1, limit: 1 });
    expect(store.queries).toEqual([{ taskId: 't1', nodeIds: ['b'] }]);
    expect(store.signal).toBeInstanceOf(AbortSignal);
    expect(view).toMatchObject({
      store: 'scripted',
      target: 'a scripted store',
      store_read: 'ok',
      events: 3,
      delivered: 2,
      pending: 1,
      page: { offset: 1, limit: 1, total: 2, next_offset: null },
    });
    expect(view.concepts.map((c) => c.node_id)).toEqual(['b']);
    // the default page
    await service(store).forTask('t1');
    expect(store.queries[1]).toEqual({ taskId: 't1', nodeIds: ['a', 'b'] });
  });

  it('a store that fails, answers nonsense or throws: a partial answer saying why (credentials redacted)', async () => {
    const failing = await service(
      new ScriptedStore(() => Promise.reject(new Error('auth failed for  s3cret-pw\n at bolt'))),
      30_000,
      's3cret-pw',
    ).forTask('t1');
    expect(failing).toMatchObject({
      store_read: 'unavailable',
      store_error: 'auth failed for [redacted] at bolt',
    });
    expect(failing.concepts).toHaveLength(2);
    const nonsense = await service(
      new ScriptedStore(() => Promise.resolve({ stored: 1 } as unknown as RecalledMemoryEvent[])),
    ).forTask('t1');
    expect(nonsense).toMatchObject({
      store_read: 'unavailable',
      store_error: 'the store answered something that is not a list of events',
    });
    const throwing = await service(
      new ScriptedStore(() => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- a host's store may throw anything
        throw 'plain text';
      }),
    ).forTask('t1');
    expect(throwing).toMatchObject({ store_read: 'unavailable', store_error: 'plain text' });
    const throwingError = await service(
      new ScriptedStore(() => {
        throw new Error('recall exploded');
      }),
    ).forTask('t1');
    expect(throwingError).toMatchObject({ store_read: 'unavailable', store_error: 'recall exploded' });
    const rejectsText = await service(
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a host's store may reject with anything
      new ScriptedStore(() => Promise.reject('no')),
    ).forTask('t1');
    expect(rejectsText).toMatchObject({ store_read: 'unavailable', store_error: 'no' });
    const nameless = await service(new ScriptedStore(() => Promise.reject(new TypeError('')))).forTask('t1');
    expect(nameless.store_error).toBe('TypeError');
  });

  it('a store that never answers: given up at the bound (its read aborted), the outbox’s view returned', async () => {
    const store = new ScriptedStore(() => new Promise(() => undefined));
    const view = await service(store, 200).forTask('t1');
    expect(view).toMatchObject({
      store_read: 'unavailable',
      store_error: 'the store did not answer within 200 ms',
    });
    expect(store.signal?.aborted).toBe(true);
    expect(view.concepts.flatMap((c) => c.events).map((e) => e.in_store)).toEqual([null, null]);
  });

  it('a store without a read side: unsupported; a kind or target that throws: named as a custom store', async () => {
    class WriteOnly extends MemoryStore {
      get kind(): string {
        throw new Error('no kind');
      }
      readonly target = '';
      prepare(): Promise<string> {
        return Promise.resolve('');
      }
      deliver(events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> {
        return Promise.resolve({ stored: events.length });
      }
    }
    const view = await service(new WriteOnly()).forTask('t1');
    expect(view).toMatchObject({ store: 'custom', target: 'custom', store_read: 'unsupported' });
  });

  it('an outbox that fails or hangs: MemoryUnavailableError (503)', async () => {
    const store = new ScriptedStore(() => Promise.resolve([]));
    jest.spyOn(outbox, 'forTask').mockRejectedValueOnce(new Error('READONLY You can’t write'));
    const err = await service(store)
      .forTask('t1')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryUnavailableError);
    expect((err as Error).message).toBe(
      'The learning-memory outbox cannot be read right now (READONLY You can’t write); retry shortly',
    );
    expect((err as MemoryUnavailableError).code).toBe('memory-unavailable');
    jest.spyOn(outbox, 'forTask').mockReturnValueOnce(new Promise(() => undefined));
    await expect(service(store, 100).forTask('t1')).rejects.toThrow(
      'cannot be read right now (the outbox did not answer within 100 ms)',
    );
    expect(store.queries).toEqual([]);
  });
});

describe('EmbeddedMemoryStore.recall on a closed database', () => {
  it('rejects (never throws)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'canvas-batch-recall-'));
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    const store = new EmbeddedMemoryStore(db);
    db.onApplicationShutdown();
    log.mockRestore();
    const read = store.recall({ taskId: 't1' });
    await expect(read).rejects.toThrow(/database connection is not open/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('Neo4jMemoryStore read side without a server', () => {
  it('maps a LearningEvent’s properties back to an event, the rest as payload', () => {
    expect(
      fromNeo4jEvent({
        event_id: 'e1',
        task_id: 't1',
        type: 'explanation_generated',
        agent_type: 'oral-explanation',
        canvas_path: 'Biology/cells.canvas',
        node_id: 'n1',
        concept: 'Cell',
        created_at: '2026-11-26T10:00:00Z',
        group_id: 7,
        file_path: 'x.md',
      }),
    ).toEqual({
      eventId: 'e1',
      taskId: 't1',
      type: 'explanation_generated',
      agentType: 'oral-explanation',
      canvasPath: 'Biology/cells.canvas',
      nodeId: 'n1',
      concept: 'Cell',
      createdAt: '2026-11-26T10:00:00.000Z',
      payload: { group_id: 7, file_path: 'x.md' },
    });
    // a session event (no node) and properties of an unexpected type
    expect(
      fromNeo4jEvent({ event_id: 'e2', node_id: null, created_at: 'yesterday', concept: 3 }),
    ).toMatchObject({
      nodeId: null,
      createdAt: 'yesterday',
      concept: '',
      type: '',
    });
  });

  it('rejects when the server is unreachable, and checks it again before the next read', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    await new Promise<void>((r) => server.close(() => r()));
    const store = new Neo4jMemoryStore(
      { uri: `bolt://127.0.0.1:${port}`, user: 'neo4j', password: 'pw' },
      2_000,
    );
    try {
      await expect(store.recall({ taskId: 't1' })).rejects.toThrow(
        /cannot reach Neo4j at bolt:\/\/127\.0\.0\.1/,
      );
      await expect(store.recall({ taskId: 't1', nodeIds: ['n1'] })).rejects.toThrow(/cannot reach/);
    } finally {
      await store.onApplicationShutdown();
    }
  });
});

// keeps the type import honest: StoreRead is what taskMemoryView takes
const _unsupported: StoreRead = { outcome: 'unsupported' };
void _unsupported;
