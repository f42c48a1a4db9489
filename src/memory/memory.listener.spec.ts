import { Global, Logger, Module } from '@nestjs/common';
import { EventEmitter2, EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RESOLVED_OPTIONS, resolveOptions } from '../config';
import type { AgentCompletedEvent, BatchStartedEvent } from '../common';
import { SqliteDatabase } from '../database';
import { EmbeddedMemoryStore } from './embedded-memory-store';
import { MemoryDeliveryService } from './memory-delivery.service';
import { MemoryStore } from './memory-store';
import { memoryEventId, MemoryOutboxRepository } from './memory-outbox.repository';
import { MemoryListener } from './memory.listener';
import { MemoryModule } from './memory.module';

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
  let outbox: MemoryOutboxRepository;
  let listener: MemoryListener;
  let errorLog: jest.SpyInstance;
  let notify: jest.Mock;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'memory-listener-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    errorLog = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    outbox = new MemoryOutboxRepository(db);
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
  ])('records %s as a %s memory event', (agentType, memoryType) => {
    listener.onAgentCompleted(completed({ agentType }));
    expect(outbox.forTask('t1')).toEqual([
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

  it('stores the canonical name for an alias, so alias and name are the same event', () => {
    listener.onAgentCompleted(completed({ agentType: 'scoring' }));
    listener.onAgentCompleted(completed({ agentType: 'scoring-agent' }));
    const events = outbox.forTask('t1');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ agentType: 'scoring-agent', memoryType: 'scoring_completed' });
  });

  it('does not double a replayed completion, and wakes the drain loop for new events only', () => {
    listener.onAgentCompleted(completed());
    expect(notify).toHaveBeenCalledTimes(1);
    listener.onAgentCompleted(completed({ durationMs: 99 }));
    expect(notify).toHaveBeenCalledTimes(1);
    expect(outbox.forTask('t1')).toHaveLength(1);
    expect(outbox.forTask('t1')[0].payload.duration_ms).toBe(42);
  });

  it('keeps the same node in another group, or another agent on it, apart', () => {
    listener.onAgentCompleted(completed());
    listener.onAgentCompleted(completed({ groupIndex: 1, groupId: 2 }));
    listener.onAgentCompleted(completed({ agentType: 'hint-generation' }));
    expect(outbox.forTask('t1')).toHaveLength(3);
  });

  it('records canvas_opened when a batch starts', () => {
    listener.onBatchStarted(started);
    expect(outbox.forTask('t1')).toEqual([
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
    listener.onBatchStarted(started);
    expect(outbox.forTask('t1')).toHaveLength(1);
  });

  it('still records canvas_opened if the catalogue has no canvas-orchestrator entry', () => {
    mockCatalogue.hidden.add('canvas-orchestrator');
    try {
      listener.onBatchStarted(started);
    } finally {
      mockCatalogue.hidden.clear();
    }
    expect(outbox.forTask('t1')).toMatchObject([
      { agentType: 'canvas-orchestrator', memoryType: 'canvas_opened' },
    ]);
  });

  it('swallows an unknown agent: nothing recorded, error logged, no throw', () => {
    expect(() => listener.onAgentCompleted(completed({ agentType: 'mystery-agent' }))).not.toThrow();
    expect(outbox.forTask('t1')).toEqual([]);
    expect(errorLog).toHaveBeenCalledWith(
      'memory event for agent.completed t1/n1 not recorded: agent "mystery-agent" is not in the catalogue',
    );
  });

  it('swallows an outbox failure (database closed) without throwing', () => {
    db.onApplicationShutdown();
    expect(() => listener.onAgentCompleted(completed())).not.toThrow();
    expect(() => listener.onBatchStarted(started)).not.toThrow();
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
    @Global()
    @Module({
      providers: [{ provide: RESOLVED_OPTIONS, useValue: resolveOptions({ vaultRoot: dir, dataDir: dir }) }],
      exports: [RESOLVED_OPTIONS],
    })
    class OptionsModule {}
    const moduleRef = await Test.createTestingModule({
      imports: [OptionsModule, EventEmitterModule.forRoot(), MemoryModule],
    }).compile();
    const app = moduleRef.createNestApplication();
    await app.init();
    try {
      const emitter = app.get(EventEmitter2);
      const outbox = app.get(MemoryOutboxRepository);
      await emitter.emitAsync('batch.started', started);
      await emitter.emitAsync('agent.completed', completed({ agentType: 'memory-anchor' }));
      expect(
        outbox
          .forTask('t1')
          .map((e) => e.memoryType)
          .sort(),
      ).toEqual(['canvas_opened', 'node_created']);
      // no Neo4j configured: the drain loop hands both to the embedded store (SQLite table memory_events)
      for (let i = 0; i < 400 && outbox.counts().pending > 0; i++)
        await new Promise((r) => setTimeout(r, 25));
      expect(outbox.counts()).toEqual({ pending: 0, delivered: 2 });
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
    } finally {
      await app.close();
    }
  });
});
