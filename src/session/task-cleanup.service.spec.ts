import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { TaskCleanupService } from './task-cleanup.service';
import { SqliteEventLog } from './sqlite-event-log';
import { SqliteTaskStore } from './sqlite-task-store';
import type { TaskStore } from './task-store';

describe('TaskCleanupService', () => {
  let dir: string;
  let db: SqliteDatabase;
  let store: SqliteTaskStore;
  let logSpy: jest.SpyInstance;
  const options = () => resolveOptions({ vaultRoot: dir, dataDir: dir, cleanupIntervalMs: 1_000 });

  const finishedTask = async (taskId: string, expiresAt: string): Promise<void> => {
    await store.createTask({
      taskId,
      canvasPath: 'a.canvas',
      maxConcurrent: 1,
      timeoutMs: 1000,
      groups: [],
      createdAt: expiresAt,
    });
    await store.transition(taskId, 'running');
    await store.transition(taskId, 'completed', { completedAt: expiresAt, expiresAt });
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'session-cleanup-'));
    logSpy = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
    store = new SqliteTaskStore(db, new SqliteEventLog(db));
  });

  afterEach(() => {
    jest.useRealTimers();
    db.onApplicationShutdown();
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sweep() removes expired tasks, keeps the others, and returns the removed ids', async () => {
    await finishedTask('old', '2026-01-01T00:00:00.000Z');
    await finishedTask('fresh', '2026-12-31T00:00:00.000Z');
    const service = new TaskCleanupService(store, options());
    expect(await service.sweep(new Date('2026-06-01T00:00:00.000Z'))).toEqual(['old']);
    expect(await store.findTask('old')).toBeUndefined();
    expect(await store.findTask('fresh')).toBeDefined();
    expect(logSpy).toHaveBeenCalledWith('removed 1 expired task(s)');
  });

  it('sweep() logs nothing when nothing expired', async () => {
    const service = new TaskCleanupService(store, options());
    expect(await service.sweep()).toEqual([]);
    expect(logSpy).not.toHaveBeenCalledWith(expect.stringContaining('removed'));
  });

  it('sweep() never rejects: a store failure is logged and nothing is reported removed', async () => {
    const errorSpy = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const failing = {
      deleteExpired: () => Promise.reject(new Error('database is locked')),
    } as unknown as TaskStore;
    expect(await new TaskCleanupService(failing, options()).sweep()).toEqual([]);
    expect(errorSpy).toHaveBeenCalledWith('cleanup failed: database is locked');
  });

  it('sweeps at start and on every interval, and leaves no timer after destroy', async () => {
    jest.useFakeTimers({ now: new Date('2026-06-01T00:00:00.000Z') });
    await finishedTask('expired-at-start', '2026-05-01T00:00:00.000Z');
    const service = new TaskCleanupService(store, options());
    const sweep = jest.spyOn(service, 'sweep');

    service.onModuleInit();
    expect(sweep).toHaveBeenCalledTimes(1);
    await sweep.mock.results[0].value;
    expect(await store.findTask('expired-at-start')).toBeUndefined();
    expect(jest.getTimerCount()).toBe(1);

    await finishedTask('expires-soon', '2026-06-01T00:00:01.500Z');
    jest.advanceTimersByTime(1_000);
    expect(sweep).toHaveBeenCalledTimes(2);
    await sweep.mock.results[1].value;
    expect(await store.findTask('expires-soon')).toBeDefined();
    jest.advanceTimersByTime(1_000);
    expect(sweep).toHaveBeenCalledTimes(3);
    await sweep.mock.results[2].value;
    expect(await store.findTask('expires-soon')).toBeUndefined();

    service.onModuleDestroy();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(10_000);
    expect(sweep).toHaveBeenCalledTimes(3);
    expect(() => service.onModuleDestroy()).not.toThrow();
  });

  it('does not keep the process alive (the timer is unref-ed)', () => {
    const service = new TaskCleanupService(store, options());
    service.onModuleInit();
    const timer = (service as unknown as { timer: NodeJS.Timeout }).timer;
    expect(timer.hasRef()).toBe(false);
    service.onModuleDestroy();
    expect((service as unknown as { timer: NodeJS.Timeout | undefined }).timer).toBeUndefined();
  });
});
