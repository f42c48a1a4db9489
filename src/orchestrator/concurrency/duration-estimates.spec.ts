import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../../config';
import { SqliteDatabase } from '../../database';
import { SqliteTaskStore } from '../../session';
import { DurationEstimates } from './duration-estimates';

describe('DurationEstimates (real SQLite file)', () => {
  let dir: string;
  const open = () => new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));

  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'estimates-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('knows nothing at first, then follows observations with a weighted mean', () => {
    const db = open();
    const estimates = new DurationEstimates(new SqliteTaskStore(db));
    expect(estimates.estimate('oral-explanation')).toBeUndefined();
    estimates.observe('oral-explanation', 100);
    expect(estimates.estimate('oral-explanation')).toBe(100);
    estimates.observe('oral-explanation', 200);
    expect(estimates.estimate('oral-explanation')).toBeCloseTo(120);
    expect(estimates.snapshot()).toEqual({ 'oral-explanation': { meanMs: 120, samples: 2 } });
    db.onApplicationShutdown();
  });

  it('persists what it learned, so a new process starts with it; saving twice writes once', () => {
    const db = open();
    const estimates = new DurationEstimates(new SqliteTaskStore(db));
    estimates.observe('scoring-agent', 40);
    estimates.observe('hint-generation', 10);
    estimates.save();
    estimates.save();
    estimates.observe('scoring-agent', 60);
    estimates.onApplicationShutdown();
    db.onApplicationShutdown();
    estimates.save(); // a closed database is left alone

    const db2 = open();
    const again = new DurationEstimates(new SqliteTaskStore(db2));
    expect(again.estimate('scoring-agent')).toBeCloseTo(44);
    expect(again.snapshot()['hint-generation']).toEqual({ meanMs: 10, samples: 1 });
    db2.onApplicationShutdown();
  });
});
