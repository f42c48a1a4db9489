import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describeWithService, neo4jFromEnv, reachableSync } from '../../test/support/neo4j';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { EmbeddedMemoryStore } from './embedded-memory-store';
import { describeMemoryStoreRecallContract } from './memory-store-recall.contract';
import { Neo4jMemoryStore } from './neo4j-memory-store';

describeMemoryStoreRecallContract('EmbeddedMemoryStore (SQLite file)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'canvas-batch-recall-'));
  const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  return {
    store: new EmbeddedMemoryStore(db),
    close: () => {
      db.onApplicationShutdown();
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

const neo4j = neo4jFromEnv();
const missing = !neo4j
  ? 'NEO4J_URI is not set (see docs/testing.md "Neo4j")'
  : !reachableSync(neo4j.uri)
    ? `NEO4J_URI ${neo4j.uri} is not reachable`
    : undefined;

describeWithService('Neo4jMemoryStore recall (NEO4J_URI)', missing, () => {
  describeMemoryStoreRecallContract('Neo4jMemoryStore (real Neo4j)', () => {
    const store = new Neo4jMemoryStore(neo4j ?? { uri: 'bolt://unset', user: '', password: '' }, 10_000);
    return { store, close: () => store.onApplicationShutdown() };
  });
});
