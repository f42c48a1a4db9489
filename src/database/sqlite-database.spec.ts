import { Logger } from '@nestjs/common';
import Database from 'better-sqlite3';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config/canvas-batch-options';
import { MIGRATIONS } from './migrations';
import { DATABASE_FILE, DatabaseOpenError, SqliteDatabase } from './sqlite-database';

describe('SqliteDatabase (real file)', () => {
  let base: string;
  let dataDir: string;
  const open = () => new SqliteDatabase(resolveOptions({ vaultRoot: base, dataDir }));

  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'sqlite-database-'));
    dataDir = path.join(base, 'data', 'nested');
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(base, { recursive: true, force: true });
  });

  it('creates DATA_DIR and the database file, migrated to the latest user_version', () => {
    const db = open();
    try {
      expect(db.file).toBe(path.join(dataDir, DATABASE_FILE));
      expect(existsSync(db.file)).toBe(true);
      expect(db.handle.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
      const tables = (
        db.handle.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
          name: string;
        }[]
      ).map((r) => r.name);
      expect(tables).toEqual([
        'agent_duration_estimates',
        'memory_events',
        'memory_outbox',
        'node_results',
        'task_events',
        'tasks',
      ]);
    } finally {
      db.onApplicationShutdown();
    }
  });

  it('runs with WAL, foreign keys and a busy timeout', () => {
    const db = open();
    try {
      expect(db.handle.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.handle.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.handle.pragma('busy_timeout', { simple: true })).toBe(5000);
      expect(db.handle.pragma('synchronous', { simple: true })).toBe(1);
    } finally {
      db.onApplicationShutdown();
    }
  });

  it('reopens an existing database without re-running migrations, keeping its data', () => {
    const first = open();
    first.handle
      .prepare(
        `INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at)
         VALUES ('t1', 'a.canvas', 'pending', 1, 1000, '[]', 0, '2026-01-01T00:00:00.000Z')`,
      )
      .run();
    first.onApplicationShutdown();
    const second = open();
    try {
      expect(second.handle.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
      expect(second.handle.prepare('SELECT task_id FROM tasks').all()).toEqual([{ task_id: 't1' }]);
    } finally {
      second.onApplicationShutdown();
    }
  });

  it('refuses a database from a newer version with DatabaseOpenError, leaving it as it was', () => {
    mkdirSync(dataDir, { recursive: true });
    const raw = new Database(path.join(dataDir, DATABASE_FILE));
    raw.pragma(`user_version = ${MIGRATIONS.length + 5}`);
    raw.close();
    const err: unknown = (() => {
      try {
        open();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DatabaseOpenError);
    expect((err as Error).name).toBe('DatabaseOpenError');
    expect((err as Error).message).toContain(
      `schema version ${MIGRATIONS.length + 5} is newer than this build knows (${MIGRATIONS.length}); upgrade canvas-batch`,
    );
    expect((err as Error).message).toContain('The file was left untouched');
    const check = new Database(path.join(dataDir, DATABASE_FILE), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length + 5);
    expect(check.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get()).toEqual({
      n: 0,
    });
    check.close();
  });

  it('refuses a corrupt file with DatabaseOpenError and leaves it byte for byte identical', () => {
    mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, DATABASE_FILE);
    const garbage = Buffer.alloc(8192);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 7) % 251;
    writeFileSync(file, garbage);
    expect(() => open()).toThrow(DatabaseOpenError);
    // Under Jest the native SqliteError comes from another realm, so it is described via String(): "SqliteError: …".
    expect(() => open()).toThrow(
      /^Cannot open the database .*canvas-batch\.sqlite: (SqliteError: )?file is not a database\. /,
    );
    expect(readFileSync(file).equals(garbage)).toBe(true);
    expect(readdirSync(dataDir)).toEqual([DATABASE_FILE]);
  });

  it('describes a non-Error cause too', () => {
    expect(new DatabaseOpenError('/x.sqlite', 'odd').message).toMatch(
      /^Cannot open the database \/x\.sqlite: odd\. /,
    );
  });

  it('commits a transaction and returns its value', () => {
    const db = open();
    try {
      const value = db.transaction(() => {
        db.handle
          .prepare(
            "INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at) VALUES ('t', 'c', 'pending', 1, 1, '[]', 0, 'now')",
          )
          .run();
        return 42;
      });
      expect(value).toBe(42);
      expect(db.handle.prepare('SELECT count(*) AS n FROM tasks').get()).toEqual({ n: 1 });
    } finally {
      db.onApplicationShutdown();
    }
  });

  it('rolls a transaction back when it throws', () => {
    const db = open();
    try {
      expect(() =>
        db.transaction(() => {
          db.handle
            .prepare(
              "INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at) VALUES ('t', 'c', 'pending', 1, 1, '[]', 0, 'now')",
            )
            .run();
          throw new Error('abort');
        }),
      ).toThrow('abort');
      expect(db.handle.prepare('SELECT count(*) AS n FROM tasks').get()).toEqual({ n: 0 });
    } finally {
      db.onApplicationShutdown();
    }
  });

  it('closes the handle on module destroy, once', () => {
    const db = open();
    db.onApplicationShutdown();
    expect(db.handle.open).toBe(false);
    expect(() => db.onApplicationShutdown()).not.toThrow();
  });
});

describe('migration from schema version 1', () => {
  it('upgrades a version-1 database in place, keeping its tasks', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'migrate-'));
    try {
      const old = new Database(path.join(dir, DATABASE_FILE));
      old.exec(MIGRATIONS[0]);
      old.pragma('user_version = 1');
      old
        .prepare(
          `INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at)
         VALUES ('t-old', 'a.canvas', 'running', 4, 600000, '[]', 0, '2026-01-01T00:00:00.000Z')`,
        )
        .run();
      old.close();

      jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
      const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
      try {
        expect(db.handle.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
        expect(MIGRATIONS.length).toBeGreaterThanOrEqual(2);
        const row = db.handle.prepare('SELECT * FROM tasks WHERE task_id = ?').get('t-old') as Record<
          string,
          unknown
        >;
        expect(row).toMatchObject({
          status: 'running',
          resume_count: 0,
          peak_concurrent: 0,
          cancel_requested: null,
        });
      } finally {
        db.onApplicationShutdown();
        jest.restoreAllMocks();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
