import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { EmbeddedMemoryStore } from './embedded-memory-store';
import type { MemoryEventDraft } from './memory-outbox';
import { type DeliveryReceipt, MemoryStore } from './memory-store';
import { createMemoryStore } from './memory.module';
import { Neo4jMemoryStore, toNeo4jParams } from './neo4j-memory-store';

const draft: MemoryEventDraft = {
  eventId: 'e1',
  taskId: 't1',
  canvasPath: 'Biology/cells.canvas',
  nodeId: 'n1',
  agentType: 'oral-explanation',
  memoryType: 'explanation_generated',
  concept: 'Cell',
  createdAt: '2026-11-26T10:00:00.000Z',
  payload: { file_path: 'x.md', duration_ms: 12, group_id: 7 },
};

/** A local TCP server that does `behaviour` with each connection (the tests' stand-in for a broken Neo4j). */
async function tcpServer(behaviour: (s: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    behaviour(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

async function closedPort(): Promise<number> {
  const s = await tcpServer(() => undefined);
  await s.close();
  return s.port;
}

describe('toNeo4jParams', () => {
  it('maps an outbox event to the query parameters, payload scalars as properties', () => {
    expect(toNeo4jParams(draft)).toEqual({
      event_id: 'e1',
      type: 'explanation_generated',
      agent_type: 'oral-explanation',
      task_id: 't1',
      canvas_path: 'Biology/cells.canvas',
      node_id: 'n1',
      concept: 'Cell',
      created_at: '2026-11-26T10:00:00.000Z',
      props: { file_path: 'x.md', duration_ms: 12, group_id: 7 },
    });
  });

  it('drops payload members that are not plain scalars, have odd names, or would overwrite the model', () => {
    const params = toNeo4jParams({
      ...draft,
      payload: {
        ok: true,
        nested: { a: 1 },
        list: [1, 2],
        nan: Number.NaN,
        none: null,
        'Bad-Name': 'x',
        type: 'forged',
        event_id: 'forged',
      },
    });
    expect(params.props).toEqual({ ok: true });
  });
});

describe('Neo4jMemoryStore without a Neo4j (refused, silent and closing servers)', () => {
  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  const store = (uri: string, timeoutMs = 300): Neo4jMemoryStore =>
    new Neo4jMemoryStore({ uri, user: 'neo4j', password: 'pw-never-shown' }, timeoutMs, 200);

  it('names its target by URI (and database), never by credentials', async () => {
    const s = new Neo4jMemoryStore({
      uri: 'bolt://127.0.0.1:1',
      user: 'u',
      password: 'pw',
      database: 'learning',
    });
    expect(s.kind).toBe('neo4j');
    expect(s.target).toBe('Neo4j at bolt://127.0.0.1:1 (database learning)');
    await s.onApplicationShutdown();
  });

  it('fails fast on a refused port, in prepare() and deliver()', async () => {
    const port = await closedPort();
    const s = store(`bolt://127.0.0.1:${port}`);
    try {
      await expect(s.prepare()).rejects.toThrow(
        `cannot reach Neo4j at bolt://127.0.0.1:${port}: connect ECONNREFUSED`,
      );
      await expect(s.deliver([draft])).rejects.toThrow(/cannot reach Neo4j/);
    } finally {
      await s.onApplicationShutdown();
    }
  });

  it('gives up on a server that accepts and never answers the Bolt handshake, leaving no socket open', async () => {
    const silent = await tcpServer(() => undefined);
    const s = store(`neo4j://127.0.0.1:${silent.port}`);
    try {
      await expect(s.deliver([draft])).rejects.toThrow(
        `Neo4j at neo4j://127.0.0.1:${silent.port} did not answer the Bolt handshake within 300 ms`,
      );
    } finally {
      await s.onApplicationShutdown();
      await silent.close();
    }
  });

  it('reports a server that hangs up during the handshake', async () => {
    const rude = await tcpServer((sock) => sock.end());
    const s = store(`bolt://127.0.0.1:${rude.port}`);
    try {
      await expect(s.prepare()).rejects.toThrow(/closed the connection during the Bolt handshake/);
    } finally {
      await s.onApplicationShutdown();
      await rude.close();
    }
  });

  it('with a TLS scheme only checks that the port accepts, then lets the driver fail on the garbage it answers', async () => {
    const junk = await tcpServer((sock) => sock.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const s = store(`bolt+ssc://127.0.0.1:${junk.port}`, 1000);
    try {
      await expect(s.deliver([draft])).rejects.toThrow();
    } finally {
      await s.onApplicationShutdown();
      await s.onApplicationShutdown(); // once only
      await junk.close();
    }
  });

  it('a server that answers the handshake with junk gets past the probe, and the driver refuses it', async () => {
    const junk = await tcpServer((sock) => sock.on('data', () => sock.end(Buffer.from([0, 0, 0, 0]))));
    const s = store(`bolt://127.0.0.1:${junk.port}`, 1000);
    try {
      await expect(s.deliver([draft])).rejects.toThrow();
      await expect(s.prepare()).rejects.toThrow();
    } finally {
      await s.onApplicationShutdown();
      await junk.close();
    }
  });
});

describe('createMemoryStore', () => {
  let dir: string;
  let db: SqliteDatabase;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'memory-store-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  });
  afterEach(() => {
    db.onApplicationShutdown();
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes the host store first, then Neo4j when configured, else the embedded store', async () => {
    class HostStore extends MemoryStore {
      readonly kind = 'host';
      readonly target = 'host';
      prepare(): Promise<string> {
        return Promise.resolve('host');
      }
      deliver(events: readonly MemoryEventDraft[]): Promise<DeliveryReceipt> {
        return Promise.resolve({ stored: events.length });
      }
    }
    const host = new HostStore();
    const neo4j = { uri: 'bolt://127.0.0.1:7687', user: 'neo4j', password: 'pw' };
    expect(createMemoryStore({ memoryStore: host, neo4j }, db)).toBe(host);
    const viaNeo4j = createMemoryStore({ neo4j }, db);
    expect(viaNeo4j).toBeInstanceOf(Neo4jMemoryStore);
    await (viaNeo4j as Neo4jMemoryStore).onApplicationShutdown();
    const embedded = createMemoryStore({}, db);
    expect(embedded).toBeInstanceOf(EmbeddedMemoryStore);
    await expect(embedded.prepare()).resolves.toMatch(
      /^embedded store \(SQLite .*canvas-batch\.sqlite \(table memory_events\)\)$/,
    );
    await expect(embedded.deliver([draft, draft])).resolves.toEqual({ stored: 2 });
    expect((embedded as EmbeddedMemoryStore).forCanvas('Biology/cells.canvas')).toEqual([
      expect.objectContaining({
        eventId: 'e1',
        type: 'explanation_generated',
        nodeId: 'n1',
        payload: draft.payload,
      }),
    ]);
  });
});
