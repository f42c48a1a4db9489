import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { InMemoryMemoryOutbox } from './in-memory-memory-outbox';
import { memoryEventId } from './memory-outbox';
import { describeMemoryOutboxContract } from './memory-outbox.contract';
import { SqliteMemoryOutbox } from './sqlite-memory-outbox';

/** A fresh database file in its own folder, closed and removed by `close`. */
function sqliteFile(): { db: SqliteDatabase; close(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'memory-outbox-'));
  const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  return {
    db,
    close: () => {
      db.onApplicationShutdown();
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeMemoryOutboxContract('SqliteMemoryOutbox (real SQLite file)', () => {
  const { db, close } = sqliteFile();
  return { outbox: new SqliteMemoryOutbox(db), close };
});

describeMemoryOutboxContract('InMemoryMemoryOutbox', () => ({
  outbox: new InMemoryMemoryOutbox(),
  close: () => undefined,
}));

describe('SqliteMemoryOutbox (what only SQL shows)', () => {
  let file: ReturnType<typeof sqliteFile>;
  let outbox: SqliteMemoryOutbox;

  beforeEach(() => {
    file = sqliteFile();
    outbox = new SqliteMemoryOutbox(file.db);
  });

  afterEach(() => file.close());

  const draft = {
    eventId: 'e1',
    taskId: 't1',
    canvasPath: 'Biology/cells.canvas',
    nodeId: 'n1',
    agentType: 'oral-explanation',
    memoryType: 'explanation_generated' as const,
    concept: 'Cell',
    createdAt: '2026-11-26T10:00:00.000Z',
    payload: { duration_ms: 12 },
  };

  it('keeps the last error of a pending event, cut to 1000 characters', async () => {
    await outbox.append(draft);
    await outbox.recordFailure(['e1'], `boom ${'x'.repeat(2000)}`);
    const row = file.db.handle.prepare('SELECT last_error FROM memory_outbox').get() as {
      last_error: string;
    };
    expect(row.last_error).toHaveLength(1000);
    expect(row.last_error.startsWith('boom x')).toBe(true);
  });

  it('reads rows another writer changed (the delivered mark is the column, not a cache)', async () => {
    await outbox.append(draft);
    file.db.handle
      .prepare("UPDATE memory_outbox SET delivered_at = 'now', attempts = 1 WHERE event_id = 'e1'")
      .run();
    await expect(outbox.counts()).resolves.toEqual({ pending: 0, delivered: 1 });
    expect((await outbox.forTask('t1'))[0]).toMatchObject({ deliveredAt: 'now', attempts: 1 });
  });

  it('rejects (never throws) once the database is closed', async () => {
    file.db.onApplicationShutdown();
    await expect(outbox.append(draft)).rejects.toThrow(/not open/);
    await expect(outbox.counts()).rejects.toThrow(/not open/);
    await expect(outbox.pendingBatch(1)).rejects.toThrow(/not open/);
    await expect(outbox.markDelivered(['e1'], 'now')).rejects.toThrow(/not open/);
    await expect(outbox.recordFailure(['e1'], 'x')).rejects.toThrow(/not open/);
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
