import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DatabaseModule } from './database.module';
import { DATABASE_FILE, SqliteDatabase } from './sqlite-database';

describe('DatabaseModule', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'database-module-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['forRoot', (dataDir: string) => DatabaseModule.forRoot({ dataDir })],
    ['forRootAsync', (dataDir: string) => DatabaseModule.forRootAsync({ useFactory: () => ({ dataDir }) })],
  ])('%s opens the database in its own dataDir and closes it with the module', async (_, make) => {
    const dataDir = path.join(dir, 'data');
    const moduleRef = await Test.createTestingModule({ imports: [make(dataDir)] }).compile();
    const db = moduleRef.get(SqliteDatabase);
    expect(db.file).toBe(path.join(dataDir, DATABASE_FILE));
    await moduleRef.close();
    expect(db.handle.open).toBe(false);
  });
});
