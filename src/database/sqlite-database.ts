import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  StartupError,
  type AccessCheck,
  checkAccess,
  DataDirNotWritableError,
  ensureDataDir,
  processUser,
} from '../config';
import { InjectDatabaseOptions, type DatabaseModuleOptions } from './database.module-definition';
import { MIGRATIONS } from './migrations';

export const DATABASE_FILE = 'canvas-batch.sqlite';

export class DatabaseLockedError extends StartupError {
  constructor(file: string) {
    super(
      `Another canvas-batch process is using ${file}. Stop it, or give this one its own DATA_DIR; ` +
        "two processes on one database would corrupt each other's state.",
    );
  }
}

export class DatabaseOpenError extends StartupError {
  constructor(file: string, cause: unknown) {
    super(
      `Cannot open the database ${file}: ${cause instanceof Error ? cause.message : String(cause)}. ` +
        'The file was left untouched; move it away or point DATA_DIR elsewhere to start with an empty database.',
      { cause },
    );
  }
}

/** The database file exists but this process may not write it (nor, with `folderToo`, its folder). */
export class DatabaseReadOnlyError extends StartupError {
  constructor(file: string, code: string, folderToo: boolean) {
    const what = folderToo ? 'it and its folder DATA_DIR' : 'it';
    const are = folderToo ? 'are' : 'is';
    super(
      code === 'EROFS'
        ? `Cannot open the database ${file}: it is on a read-only file system (EROFS). canvas-batch writes to its ` +
            'database: move DATA_DIR to a writable file system, or mount this one writable. The file was left untouched.'
        : `Cannot open the database ${file}: ${what} ${are} read-only for ${processUser()} (${code}). canvas-batch ` +
            `writes to its database: make ${what} writable for that user, or run canvas-batch as the user that owns ` +
            'the file. The file was left untouched.',
    );
  }
}

/** `PRAGMA quick_check` found the file damaged (or could not read it through). */
class IntegrityCheckFailed extends Error {
  constructor(readonly problems: string[]) {
    super(
      `the integrity check (PRAGMA quick_check) found it damaged: ${problems[0]}` +
        (problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : ''),
    );
  }
}

/**
 * The embedded SQLite database under `DATA_DIR`: WAL mode, a busy timeout, forward migrations at start-up.
 * The one owner of the handle; closes it in the last shutdown phase, after every dependent has stopped.
 */
@Injectable()
export class SqliteDatabase implements OnApplicationShutdown {
  private readonly logger = new Logger(SqliteDatabase.name);
  readonly handle: Database.Database;
  readonly file: string;

  constructor(@InjectDatabaseOptions() options: DatabaseModuleOptions) {
    ensureDataDir(options.dataDir);
    this.file = path.join(options.dataDir, DATABASE_FILE);
    const existed = fs.existsSync(this.file);
    let db: Database.Database | undefined;
    let checkedMs: number | undefined;
    try {
      db = new Database(this.file, { fileMustExist: false });
      // One process per DATA_DIR: the exclusive lock is taken by the first access and held until the process ends
      // (the OS releases it even on SIGKILL); a second process fails at once instead of waiting.
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      // Before anything writes: a damaged file is refused as it is, instead of serving wrong counts.
      if (existed) checkedMs = checkIntegrity(db);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      db.pragma('busy_timeout = 5000');
    } catch (err) {
      db?.close();
      throw openFailure(this.file, options.dataDir, err);
    }
    this.handle = db;
    this.logger.log(
      `database ${this.file} at schema version ${MIGRATIONS.length}` +
        (checkedMs === undefined ? ' (new)' : ` (integrity checked in ${checkedMs} ms)`),
    );
  }

  /** Runs `fn` inside one transaction (BEGIN IMMEDIATE). */
  transaction<T>(fn: () => T): T {
    return this.handle.transaction(fn).immediate();
  }

  /** Last shutdown phase: every module has stopped writing (its `onModuleDestroy` ran) before the handle closes. */
  onApplicationShutdown(): void {
    if (this.handle.open) this.handle.close();
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  // a write, even when nothing migrates: takes the exclusive lock now
  db.pragma(`user_version = ${current}`);
  if (current > MIGRATIONS.length) {
    throw new Error(
      `schema version ${current} is newer than this build knows (${MIGRATIONS.length}); upgrade canvas-batch`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

/**
 * `PRAGMA quick_check`: every page of every b-tree is read and its structure checked (not the agreement of indexes
 * with their tables: that is `integrity_check`, about 1.5 times slower). Returns the time it took in ms.
 */
function checkIntegrity(db: Database.Database): number {
  const t0 = performance.now();
  let rows: { quick_check: string }[];
  try {
    rows = db.pragma('quick_check') as { quick_check: string }[];
  } catch (err) {
    // a b-tree too damaged to walk; a file that is no database at all keeps SQLite's own words
    if (errorCode(err).startsWith('SQLITE_CORRUPT')) throw new IntegrityCheckFailed([errorMessage(err)]);
    throw err;
  }
  const problems = rows
    .flatMap((r) => String(r.quick_check).split('\n'))
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== 'ok' && !line.startsWith('*** '));
  if (problems.length) throw new IntegrityCheckFailed(problems);
  return Math.round(performance.now() - t0);
}

/** What to tell the operator about a database that could not be opened. */
export function openFailure(
  file: string,
  dataDir: string,
  err: unknown,
  access: AccessCheck = checkAccess,
): Error {
  const code = errorCode(err);
  if (code === 'SQLITE_BUSY') return new DatabaseLockedError(file);
  if (err instanceof IntegrityCheckFailed) return new DatabaseOpenError(file, err.message);
  // SQLite says "unable to open database file", "disk I/O error" or "attempt to write a readonly database": the
  // permissions say which file or folder is in the way
  if (/^SQLITE_(CANTOPEN|READONLY|IOERR|PERM|AUTH)/.test(code)) {
    const folder = access(dataDir, fs.constants.W_OK | fs.constants.X_OK);
    const database = fs.existsSync(file) ? access(file, fs.constants.R_OK | fs.constants.W_OK) : undefined;
    if (database) return new DatabaseReadOnlyError(file, database, folder !== undefined);
    if (folder) return new DataDirNotWritableError(dataDir, folder);
  }
  return new DatabaseOpenError(file, errorMessage(err));
}

/** `SQLITE_…` or `E…` when the error has a code, else ''. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** The message of an error, also of a native one from another realm (Jest), without its class name. */
function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}
