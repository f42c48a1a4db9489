import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DatabaseModule, SqliteDatabase } from '../database';
import { GeneratedNodes } from './generated-nodes';
import { SessionModule } from './session.module';
import { SqliteGeneratedNodes } from './sqlite-generated-nodes';
import { SqliteTaskStore } from './sqlite-task-store';
import { TaskStore } from './task-store';

describe('SessionModule wiring', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'session-module-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds TaskStore and GeneratedNodes to SQLite, and on close stops the cleanup timer and closes the database', async () => {
    const setIntervalSpy = jest.spyOn(global, 'setInterval');
    const clearIntervalSpy = jest.spyOn(global, 'clearInterval');
    // standing alone: its own options and the database module it is handed, nothing global
    const database = DatabaseModule.forRoot({ dataDir: dir });
    const moduleRef = await Test.createTestingModule({
      imports: [SessionModule.forRoot({ cleanupIntervalMs: 45_000, imports: [database] })],
    }).compile();
    const app = moduleRef.createNestApplication();
    await app.init();

    const store = app.get(TaskStore);
    expect(store).toBeInstanceOf(SqliteTaskStore);
    expect(app.get(GeneratedNodes)).toBeInstanceOf(SqliteGeneratedNodes);
    const db = app.get(SqliteDatabase);
    expect(db.handle.open).toBe(true);
    expect(setIntervalSpy).toHaveBeenCalledTimes(1);
    expect(setIntervalSpy).toHaveBeenCalledWith(expect.any(Function), 45_000);
    const timer = setIntervalSpy.mock.results[0].value as NodeJS.Timeout;

    await app.close();
    expect(clearIntervalSpy).toHaveBeenCalledWith(timer);
    expect(db.handle.open).toBe(false);
  });
});
