import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { Observable } from 'rxjs';
import {
  deletePrefix,
  describeWithRedis,
  RedisServer,
  redisServerAvailable,
  uniquePrefix,
} from '../../test/support/redis';
import { REPLAY_PAGE } from './event-log';
import { RedisEventLog } from './redis-event-log';
import { runScript } from './redis-session-layout';
import { RedisTaskStore } from './redis-task-store';
import type { EventDraft } from './task-store';
import { taskEvent, type TaskEvent } from './task-events';
import { TaskNotFoundError } from './task.errors';
import type { NewTask, NodeResultRecord } from './task.types';

/*
 * What only a Redis engine has: several processes on one Redis. Each `RedisEventLog` + `RedisTaskStore` pair stands
 * for one process (its own connections, its own subscriber, its own live feeds), all on the same prefix.
 */

const T0 = '2026-12-03T00:00:00.000Z';

const newTask = (taskId: string): NewTask => ({
  taskId,
  canvasPath: 'Biology/cells.canvas',
  maxConcurrent: 4,
  timeoutMs: 60_000,
  groups: [{ groupId: 'g', agentType: 'scoring-agent', nodeIds: ['a', 'b'] }],
  createdAt: T0,
});

const resumed = (n: number): EventDraft =>
  taskEvent('resumed', T0, { resume_count: n, completed_nodes: 0, failed_nodes: 0, remaining_nodes: 0 });

const result = (nodeId: string): NodeResultRecord => ({
  groupIndex: 0,
  nodeId,
  outcome: 'completed',
  inputTokens: 1,
  outputTokens: 2,
  durationMs: 3,
  finishedAt: T0,
});

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Waits until `done()` holds, polling; fails after a generous bound (never a timing assertion). */
async function waitFor(done: () => boolean, what: string, boundMs = 15_000): Promise<void> {
  const until = Date.now() + boundMs;
  while (!done()) {
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function waitForAsync(done: () => Promise<boolean>, what: string, boundMs = 15_000): Promise<void> {
  const until = Date.now() + boundMs;
  while (!(await done())) {
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function collect(source: Observable<TaskEvent>): { ids: number[]; unsubscribe(): void } {
  const ids: number[] = [];
  const sub = source.subscribe((e) => ids.push(e.id));
  return { ids, unsubscribe: () => sub.unsubscribe() };
}

interface Process {
  name: string;
  log: RedisEventLog;
  store: RedisTaskStore;
}

function processOn(url: string, prefix: string, label: string): Process {
  const name = `${prefix}-${label}`;
  const log = new RedisEventLog({ url, prefix, name });
  return { name, log, store: new RedisTaskStore(log) };
}

/** The id of the connection named `name` (CLIENT LIST). */
async function clientId(admin: Redis, name: string): Promise<string> {
  const list = (await admin.client('LIST')) as string;
  const line = list.split('\n').find((l) => l.includes(` name=${name} `));
  if (!line) throw new Error(`no connection named ${name}`);
  return /(?:^|\s)id=(\d+)/.exec(line)?.[1] ?? '';
}

describeWithRedis('Redis engine: several processes on one Redis', (url) => {
  let prefix: string;
  let a: Process;
  let b: Process;
  let admin: Redis;

  beforeEach(() => {
    prefix = uniquePrefix('redis-engine');
    a = processOn(url, prefix, 'a');
    b = processOn(url, prefix, 'b');
    admin = new Redis(url);
  });

  afterEach(async () => {
    await Promise.all([a.log.shutdown(), b.log.shutdown()]);
    admin.disconnect();
    await deletePrefix(url, prefix);
  });

  it('numbers events 1..N without gap or duplicate while two processes append to one task at once', async () => {
    await a.store.createTask(newTask('t'));
    // live feeds on both sides, joined before the first event
    const liveA = collect(a.log.live('t'));
    const liveB = collect(b.log.live('t'));
    const followA = collect(a.log.follow('t', 0));
    const followB = collect(b.log.follow('t', 0));
    await b.store.transition('t', 'running', {}, [resumed(0)]);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const p = i % 2 === 0 ? a : b;
      if (i % 3 === 0) writes.push(p.log.append('t', [resumed(i), resumed(i)]));
      else if (i % 3 === 1) writes.push(p.store.recordNodeResult('t', result(`n${i}`), [resumed(i)]));
      else writes.push(p.store.markResumed('t', resumed(i)));
    }
    await Promise.all(writes);
    const total = 1 + 20 * 2 + 20 + 20;
    expect((await a.log.after('t', 0)).map((e) => e.id)).toEqual(range(1, total));
    expect((await b.store.findTask('t'))?.lastEventId).toBe(total);
    await waitFor(
      () => [liveA, liveB, followA, followB].every((c) => c.ids.length >= total),
      'every feed to see every event',
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify([liveA.ids, liveB.ids, followA.ids, followB.ids])}`);
    });
    // the live feeds of a watched task: every event once, in id order, on either process
    expect(liveA.ids).toEqual(range(1, total));
    expect(liveB.ids).toEqual(range(1, total));
    expect(followA.ids).toEqual(range(1, total));
    expect(followB.ids).toEqual(range(1, total));
    expect(await b.store.nodeCounts('t')).toEqual({ completed: 20, failed: 0, skipped: 0 });
    [liveA, liveB, followA, followB].forEach((c) => c.unsubscribe());
  });

  it('brings an event appended through one process to follow() and all() on another', async () => {
    // all() has what arrives once the process is subscribed (no catch-up for tasks nobody watches)
    await b.log.ready();
    const everything = collect(b.log.all());
    await a.store.createTask(newTask('t'));
    await a.store.transition('t', 'running', {}, [resumed(1)]);
    const followed = collect(b.log.follow('t', 0));
    await waitFor(() => followed.ids.length === 1, 'the replay');
    await a.log.append('t', [resumed(2)]);
    await a.store.recordNodeResult('t', result('a'), [resumed(3)]);
    await waitFor(() => followed.ids.length === 3, 'the live events');
    expect(followed.ids).toEqual([1, 2, 3]);
    await waitFor(() => everything.ids.length === 3, 'all()');
    expect(everything.ids).toEqual([1, 2, 3]);
    // the other process answers for the task too
    expect(await b.store.findTask('t')).toMatchObject({ status: 'running', lastEventId: 3 });
    expect(await b.store.requestCancel('t', 'abort')).toMatchObject({ outcome: 'requested' });
    expect((await a.store.findTask('t'))?.cancelRequested).toBe('abort');
    followed.unsubscribe();
    everything.unsubscribe();
  });

  it('catches every live feed up from the log after its subscriber connection was dropped', async () => {
    await a.store.createTask(newTask('quiet'));
    await a.store.transition('quiet', 'running', {}, [resumed(1)]);
    await a.store.createTask(newTask('seen'));
    await a.store.transition('seen', 'running', {}, [resumed(1)]);
    // one follower that has had live events, one that has only replayed the log (quiet's event 1 went by B's
    // subscriber before seen's event 2, so before its follower joined)
    const seen = collect(b.log.follow('seen', 0));
    await waitFor(() => seen.ids.length === 1, 'the replay');
    await a.log.append('seen', [resumed(2)]);
    await waitFor(() => seen.ids.length === 2, 'a live event');
    const quiet = collect(b.log.follow('quiet', 0));
    await waitFor(() => quiet.ids.length === 1, 'the replay');

    // the kill and the appends go down one connection in order: B's subscriber (back after ≥ 50 ms) misses them
    const subscriber = await clientId(admin, `${b.name}:events-sub`);
    const killed = a.log.redis.client('KILL', 'ID', subscriber);
    const appended = Promise.all([
      a.log.append('seen', [resumed(3), resumed(4)]),
      a.log.append('quiet', [resumed(2)]),
    ]);
    expect(await killed).toBe(1);
    await appended;
    await waitFor(() => seen.ids.length === 4 && quiet.ids.length === 2, 'the catch-up');
    expect(seen.ids).toEqual([1, 2, 3, 4]);
    expect(quiet.ids).toEqual([1, 2]);
    // and it is subscribed again
    await a.log.append('seen', [resumed(5)]);
    await waitFor(() => seen.ids.length === 5, 'a live event after the reconnect');
    seen.unsubscribe();
    quiet.unsubscribe();
  });

  it('keeps empty arrays and objects of event data as they were (no cjson round trip)', async () => {
    await a.store.createTask(newTask('t'));
    const data = { list: [], nested: { empty: {}, more: [[]] }, text: '导数 "quoted" \\ \n' };
    const draft = { type: 'error', timestamp: T0, data };
    const [stored] = await a.log.append('t', [draft]);
    expect(stored.data).toEqual(data);
    expect((await b.log.after('t', 0))[0].data).toEqual(data);
  });

  it('deletes an expired task with its events, results and index entries', async () => {
    await a.store.createTask(newTask('t'), { key: 'k', requestHash: 'h' });
    await a.store.transition('t', 'running', {}, [resumed(1)]);
    await a.store.recordNodeResult('t', result('a'), [resumed(2)]);
    await a.store.transition('t', 'completed', { expiresAt: T0 }, [resumed(3)]);
    expect(await b.store.deleteExpired(new Date(T0))).toEqual(['t']);
    expect(await a.log.after('t', 0)).toEqual([]);
    const [, left] = await admin.scan('0', 'MATCH', `${prefix}:task:*`, 'COUNT', 1000);
    expect(left).toEqual([]);
    expect(await admin.exists(`${prefix}:idem:k`)).toBe(0);
    expect(await admin.zcard(`${prefix}:tasks`)).toBe(0);
    expect(await a.store.statusCounts()).toMatchObject({ completed: 0 });
    // the key is free again
    expect((await b.store.createTask(newTask('t2'), { key: 'k', requestHash: 'other' })).created).toBe(true);
  });

  it('answers a write sent again (ioredis resends after a dropped connection) as it did, storing it once', async () => {
    await a.store.createTask(newTask('t'));
    const keys = a.log.keys;
    const op = keys.op();
    const send = (): Promise<unknown> =>
      runScript(
        a.log.redis,
        'cbSessionAppend',
        [keys.task('t'), keys.events('t'), op],
        ['', a.log.origin, 1, ',"taskId":"t","type":"error","timestamp":"x","data":{}}'],
      );
    expect(await send()).toBe(1);
    expect(await send()).toBe(1);
    expect((await a.log.after('t', 0)).map((e) => e.id)).toEqual([1]);
    expect((await a.store.findTask('t'))?.lastEventId).toBe(1);
  });

  it('creates one task for one idempotency key sent to two processes at once', async () => {
    const [x, y] = await Promise.all([
      a.store.createTask(newTask('t1'), { key: 'k', requestHash: 'h' }),
      b.store.createTask(newTask('t2'), { key: 'k', requestHash: 'h' }),
    ]);
    expect([x.created, y.created].sort()).toEqual([false, true]);
    expect(x.task.taskId).toBe(y.task.taskId);
    expect(await a.store.listTasks({ limit: 10 })).toHaveLength(1);
  });
});

describeWithRedis('Redis engine: a Redis restart', () => {
  const skip = !redisServerAvailable();
  let server: RedisServer | undefined;
  let a: Process;
  let b: Process;

  beforeAll(async () => {
    // made here, not in the describe body: a skipped suite leaves no data directory behind
    if (!skip) await (server = new RedisServer()).start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  (skip ? it.skip : it)(
    'loses no event to a follower on another process, and writes wait through it',
    async () => {
      const redisServer = server;
      if (!redisServer) throw new Error('no redis-server');
      const prefix = uniquePrefix('redis-restart');
      a = processOn(redisServer.url, prefix, 'a');
      b = processOn(redisServer.url, prefix, 'b');
      try {
        await a.store.createTask(newTask('t'));
        await a.store.transition('t', 'running', {}, [resumed(1)]);
        const followed = collect(b.log.follow('t', 0));
        await waitFor(() => followed.ids.length === 1, 'the replay');

        await redisServer.stop('SIGTERM');
        // sent while Redis is down: they wait for it, then run once
        const writes = Promise.all([
          a.log.append('t', [resumed(2)]),
          a.store.recordNodeResult('t', result('a'), [resumed(3)]),
        ]);
        await redisServer.start();
        await writes;
        await a.store.transition('t', 'completed', {}, [resumed(4)]);
        await waitFor(() => followed.ids.length === 4, 'every event after the restart');
        expect(followed.ids).toEqual([1, 2, 3, 4]);
        expect((await b.log.after('t', 0)).map((e) => e.id)).toEqual([1, 2, 3, 4]);
        followed.unsubscribe();
      } finally {
        await Promise.all([a.log.shutdown(), b.log.shutdown()]);
      }
    },
  );
});

/*
 * One process's log on its own: reads and writes at their edges, what it does with what it cannot read (a message
 * on the channel, a gap in the log), feeds that leave while the log is being read for them, and its shutdown.
 */
describeWithRedis('RedisEventLog: edges', (url) => {
  let prefix: string;
  let log: RedisEventLog;
  let store: RedisTaskStore;
  let others: RedisEventLog[];
  let admin: Redis;
  let warn: jest.SpyInstance;

  const warnings = (): string[] => warn.mock.calls.map(([message]) => String(message));

  /** Another process's log on the same prefix. */
  const other = (): RedisEventLog => {
    const o = new RedisEventLog({ url, prefix, name: `${prefix}-other${others.length}` });
    others.push(o);
    return o;
  };

  /** A running task `taskId` with `events` events stored (by another process). */
  async function taskWith(taskId: string, events: number): Promise<void> {
    await store.createTask(newTask(taskId));
    await store.transition(taskId, 'running');
    if (events) await log.insert(taskId, range(1, events).map(resumed));
  }

  /** Once the feed's track has read where the log ended: a read on the same connection answers after it. */
  const floorRead = (taskId: string): Promise<unknown> => log.after(taskId, 0, 1);

  beforeEach(() => {
    prefix = uniquePrefix('event-log-edge');
    log = new RedisEventLog({ url, prefix, name: prefix });
    store = new RedisTaskStore(log);
    others = [];
    admin = new Redis(url);
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    await Promise.all([log, ...others].map((l) => l.shutdown()));
    admin.disconnect();
    await deletePrefix(url, prefix);
    jest.restoreAllMocks();
  });

  it('names its connections after the service by default', async () => {
    const unnamed = new RedisEventLog({ url, prefix });
    others.push(unnamed);
    await unnamed.ready();
    await expect(unnamed.redis.client('GETNAME')).resolves.toBe('canvas-batch:events');
  });

  it('answers the edges of its reads and writes', async () => {
    await taskWith('t', 3);
    await expect(log.insert('nope', [resumed(1)])).rejects.toBeInstanceOf(TaskNotFoundError);
    await expect(log.after('t', 0, 0)).resolves.toEqual([]);
    expect((await log.after('t', -1)).map((e) => e.id)).toEqual([1, 2, 3]);
    // a task that is gone (deleted after its retention) has no more events to wait for
    await expect(log.finished('gone')).resolves.toBe(true);
    await expect(log.finished('t')).resolves.toBe(false);
  });

  it('ignores a message on the channel it cannot read (with a warning) and an empty one', async () => {
    await log.ready();
    const everything = collect(log.all());
    await admin.publish(log.keys.channel, 'another-process\n[]');
    await admin.publish(log.keys.channel, 'another-process\n[{"id":1,');
    await waitFor(() => warnings().length > 0, 'the warning');
    expect(warnings()).toEqual([
      expect.stringMatching(new RegExp(`^a message on ${log.keys.channel} could not be read: `)),
    ]);
    // and goes on
    await taskWith('t', 0);
    await other().append('t', [resumed(1)]);
    await waitFor(() => everything.ids.length === 1, 'the next event');
    expect(everything.ids).toEqual([1]);
    everything.unsubscribe();
  });

  it('fills a gap longer than a replay page from the log, page by page, in order', async () => {
    await taskWith('t', 0);
    const live = collect(log.live('t'));
    await floorRead('t');
    // stored and never published (a crashed writer), then one published event after them
    await log.insert('t', range(1, REPLAY_PAGE + 5).map(resumed));
    await log.append('t', [resumed(0)]);
    expect(live.ids).toEqual(range(1, REPLAY_PAGE + 6));
    live.unsubscribe();
  });

  it('skips a gap it could not read (with a warning): the events after it still reach the feed', async () => {
    await taskWith('t', 0);
    const live = collect(log.live('t'));
    await floorRead('t');
    const xrange = jest.spyOn(log.redis, 'xrange');
    // nothing handed out yet: the gap runs from where the log ended when the feed joined
    await log.insert('t', [resumed(1), resumed(2)]);
    xrange.mockRejectedValueOnce(new Error('Connection is closed.'));
    await log.append('t', [resumed(3)]);
    expect(live.ids).toEqual([3]);
    // and after what it handed out
    await log.insert('t', [resumed(4), resumed(5)]);
    xrange.mockRejectedValueOnce(new Error('Connection is closed.'));
    await log.append('t', [resumed(6)]);
    expect(live.ids).toEqual([3, 6]);
    expect(warnings()).toEqual([
      'the log of task t could not be read to fill a gap: Connection is closed.',
      'the log of task t could not be read to fill a gap: Connection is closed.',
    ]);
    // a follower reads the gap from the log itself
    const followed = collect(log.follow('t', 0));
    await waitFor(() => followed.ids.length === 6, 'the replay');
    expect(followed.ids).toEqual(range(1, 6));
    live.unsubscribe();
    followed.unsubscribe();
  });

  it('when the last feed of a task leaves during a gap read, what waited still reaches all()', async () => {
    await taskWith('fresh', 0);
    await taskWith('seen', 0);
    const everything = collect(log.all());
    const fresh = collect(log.live('fresh'));
    const seen = collect(log.live('seen'));
    await floorRead('fresh');
    await floorRead('seen');
    log.publish(await log.insert('seen', [resumed(1)]));
    expect(seen.ids).toEqual([1]);
    // the last of several stored events arrives alone: the feed reads the others first
    const [, , third] = await log.insert('fresh', [resumed(1), resumed(2), resumed(3)]);
    const [, , fourth] = await log.insert('seen', [resumed(2), resumed(3), resumed(4)]);
    log.publish([third, fourth]);
    fresh.unsubscribe();
    seen.unsubscribe();
    expect(everything.ids).toEqual([1, 3, 4]);
    // the reads finish for nobody: nothing more is handed out
    await log.after('seen', 0);
    expect(fresh.ids).toEqual([]);
    expect(seen.ids).toEqual([1]);
    expect(everything.ids).toEqual([1, 3, 4]);
    everything.unsubscribe();
  });

  it('a feed joined before the log subscribed starts where the log ended, or at the last event if that read failed', async () => {
    await taskWith('known', 2);
    await taskWith('unknown', 3);
    await taskWith('empty', 0);
    const late = other();
    // each feed reads where its task's log ends when it joins; two of these reads fail
    const xrevrange = jest.spyOn(late.redis, 'xrevrange');
    const known = collect(late.live('known'));
    xrevrange.mockRejectedValueOnce(new Error('Connection is closed.'));
    const unknown = collect(late.live('unknown'));
    xrevrange.mockRejectedValueOnce(new Error('Connection is closed.'));
    const empty = collect(late.live('empty'));
    await late.ready();
    await late.append('known', [resumed(3)]);
    await waitFor(() => unknown.ids.length === 1, 'the last stored event');
    expect(known.ids).toEqual([3]);
    expect(unknown.ids).toEqual([3]);
    await late.append('empty', [resumed(1)]);
    expect(empty.ids).toEqual([1]);
    for (const c of [known, unknown, empty]) c.unsubscribe();
  });

  it('a feed that leaves while its catch-up is being read gets nothing, and the log goes on', async () => {
    await taskWith('slow', 2);
    await taskWith('quick', 2);
    const late = other();
    const xrevrange = jest.spyOn(late.redis, 'xrevrange');
    let failFloor!: (err: Error) => void;
    xrevrange.mockImplementationOnce(() => new Promise((_, reject) => (failFloor = reject)) as never);
    const slow = collect(late.live('slow'));
    xrevrange.mockRejectedValueOnce(new Error('Connection is closed.'));
    const quick = collect(late.live('quick'));
    await late.ready();
    // slow's catch-up waits for its log end; quick's reads the last event (its own log end read failed)
    slow.unsubscribe();
    quick.unsubscribe();
    failFloor(new Error('Connection is closed.'));
    await late.append('slow', [resumed(3)]);
    await late.after('quick', 0);
    expect(slow.ids).toEqual([]);
    expect(quick.ids).toEqual([]);
    expect(late.liveFeedCount).toBe(0);
    expect(warnings()).toEqual([]);
  });

  it('ends its feeds on module destroy and quits its connections on shutdown, one closed already', async () => {
    await taskWith('t', 0);
    let completed = false;
    const sub = log.live('t').subscribe({ complete: () => (completed = true) });
    log.onModuleDestroy();
    expect(completed).toBe(true);
    expect(log.liveFeedCount).toBe(0);
    sub.unsubscribe();
    const ended = new Promise((resolve) => log.redis.once('end', resolve));
    await log.redis.quit();
    await ended;
    await log.onApplicationShutdown();
    await expect(log.redis.ping()).rejects.toThrow(/closed/);
  });
});

describeWithRedis('RedisEventLog: a Redis outage', () => {
  const skip = !redisServerAvailable();
  let server: RedisServer | undefined;

  beforeAll(async () => {
    if (!skip) await (server = new RedisServer()).start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  (skip ? it.skip : it)('warns once per connection and outage, not at every retry', async () => {
    const redisServer = server;
    if (!redisServer) throw new Error('no redis-server');
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = new RedisEventLog({ url: redisServer.url, prefix: uniquePrefix('outage') });
    const outageWarnings = (): string[] =>
      warn.mock.calls.map(([message]) => String(message)).filter((m) => m.endsWith('(reconnecting)'));
    let retries = 0;
    log.redis.on('reconnecting', () => retries++);
    const ready = (): Promise<unknown> =>
      new Promise((resolve) =>
        log.redis.status === 'ready' ? resolve(undefined) : log.redis.once('ready', resolve),
      );
    try {
      await log.ready();
      for (const outage of [1, 2]) {
        await redisServer.stop('SIGKILL');
        const before = retries;
        await waitFor(() => retries >= before + 3, 'a few retries');
        expect(outageWarnings()).toHaveLength(2 * outage);
        expect(outageWarnings().slice(-2).sort()).toEqual([
          expect.stringMatching(/^Redis commands connection: .* \(reconnecting\)$/),
          expect.stringMatching(/^Redis subscriber connection: .* \(reconnecting\)$/),
        ]);
        await redisServer.start();
        await ready();
        // and the subscriber subscribed again (a quit before that would cut its SUBSCRIBE off)
        await waitForAsync(async () => {
          const [, count] = (await log.redis.pubsub('NUMSUB', log.keys.channel)) as [string, number];
          return count > 0;
        }, 'the subscriber back');
      }
    } finally {
      await log.shutdown();
      warn.mockRestore();
    }
  });
});
