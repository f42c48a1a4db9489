import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { InMemoryResultCache } from './in-memory-result-cache';
import { CONTRACT_LIMITS, describeResultCacheContract } from './result-cache.contract';
import { SqliteResultCache } from './sqlite-result-cache';

/** A clock the test moves. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = Date.parse('2030-01-01T00:00:00.000Z');
  return { now: () => t, advance: (ms) => (t += ms) };
}

describeResultCacheContract('SqliteResultCache (real SQLite file)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'result-cache-contract-'));
  const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const open = (): SqliteDatabase => new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  const time = clock();
  let db = open();
  return {
    cache: new SqliteResultCache(db, CONTRACT_LIMITS, time.now),
    ...time,
    reopen: () => {
      // one process per database file: the first handle lets go before the second opens it, as in a restart
      db.onApplicationShutdown();
      db = open();
      return new SqliteResultCache(db, CONTRACT_LIMITS, time.now);
    },
    close: () => {
      db.onApplicationShutdown();
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeResultCacheContract('InMemoryResultCache', () => {
  const time = clock();
  return { cache: new InMemoryResultCache(CONTRACT_LIMITS, time.now), ...time, close: () => undefined };
});
