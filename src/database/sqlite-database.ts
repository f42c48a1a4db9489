import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../config/canvas-batch-options';
import { MIGRATIONS } from './migrations';

export const DATABASE_FILE = 'canvas-batch.sqlite';

export class DatabaseLockedError extends Error {
  constructor(file: string) {
    super(
      `Another canvas-batch process is using ${file}. Stop it, or give this one its own DATA_DIR; ` +
        "two processes on one database would corrupt each other's state.",
    );
    this.name = 'DatabaseLockedError';
  }
}

export class DatabaseOpenError extends Error {
  constructor(file: string, cause: unknown) {
    super(
      `Cannot open the database ${file}: ${cause instanceof Error ? cause.message : String(cause)}. ` +
        'The file was left untouched; move it away or point DATA_DIR elsewhere to start with an empty database.',
    );
    this.name = 'DatabaseOpenError';
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

  constructor(@InjectCanvasBatchOptions() options: ResolvedCanvasBatchOptions) {
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.file = path.join(options.dataDir, DATABASE_FILE);
    let db: Database.Database | undefined;
    try {
      db = new Database(this.file, { fileMustExist: false });
      // One process per DATA_DIR: the exclusive lock is taken now and held until the process ends (the OS
      // releases it even on SIGKILL); a second process fails at once instead of waiting.
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      db.pragma('busy_timeout = 5000');
    } catch (err) {
      db?.close();
      if ((err as { code?: unknown }).code === 'SQLITE_BUSY') throw new DatabaseLockedError(this.file);
      throw new DatabaseOpenError(this.file, err);
    }
    this.handle = db;
    this.logger.log(`database ${this.file} at schema version ${MIGRATIONS.length}`);
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
