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
import { resolveOptions, type AccessCheck, DataDirNotWritableError } from '../config';
import { MIGRATIONS } from './migrations';
import {
  DATABASE_FILE,
  DatabaseLockedError,
  DatabaseOpenError,
  DatabaseReadOnlyError,
  openFailure,
  SqliteDatabase,
} from './sqlite-database';

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
        'budget_ledger',
        'generated_items',
        'memory_events',
        'memory_outbox',
        'node_results',
        'result_cache',
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

  it('refuses a populated file damaged in a middle page (PRAGMA quick_check), leaving it byte for byte as it was', () => {
    const db = open();
    db.handle
      .prepare(
        `INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at)
         VALUES ('t', 'a.canvas', 'completed', 1, 1000, '[]', 300, '2026-01-01T00:00:00.000Z')`,
      )
      .run();
    const insert = db.handle.prepare(
      `INSERT INTO node_results (task_id, group_index, node_id, outcome, file_path, finished_at)
       VALUES ('t', 0, ?, 'completed', ?, '2026-01-01T00:00:00.000Z')`,
    );
    db.transaction(() => {
      for (let i = 0; i < 300; i++) insert.run(`node-${i}`, `Biology/cells-explanations/result ${i}.md`);
    });
    const leaves = db.handle
      .prepare("SELECT pageno FROM dbstat WHERE name = 'node_results' AND pagetype = 'leaf' ORDER BY pageno")
      .all() as { pageno: number }[];
    const pageSize = db.handle.pragma('page_size', { simple: true }) as number;
    db.onApplicationShutdown();
    const page = leaves[Math.floor(leaves.length / 2)].pageno;
    const file = path.join(dataDir, DATABASE_FILE);
    const bytes = readFileSync(file);
    bytes.fill(0xa5, (page - 1) * pageSize, page * pageSize);
    writeFileSync(file, bytes);

    const err: unknown = (() => {
      try {
        open();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DatabaseOpenError);
    expect((err as Error).message).toMatch(
      /^Cannot open the database .*canvas-batch\.sqlite: the integrity check \(PRAGMA quick_check\) found it damaged: .+\. The file was left untouched; move it away or point DATA_DIR elsewhere to start with an empty database\.$/,
    );
    expect(readFileSync(file).equals(bytes)).toBe(true);
    expect(readdirSync(dataDir)).toEqual([DATABASE_FILE]);
  });

  it('names the problems quick_check lists (a damaged index), how many there are, and refuses', () => {
    const db = open();
    const { rootpage } = db.handle
      .prepare("SELECT rootpage FROM sqlite_master WHERE name = 'tasks_created_at'")
      .get() as { rootpage: number };
    const pageSize = db.handle.pragma('page_size', { simple: true }) as number;
    db.onApplicationShutdown();
    const file = path.join(dataDir, DATABASE_FILE);
    const bytes = readFileSync(file);
    bytes.fill(0xa5, (rootpage - 1) * pageSize, rootpage * pageSize);
    writeFileSync(file, bytes);
    expect(() => open()).toThrow(
      new RegExp(
        `: the integrity check \\(PRAGMA quick_check\\) found it damaged: Tree ${rootpage} page ${rootpage}: .+\\. The file was left untouched`,
      ),
    );
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it('logs how long the integrity check of an existing file took', () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    open().onApplicationShutdown();
    expect(log).toHaveBeenLastCalledWith(expect.stringMatching(/at schema version \d+ \(new\)$/));
    open().onApplicationShutdown();
    expect(log).toHaveBeenLastCalledWith(
      expect.stringMatching(/at schema version \d+ \(integrity checked in \d+ ms\)$/),
    );
  });

  it('refuses a file where DATA_DIR should be with a StartupError saying so', () => {
    mkdirSync(path.dirname(dataDir), { recursive: true });
    writeFileSync(dataDir, 'not a folder');
    expect(() => open()).toThrow(
      `DATA_DIR ${dataDir} cannot be created: ${dataDir} is a file, not a folder (EEXIST). Set DATA_DIR to a folder, or move the file away.`,
    );
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

describe('openFailure: what a database that cannot be opened is told as', () => {
  const file = path.join(tmpdir(), 'no-such-dir', DATABASE_FILE);
  const dataDir = path.dirname(file);
  const sqlite = (code: string, message: string) => Object.assign(new Error(message), { code });
  /** Access as `denied` says: `{ [path]: code }`; everything else allowed. */
  const access =
    (denied: Record<string, string>): AccessCheck =>
    (target) =>
      denied[target];
  let existingDir: string;
  let existing: string;
  beforeAll(() => {
    existingDir = mkdtempSync(path.join(tmpdir(), 'open-failure-'));
    existing = path.join(existingDir, DATABASE_FILE);
    writeFileSync(existing, '');
  });
  afterAll(() => rmSync(existingDir, { recursive: true, force: true }));

  it('another process holding the lock', () => {
    expect(openFailure(file, dataDir, sqlite('SQLITE_BUSY', 'database is locked'))).toBeInstanceOf(
      DatabaseLockedError,
    );
  });

  it('a DATA_DIR that is not writable, whatever SQLite calls it', () => {
    for (const [code, message] of [
      ['SQLITE_CANTOPEN', 'unable to open database file'],
      ['SQLITE_IOERR_LOCK', 'disk I/O error'],
      ['SQLITE_READONLY_DIRECTORY', 'attempt to write a readonly database'],
    ]) {
      const err = openFailure(file, dataDir, sqlite(code, message), access({ [dataDir]: 'EACCES' }));
      expect(err).toBeInstanceOf(DataDirNotWritableError);
      expect(err.message).toMatch(
        new RegExp(
          `^DATA_DIR ${dataDir} is not writable for .+ \\(EACCES\\): canvas-batch keeps its database there\\.`,
        ),
      );
      expect(err.message).not.toContain(message);
    }
  });

  it('a read-only database file, alone or with its folder, or on a read-only file system', () => {
    const io = sqlite('SQLITE_IOERR_LOCK', 'disk I/O error');
    const alone = openFailure(existing, existingDir, io, access({ [existing]: 'EACCES' }));
    expect(alone).toBeInstanceOf(DatabaseReadOnlyError);
    expect(alone.message).toMatch(
      new RegExp(
        `^Cannot open the database ${existing}: it is read-only for .+ \\(EACCES\\)\\. canvas-batch writes to its database: make it writable for that user, or run canvas-batch as the user that owns the file\\. The file was left untouched\\.$`,
      ),
    );
    const both = openFailure(
      existing,
      existingDir,
      io,
      access({ [existing]: 'EACCES', [existingDir]: 'EACCES' }),
    );
    expect(both.message).toContain('it and its folder DATA_DIR are read-only for');
    expect(both.message).toContain('make it and its folder DATA_DIR writable for that user');
    const readOnlyFs = openFailure(
      existing,
      existingDir,
      io,
      access({ [existing]: 'EROFS', [existingDir]: 'EROFS' }),
    );
    expect(readOnlyFs.message).toBe(
      `Cannot open the database ${existing}: it is on a read-only file system (EROFS). canvas-batch writes to its database: move DATA_DIR to a writable file system, or mount this one writable. The file was left untouched.`,
    );
  });

  it("SQLite's own words when the permissions are not the reason", () => {
    const err = openFailure(existing, existingDir, sqlite('SQLITE_IOERR', 'disk I/O error'), access({}));
    expect(err).toBeInstanceOf(DatabaseOpenError);
    expect(err.message).toMatch(
      /^Cannot open the database .+: disk I\/O error\. The file was left untouched/,
    );
    expect(openFailure(file, dataDir, sqlite('SQLITE_FULL', 'database or disk is full')).message).toContain(
      ': database or disk is full. ',
    );
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

describe('migration from schema version 6', () => {
  it('adds the table of generated canvas items, empty, keeping what was stored', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'migrate-6-'));
    try {
      const old = new Database(path.join(dir, DATABASE_FILE));
      for (const m of MIGRATIONS.slice(0, 6)) old.exec(m);
      old.pragma('user_version = 6');
      old
        .prepare(
          `INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at)
         VALUES ('t-old', 'a.canvas', 'completed', 4, 600000, '[]', 0, '2026-01-01T00:00:00.000Z')`,
        )
        .run();
      old.close();

      jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
      const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
      try {
        expect(db.handle.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
        expect(db.handle.prepare('SELECT task_id FROM tasks').pluck().all()).toEqual(['t-old']);
        expect(db.handle.prepare('SELECT count(*) FROM generated_items').pluck().get()).toBe(0);
        const insert = db.handle.prepare(
          `INSERT INTO generated_items (canvas_path, kind, item_id, task_id) VALUES ('a.canvas', ?, 'x', 't-old')`,
        );
        insert.run('node');
        insert.run('edge');
        expect(() => insert.run('group')).toThrow(/CHECK constraint failed/);
        expect(() => insert.run('node')).toThrow(/UNIQUE constraint failed/);
      } finally {
        db.onApplicationShutdown();
        jest.restoreAllMocks();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('migration from schema version 8', () => {
  it('adds the result cache, empty; an older task keeps the cache on and its results are not cached ones', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'migrate-8-'));
    try {
      const old = new Database(path.join(dir, DATABASE_FILE));
      for (const m of MIGRATIONS.slice(0, 8)) old.exec(m);
      old.pragma('user_version = 8');
      old
        .prepare(
          `INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at)
         VALUES ('t-old', 'a.canvas', 'completed', 4, 600000, '[]', 0, '2026-01-01T00:00:00.000Z')`,
        )
        .run();
      old
        .prepare(
          `INSERT INTO node_results (task_id, group_index, node_id, outcome, finished_at)
         VALUES ('t-old', 0, 'n1', 'completed', '2026-01-01T00:00:01.000Z')`,
        )
        .run();
      old.close();

      jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
      const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
      try {
        expect(db.handle.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
        expect(db.handle.prepare('SELECT result_cache FROM tasks').pluck().all()).toEqual([1]);
        expect(db.handle.prepare('SELECT cached FROM node_results').pluck().all()).toEqual([null]);
        expect(db.handle.prepare('SELECT count(*) FROM result_cache').pluck().get()).toBe(0);
      } finally {
        db.onApplicationShutdown();
        jest.restoreAllMocks();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
