import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { describeGeneratedNodesContract } from './generated-nodes.contract';
import { InMemoryGeneratedNodes } from './in-memory-generated-nodes';
import { SqliteGeneratedNodes } from './sqlite-generated-nodes';

describeGeneratedNodesContract('SqliteGeneratedNodes (real SQLite file)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'generated-nodes-contract-'));
  const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const open = (): SqliteDatabase => new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  let db = open();
  return {
    store: new SqliteGeneratedNodes(db),
    reopen: () => {
      // one process per database file: the first handle lets go before the second opens it, as in a restart
      db.onApplicationShutdown();
      db = open();
      return new SqliteGeneratedNodes(db);
    },
    close: () => {
      db.onApplicationShutdown();
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeGeneratedNodesContract('InMemoryGeneratedNodes', () => ({
  store: new InMemoryGeneratedNodes(),
  close: () => undefined,
}));
