import { Logger } from '@nestjs/common';
import { EventEmitter2, EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CanvasModule } from '../canvas';
import { resolveOptions } from '../config';
import type { AgentCompletedEvent, BatchResumedEvent, BatchStartedEvent } from '../common';
import { DatabaseModule, SqliteDatabase } from '../database';
import { EmbeddedMemoryStore } from './embedded-memory-store';
import { MemoryDeliveryService } from './memory-delivery.service';
import { MemoryStore } from './memory-store';
import { memoryEventId, MemoryOutbox } from './memory-outbox';
import { MemoryListener } from './memory.listener';
import { MemoryModule } from './memory.module';
import { SqliteMemoryOutbox } from './sqlite-memory-outbox';

/** The real catalogue, except that a test may hide entries to play an incomplete catalogue. */
const mockCatalogue: { hidden: Set<string> } = { hidden: new Set() };
jest.mock('../agent/agent-catalogue', () => {
  const actual = jest.requireActual<typeof import('../agent/agent-catalogue')>('../agent/agent-catalogue');
  return {
    ...actual,
    findAgent: (name: string) => (mockCatalogue.hidden.has(name) ? undefined : actual.findAgent(name)),
  };
});

const completed = (overrides: Partial<AgentCompletedEvent> = {}): AgentCompletedEvent => ({
  taskId: 't1',
  canvasPath: 'Biology/cells.canvas',
  groupId: 'g1',
  groupIndex: 0,
  nodeId: 'n1',
  agentType: 'scoring-agent',
  concept: 'Cell',
  filePath: 'Biology/cells-explanations/scoring-agent-n1-t1.md',
  durationMs: 42,
  completedAt: '2026-11-26T10:00:00.000Z',
  ...overrides,
});

const started: BatchStartedEvent = {
  taskId: 't1',
  canvasPath: 'Biology/cells.canvas',
  totalNodes: 5,
  startedAt: '2026-11-26T09:59:59.000Z',
};

describe('MemoryListener (real outbox)', () => {
  let dir: string;
  let db: SqliteDatabase;
  let outbox: SqliteMemoryOutbox;
  let listener: MemoryListener;
  let errorLog: jest.SpyInstance;
  let notify: jest.Mock;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'memory-listener-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    errorLog = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    outbox = new SqliteMemoryOutbox(db);
    notify = jest.fn();
    listener = new MemoryListener(outbox, { notify } as unknown as MemoryDeliveryService);
  });

  afterEach(() => {
    db.onApplicationShutdown();
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['scoring-agent', 'scoring_completed'],
    ['memory-anchor', 'node_created'],
    ['basic-decomposition', 'decomposition_completed'],
    ['deep-decomposition', 'decomposition_completed'],
    ['oral-explanation', 'explanation_generated'],
    ['verification-question-agent', 'explanation_generated'],
  ])('records %s as a %s memory event', async (agentType, memoryType) => {
    await listener.onAgentCompleted(completed({ agentType }));
    expect(await outbox.forTask('t1')).toEqual([
      {
        eventId: memoryEventId('t1', 0, 'n1', agentType),
        taskId: 't1',
        canvasPath: 'Biology/cells.canvas',
        nodeId: 'n1',
        agentType,
        memoryType,
        concept: 'Cell',
        createdAt: '2026-11-26T10:00:00.000Z',
        payload: {
          group_id: 'g1',
          file_path: 'Biology/cells-explanations/scoring-agent-n1-t1.md',
          duration_ms: 42,
        },
        deliveredAt: null,
        attempts: 0,
      },
    ]);
  });

  it('stores the canonical name for an alias, so alias and name are the same event', async () => {
    await listener.onAgentCompleted(completed({ agentType: 'scoring' }));
    await listener.onAgentCompleted(completed({ agentType: 'scoring-agent' }));
    const events = await outbox.forTask('t1');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ agentType: 'scoring-agent', memoryType: 'scoring_completed' });
  });

  it('does not double a replayed completion, and wakes the drain loop for new events only', async () => {
    await listener.onAgentCompleted(completed());
    expect(notify).toHaveBeenCalledTimes(1);
    await listener.onAgentCompleted(completed({ durationMs: 99 }));
    expect(notify).toHaveBeenCalledTimes(1);
    expect(await outbox.forTask('t1')).toHaveLength(1);
    expect((await outbox.forTask('t1'))[0].payload.duration_ms).toBe(42);
  });

  it('keeps the same node in another group, or another agent on it, apart', async () => {
    await listener.onAgentCompleted(completed());
    await listener.onAgentCompleted(completed({ groupIndex: 1, groupId: 2 }));
    await listener.onAgentCompleted(completed({ agentType: 'hint-generation' }));
    expect(await outbox.forTask('t1')).toHaveLength(3);
  });

  it('records canvas_opened when a batch starts', async () => {
    await listener.onBatchStarted(started);
    expect(await outbox.forTask('t1')).toEqual([
      {
        eventId: memoryEventId('t1', 'canvas_opened'),
        taskId: 't1',
        canvasPath: 'Biology/cells.canvas',
        nodeId: null,
        agentType: 'canvas-orchestrator',
        memoryType: 'canvas_opened',
        concept: 'Biology/cells.canvas',
        createdAt: '2026-11-26T09:59:59.000Z',
        payload: { total_nodes: 5 },
        deliveredAt: null,
        attempts: 0,
      },
    ]);
    await listener.onBatchStarted(started);
    expect(await outbox.forTask('t1')).toHaveLength(1);
  });

  it('still records canvas_opened if the catalogue has no canvas-orchestrator entry', async () => {
    mockCatalogue.hidden.add('canvas-orchestrator');
    try {
      await listener.onBatchStarted(started);
    } finally {
      mockCatalogue.hidden.clear();
    }
    expect(await outbox.forTask('t1')).toMatchObject([
      { agentType: 'canvas-orchestrator', memoryType: 'canvas_opened' },
    ]);
  });

  it('swallows an unknown agent: nothing recorded, error logged, no throw', async () => {
    await expect(
      listener.onAgentCompleted(completed({ agentType: 'mystery-agent' })),
    ).resolves.toBeUndefined();
    expect(await outbox.forTask('t1')).toEqual([]);
    expect(errorLog).toHaveBeenCalledWith(
      'memory event for agent.completed t1/n1 not recorded: agent "mystery-agent" is not in the catalogue',
    );
  });

  it('swallows an outbox failure (database closed) without throwing', async () => {
    db.onApplicationShutdown();
    await expect(listener.onAgentCompleted(completed())).resolves.toBeUndefined();
    await expect(listener.onBatchStarted(started)).resolves.toBeUndefined();
    expect(errorLog).toHaveBeenCalledTimes(2);
    expect(errorLog.mock.calls[1][0]).toMatch(/^memory event for batch\.started t1 not recorded: /);
  });
});

describe('MemoryModule wiring (domain events through EventEmitter2)', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'memory-module-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('turns emitted agent.completed and batch.started events into outbox rows, drained to the embedded store', async () => {
    // standing alone: its own options, and the database and canvas modules it is handed (nothing global)
    const database = DatabaseModule.forRoot({ dataDir: dir });
    const canvas = CanvasModule.forRoot({ vaultRoot: dir });
    const moduleRef = await Test.createTestingModule({
      imports: [EventEmitterModule.forRoot(), MemoryModule.forRoot({ imports: [database, canvas] })],
    }).compile();
    const app = moduleRef.createNestApplication();
    await app.init();
    try {
      const emitter = app.get(EventEmitter2);
      const outbox = app.get(MemoryOutbox);
      await emitter.emitAsync('batch.started', started);
      await emitter.emitAsync('agent.completed', completed({ agentType: 'memory-anchor' }));
      expect((await outbox.forTask('t1')).map((e) => e.memoryType).sort()).toEqual([
        'canvas_opened',
        'node_created',
      ]);
      // no Neo4j configured: the drain loop hands both to the embedded store (SQLite table memory_events)
      for (let i = 0; i < 400 && (await outbox.counts()).pending > 0; i++)
        await new Promise((r) => setTimeout(r, 25));
      expect(await outbox.counts()).toEqual({ pending: 0, delivered: 2 });
      expect(app.get(MemoryStore)).toBeInstanceOf(EmbeddedMemoryStore);
      expect(
        app
          .get<MemoryStore, EmbeddedMemoryStore>(MemoryStore)
          .forCanvas('Biology/cells.canvas')
          .map((e) => [e.type, e.agentType, e.nodeId]),
      ).toEqual([
        ['canvas_opened', 'canvas-orchestrator', null],
        ['node_created', 'memory-anchor', 'n1'],
      ]);
      // a resumed batch hands its completed nodes over again: n1 is not doubled, n2 gets its concept from the canvas
      mkdirSync(path.join(dir, 'Biology'));
      writeFileSync(
        path.join(dir, 'Biology/cells.canvas'),
        JSON.stringify({
          nodes: [
            { id: 'n2', type: 'text', text: '# Osmosis\nWater moves.', x: 0, y: 0, width: 100, height: 100 },
          ],
          edges: [],
        }),
      );
      const { taskId, canvasPath, concept: _concept, ...n1 } = completed({ agentType: 'memory-anchor' });
      const resumed: BatchResumedEvent = {
        taskId,
        canvasPath,
        completed: [n1, { ...n1, nodeId: 'n2', completedAt: '2026-11-26T10:00:01.000Z' }],
      };
      await emitter.emitAsync('batch.resumed', resumed);
      expect((await outbox.forTask('t1')).map((e) => [e.nodeId, e.concept])).toEqual([
        [null, 'Biology/cells.canvas'],
        ['n1', 'Cell'],
        ['n2', 'Osmosis'],
      ]);
    } finally {
      await app.close();
    }
  });
});
