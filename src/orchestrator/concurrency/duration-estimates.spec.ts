import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../../config';
import { SqliteDatabase } from '../../database';
import {
  InMemoryEventLog,
  InMemoryTaskStore,
  SqliteEventLog,
  SqliteTaskStore,
  type TaskStore,
} from '../../session';
import { DurationEstimates } from './duration-estimates';

describe('DurationEstimates (real SQLite file)', () => {
  let dir: string;
  const open = () => new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  const storeOn = (db: SqliteDatabase): TaskStore => new SqliteTaskStore(db, new SqliteEventLog(db));
  const loaded = async (store: TaskStore): Promise<DurationEstimates> => {
    const estimates = new DurationEstimates(store);
    await estimates.onModuleInit();
    return estimates;
  };

  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'estimates-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('knows nothing at first, then follows observations with a weighted mean', async () => {
    const db = open();
    const estimates = await loaded(storeOn(db));
    expect(estimates.estimate('oral-explanation')).toBeUndefined();
    estimates.observe('oral-explanation', 100);
    expect(estimates.estimate('oral-explanation')).toBe(100);
    estimates.observe('oral-explanation', 200);
    expect(estimates.estimate('oral-explanation')).toBeCloseTo(120);
    expect(estimates.snapshot()).toEqual({ 'oral-explanation': { meanMs: 120, samples: 2 } });
    db.onApplicationShutdown();
  });

  it('persists what it learned, so a new process starts with it; saving twice writes once', async () => {
    const db = open();
    const store = storeOn(db);
    const write = jest.spyOn(store, 'saveAgentDurations');
    const estimates = await loaded(store);
    estimates.observe('scoring-agent', 40);
    estimates.observe('hint-generation', 10);
    await estimates.save();
    await estimates.save();
    expect(write).toHaveBeenCalledTimes(1);
    estimates.observe('scoring-agent', 60);
    await estimates.onApplicationShutdown();
    db.onApplicationShutdown();
    await estimates.save(); // a closed database is left alone

    const db2 = open();
    const again = await loaded(storeOn(db2));
    expect(again.estimate('scoring-agent')).toBeCloseTo(44);
    expect(again.snapshot()['hint-generation']).toEqual({ meanMs: 10, samples: 1 });
    db2.onApplicationShutdown();
  });
});

describe('DurationEstimates (in-memory store)', () => {
  it('keeps what the store could not take for the next save', async () => {
    const store = new InMemoryTaskStore(new InMemoryEventLog());
    const estimates = new DurationEstimates(store);
    await estimates.onModuleInit();
    const write = jest.spyOn(store, 'saveAgentDurations').mockRejectedValueOnce(new Error('store down'));
    estimates.observe('scoring-agent', 40);
    await expect(estimates.save()).rejects.toThrow('store down');
    await estimates.save();
    expect(write).toHaveBeenCalledTimes(2);
    expect(await store.agentDurations()).toEqual([{ agentType: 'scoring-agent', meanMs: 40, samples: 1 }]);
  });

  it('loads the stored estimates at start, keeping one observed before they arrived', async () => {
    const store = new InMemoryTaskStore(new InMemoryEventLog());
    await store.saveAgentDurations([
      { agentType: 'scoring-agent', meanMs: 40, samples: 3 },
      { agentType: 'hint-generation', meanMs: 10, samples: 1 },
    ]);
    const estimates = new DurationEstimates(store);
    estimates.observe('hint-generation', 99);
    await estimates.onModuleInit();
    expect(estimates.snapshot()).toEqual({
      'scoring-agent': { meanMs: 40, samples: 3 },
      'hint-generation': { meanMs: 99, samples: 1 },
    });
  });
});
