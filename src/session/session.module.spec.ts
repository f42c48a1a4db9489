import { Global, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RESOLVED_OPTIONS, resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { SessionModule } from './session.module';
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

  it('binds TaskStore to SQLite, and on close stops the cleanup timer and closes the database', async () => {
    @Global()
    @Module({
      providers: [{ provide: RESOLVED_OPTIONS, useValue: resolveOptions({ vaultRoot: dir, dataDir: dir }) }],
      exports: [RESOLVED_OPTIONS],
    })
    class OptionsModule {}
    const setIntervalSpy = jest.spyOn(global, 'setInterval');
    const clearIntervalSpy = jest.spyOn(global, 'clearInterval');
    const moduleRef = await Test.createTestingModule({ imports: [OptionsModule, SessionModule] }).compile();
    const app = moduleRef.createNestApplication();
    await app.init();

    const store = app.get(TaskStore);
    expect(store).toBeInstanceOf(SqliteTaskStore);
    const db = app.get(SqliteDatabase);
    expect(db.handle.open).toBe(true);
    expect(setIntervalSpy).toHaveBeenCalledTimes(1);
    const timer = setIntervalSpy.mock.results[0].value as NodeJS.Timeout;

    await app.close();
    expect(clearIntervalSpy).toHaveBeenCalledWith(timer);
    expect(db.handle.open).toBe(false);
  });
});
