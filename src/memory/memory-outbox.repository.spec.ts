import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { type MemoryEvent, memoryEventId, MemoryOutboxRepository } from './memory-outbox.repository';

const draft = (
  eventId: string,
  overrides: Partial<MemoryEvent> = {},
): Omit<MemoryEvent, 'deliveredAt' | 'attempts'> => ({
  eventId,
  taskId: 't1',
  canvasPath: 'Biology/cells.canvas',
  nodeId: 'n1',
  agentType: 'oral-explanation',
  memoryType: 'explanation_generated',
  concept: 'Cell',
  createdAt: '2026-11-26T10:00:00.000Z',
  payload: { file_path: 'x.md', duration_ms: 12, group_id: 7 },
  ...overrides,
});

describe('MemoryOutboxRepository (real SQLite file)', () => {
  let dir: string;
  let db: SqliteDatabase;
  let outbox: MemoryOutboxRepository;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'memory-outbox-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    outbox = new MemoryOutboxRepository(db);
  });

  afterEach(() => {
    db.onApplicationShutdown();
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('appends an event and reads it back, pending and never attempted', () => {
    expect(outbox.append(draft('e1'))).toBe(true);
    expect(outbox.forTask('t1')).toEqual([{ ...draft('e1'), deliveredAt: null, attempts: 0 }]);
  });

  it('is idempotent by event id: a replay stores nothing and keeps the first version', () => {
    expect(outbox.append(draft('e1'))).toBe(true);
    expect(outbox.append(draft('e1', { concept: 'changed' }))).toBe(false);
    const events = outbox.forTask('t1');
    expect(events).toHaveLength(1);
    expect(events[0].concept).toBe('Cell');
    expect(outbox.counts()).toEqual({ pending: 1, delivered: 0 });
  });

  it('keeps a null node id (canvas-level events)', () => {
    outbox.append(draft('e1', { nodeId: null, memoryType: 'canvas_opened' }));
    expect(outbox.forTask('t1')[0]).toMatchObject({ nodeId: null, memoryType: 'canvas_opened' });
  });

  it('lists only the given task, oldest first', () => {
    outbox.append(draft('late', { createdAt: '2026-11-26T10:00:05.000Z' }));
    outbox.append(draft('early', { createdAt: '2026-11-26T10:00:01.000Z' }));
    outbox.append(draft('other-task', { taskId: 't2' }));
    expect(outbox.forTask('t1').map((e) => e.eventId)).toEqual(['early', 'late']);
    expect(outbox.forTask('t2').map((e) => e.eventId)).toEqual(['other-task']);
    expect(outbox.forTask('none')).toEqual([]);
  });

  it('counts pending and delivered events', () => {
    expect(outbox.counts()).toEqual({ pending: 0, delivered: 0 });
    outbox.append(draft('e1'));
    outbox.append(draft('e2'));
    outbox.append(draft('e3'));
    db.handle
      .prepare("UPDATE memory_outbox SET delivered_at = 'now', attempts = 1 WHERE event_id = 'e2'")
      .run();
    expect(outbox.counts()).toEqual({ pending: 2, delivered: 1 });
    expect(outbox.forTask('t1').find((e) => e.eventId === 'e2')).toMatchObject({
      deliveredAt: 'now',
      attempts: 1,
    });
  });
});

describe('memoryEventId', () => {
  it('is a deterministic 32-hex id of its parts', () => {
    expect(memoryEventId('t1', 0, 'n1', 'scoring-agent')).toMatch(/^[0-9a-f]{32}$/);
    expect(memoryEventId('t1', 0, 'n1', 'scoring-agent')).toBe(memoryEventId('t1', 0, 'n1', 'scoring-agent'));
  });

  it('differs when any part differs, and does not confuse part boundaries', () => {
    const base = memoryEventId('t1', 0, 'n1', 'a');
    expect(memoryEventId('t1', 1, 'n1', 'a')).not.toBe(base);
    expect(memoryEventId('t2', 0, 'n1', 'a')).not.toBe(base);
    expect(memoryEventId('ab', 'c')).not.toBe(memoryEventId('a', 'bc'));
  });
});
