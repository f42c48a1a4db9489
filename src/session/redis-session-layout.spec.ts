import { Redis } from 'ioredis';
import { appendEvents, eventTails, RedisSessionKeys, storedRecords, toTask } from './redis-session-layout';
import type { EventDraft } from './task-store';

/* The layout's pure helpers: how a task hash reads back, and what an append sends (or does not send). */

describe('Redis session layout', () => {
  it('reads a task hash without some fields (written by an older version) with neutral defaults', () => {
    expect(toTask({})).toEqual({
      taskId: '',
      canvasPath: '',
      status: 'failed',
      maxConcurrent: 0,
      timeoutMs: 0,
      groups: [],
      totalNodes: 0,
      createdAt: '',
      startedAt: null,
      completedAt: null,
      deadlineAt: null,
      errorMessage: null,
      metrics: null,
      lastEventId: 0,
      idempotencyKey: null,
      resumeCount: 0,
      peakConcurrent: 0,
      cancelRequested: null,
      budgetUsd: null,
    });
    expect(toTask({ id: 't', status: 'running', last: '7', peak: '3', groups: '[]' })).toMatchObject({
      taskId: 't',
      status: 'running',
      lastEventId: 7,
      peakConcurrent: 3,
      resumeCount: 0,
    });
  });

  it('stores a draft without data (a caller outside TypeScript) with empty data, and no timestamp as null', () => {
    const draft = { type: 'resumed' } as unknown as EventDraft;
    const tails = eventTails('t', [draft]);
    expect(storedRecords(4, tails)).toEqual([
      { id: 4, taskId: 't', type: 'resumed', timestamp: null, data: {} },
    ]);
  });

  it('refuses an event type outside the vocabulary before anything is sent', () => {
    expect(() => eventTails('t', [{ type: 'nonsense', timestamp: 'x', data: {} }])).toThrow(TypeError);
  });

  it('appends no events without a round trip to Redis', async () => {
    // never connected: a command would wait in its offline queue forever
    const redis = new Redis({ lazyConnect: true, enableOfflineQueue: false });
    await expect(
      appendEvents(redis, new RedisSessionKeys('p'), 'unknown', [], 'channel', 'me'),
    ).resolves.toEqual([]);
    expect(redis.status).toBe('wait');
    redis.disconnect();
  });
});
