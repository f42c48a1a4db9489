import { Logger } from '@nestjs/common';
import { Queue, Worker } from 'bullmq';
import { connectRedis } from '../../redis';
import { deletePrefix, describeWithRedis, uniquePrefix } from '../../../test/support/redis';
import { NodeAbort } from '../batch-run';
import { BullmqDispatcher, type BullmqDispatcherOptions, nodeJobId } from './bullmq-dispatcher';
import type { BatchHooks, JobContext, NodeJob, NodeRunResult } from './dispatcher';

/*
 * Several BullmqDispatcher instances on one Redis, each standing for a process: what the contract suite cannot see
 * from one instance — one cap and one batch cap across them, stops and aborts reaching all of them, a batch taken
 * over by another owner, a killed worker's job run again, a closing worker handing its jobs back.
 */

/** One handler call, on one instance. */
interface Call {
  instance: string;
  job: NodeJob;
  ctx: JobContext;
  ended: boolean;
  finish(): void;
}

function completed(job: NodeJob): NodeRunResult {
  const now = new Date().toISOString();
  return {
    kind: 'completed',
    startedAt: now,
    finishedAt: now,
    durationMs: 1,
    concept: job.nodeId,
    title: `oral-explanation: ${job.nodeId}`,
    markdown: job.nodeId,
    inputTokens: 0,
    outputTokens: 0,
    attempts: 1,
  };
}

/**
 * The handlers of every instance: records each call and holds it until `finish()` (or, with `autoFinishMs`, for that
 * long). An aborted call ends as node execution does: `shutdown` for a SHUTDOWN abort, else a failure of its type.
 */
class Farm {
  readonly calls: Call[] = [];
  active = 0;
  peak = 0;
  autoFinishMs: number | undefined;
  private readonly activePerTask = new Map<string, number>();
  private readonly peakPerTask = new Map<string, number>();

  handler(instance: string) {
    return (job: NodeJob, ctx: JobContext): Promise<NodeRunResult> =>
      new Promise<NodeRunResult>((resolve) => {
        this.active++;
        this.peak = Math.max(this.peak, this.active);
        const mine = (this.activePerTask.get(job.taskId) ?? 0) + 1;
        this.activePerTask.set(job.taskId, mine);
        this.peakPerTask.set(job.taskId, Math.max(this.peakOf(job.taskId), mine));
        let timer: NodeJS.Timeout | undefined;
        const end = (result: NodeRunResult): void => {
          if (call.ended) return;
          call.ended = true;
          clearTimeout(timer);
          this.active--;
          this.activePerTask.set(job.taskId, (this.activePerTask.get(job.taskId) ?? 0) - 1);
          resolve(result);
        };
        const call: Call = { instance, job, ctx, ended: false, finish: () => end(completed(job)) };
        ctx.signal.addEventListener('abort', () => {
          const reason = ctx.signal.reason as Error;
          if (reason instanceof NodeAbort && reason.errorType === 'SHUTDOWN')
            return end({ kind: 'shutdown' });
          const now = new Date().toISOString();
          end({
            kind: 'failed',
            startedAt: now,
            finishedAt: now,
            durationMs: 1,
            errorType: reason instanceof NodeAbort ? (reason.errorType as 'CANCELLED') : 'AGENT_ERROR',
            errorMessage: reason.message,
            inputTokens: 0,
            outputTokens: 0,
            attempts: 1,
          });
        });
        this.calls.push(call);
        if (this.autoFinishMs !== undefined) timer = setTimeout(call.finish, this.autoFinishMs);
      });
  }

  peakOf(taskId: string): number {
    return this.peakPerTask.get(taskId) ?? 0;
  }

  running(taskId?: string): Call[] {
    return this.calls.filter((c) => !c.ended && (taskId === undefined || c.job.taskId === taskId));
  }

  callsOf(nodeId: string, taskId = 'a'): Call[] {
    return this.calls.filter((c) => c.job.nodeId === nodeId && c.job.taskId === taskId);
  }

  /** From now on every call ends after `ms`; those running end now. */
  finishAll(ms = 0): void {
    this.autoFinishMs = ms;
    for (const c of this.running()) c.finish();
  }
}

/** What an owner heard of its jobs. */
class Owner implements BatchHooks {
  readonly startedIds: string[] = [];
  readonly endedIds: string[] = [];
  readonly results = new Map<string, NodeRunResult | undefined>();

  started(job: NodeJob): void {
    this.startedIds.push(job.nodeId);
  }

  ended(job: NodeJob, result: NodeRunResult | undefined): void {
    this.endedIds.push(job.nodeId);
    this.results.set(job.nodeId, result);
  }
}

function jobs(taskId: string, count: number): NodeJob[] {
  return Array.from({ length: count }, (_, i) => ({
    taskId,
    groupIndex: 0,
    nodeId: `n${i}`,
    agentType: 'oral-explanation',
    expectedMs: 100,
    canvasPath: 'Biology/cells.canvas',
    deadlineAt: null,
  }));
}

async function until(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A "process" of the test cluster: small capacity, short locks and reconcile rounds, so crashes show quickly. */
function testOptions(
  url: string,
  prefix: string,
  name: string,
  extra: Partial<BullmqDispatcherOptions> = {},
): BullmqDispatcherOptions {
  return {
    redisUrl: url,
    prefix,
    capacity: 4,
    instanceId: name,
    lockDurationMs: 1_000,
    stalledIntervalMs: 500,
    reconcileIntervalMs: 300,
    ...extra,
  };
}

describeWithRedis('BullmqDispatcher across processes', (url) => {
  let prefix: string;
  let farm: Farm;
  let instances: BullmqDispatcher[];

  /** A "process": its own dispatcher on the shared prefix, its handler recorded by the farm. */
  const start = async (
    name: string,
    options: Partial<BullmqDispatcherOptions> = {},
  ): Promise<BullmqDispatcher> => {
    const d = new BullmqDispatcher(testOptions(url, prefix, name, options));
    instances.push(d);
    d.handle(farm.handler(name));
    await d.start();
    return d;
  };

  beforeEach(() => {
    prefix = uniquePrefix('dispatch');
    farm = new Farm();
    instances = [];
  });

  afterEach(async () => {
    farm.finishAll();
    await Promise.all(instances.map((d) => d.close(1_000, new NodeAbort('SHUTDOWN', 'the test is over'))));
    await deletePrefix(url, prefix);
  });

  it('holds one global cap over every instance, fills it, and spreads the jobs over them', async () => {
    const [a, b] = [await start('A'), await start('B'), await start('C')];
    farm.autoFinishMs = 30;
    const ownerA = new Owner();
    const ownerB = new Owner();
    await Promise.all([
      a.run({ taskId: 'a', maxConcurrent: 10 }, jobs('a', 40), ownerA),
      b.run({ taskId: 'b', maxConcurrent: 10 }, jobs('b', 20), ownerB),
    ]);
    expect(farm.peak).toBe(4);
    expect(farm.calls).toHaveLength(60);
    expect(new Set(farm.calls.map((c) => c.instance)).size).toBeGreaterThanOrEqual(2);
    expect(ownerA.endedIds.sort()).toEqual(
      jobs('a', 40)
        .map((j) => j.nodeId)
        .sort(),
    );
    expect(ownerB.endedIds.sort()).toEqual(
      jobs('b', 20)
        .map((j) => j.nodeId)
        .sort(),
    );
    expect(ownerA.startedIds).toHaveLength(40);
    expect(await a.state()).toMatchObject({ capacity: 4, limit: 4, inUse: 0, waiting: 0 });
  });

  it('holds a batch’s own cap across instances', async () => {
    const [a] = [await start('A', { capacity: 8 }), await start('B', { capacity: 8 })];
    farm.autoFinishMs = 20;
    await a.run({ taskId: 'a', maxConcurrent: 3 }, jobs('a', 24), new Owner());
    expect(farm.peakOf('a')).toBe(3);
    expect(farm.calls).toHaveLength(24);
  });

  it('stop from another instance: no job of the task starts anywhere once it resolves', async () => {
    const [a, b, c] = [await start('A'), await start('B'), await start('C', { worker: false })];
    const heard: string[] = [];
    a.onRemoteStop((taskId, reason) => heard.push(`A:${taskId}:${reason === undefined}`));
    b.onRemoteStop((taskId, reason) => heard.push(`B:${taskId}:${reason === undefined}`));
    const owner = new Owner();
    const done = a.run({ taskId: 'a', maxConcurrent: 4 }, jobs('a', 20), owner);
    await until('4 running', () => farm.running('a').length === 4);
    await c.stop('a');
    const calls = farm.calls.length;
    expect(heard.sort()).toEqual(['A:a:true', 'B:a:true']);
    // the running ones go on (not aborted) and end; nothing else starts
    expect(farm.running('a').map((x) => x.ctx.signal.aborted)).toEqual([false, false, false, false]);
    farm.finishAll();
    await done;
    await sleep(300);
    expect(farm.calls).toHaveLength(calls);
    // those still queued were removed, or (taken meanwhile) ended without running
    const kinds = [...owner.results.values()].map((r) => r?.kind);
    expect(kinds.filter((k) => k === 'completed')).toHaveLength(4);
    expect(kinds.filter((k) => k !== 'completed' && k !== 'not-started')).toEqual([]);
    await until('an empty queue', async () => {
      const s = await c.state();
      return s.inUse === 0 && s.waiting === 0;
    });
    expect(farm.calls).toHaveLength(calls);
  });

  it('abort from another instance aborts the task’s running jobs on every instance, with a NodeAbort', async () => {
    // A takes two jobs at its own local concurrency of 2; B, started next, takes the other two
    const a = await start('A', { capacity: 2 });
    const heard: string[] = [];
    a.onRemoteStop((taskId, reason) => heard.push(`A:${taskId}:${(reason as NodeAbort).errorType}`));
    const owner = new Owner();
    const done = a.run({ taskId: 'a', maxConcurrent: 4 }, jobs('a', 4), owner);
    await until('2 running on A', () => farm.running().length === 2);
    const b = await start('B', { capacity: 4 });
    b.onRemoteStop((taskId, reason) => heard.push(`B:${taskId}:${(reason as NodeAbort).errorType}`));
    const c = await start('C', { capacity: 4, worker: false });
    await until('4 running', () => farm.running().length === 4);
    const running = farm.running('a');
    expect(running.filter((x) => x.instance === 'A')).toHaveLength(2);
    expect(running.filter((x) => x.instance === 'B')).toHaveLength(2);
    await c.abort('a', new NodeAbort('CANCELLED', 'the batch was cancelled'), 'cluster');
    for (const call of running) {
      expect(call.ctx.signal.aborted).toBe(true);
      expect(call.ctx.signal.reason).toBeInstanceOf(NodeAbort);
      expect(call.ctx.signal.reason).toMatchObject({
        errorType: 'CANCELLED',
        message: 'the batch was cancelled',
      });
    }
    expect(heard.sort()).toEqual(['A:a:CANCELLED', 'B:a:CANCELLED']);
    await done;
    expect([...owner.results.values()].map((r) => r?.kind === 'failed' && r.errorType)).toEqual(
      Array(4).fill('CANCELLED'),
    );
  });

  it('a batch taken over by another owner: every job ends once, those that ended between owners too', async () => {
    const w = await start('W', { capacity: 3 });
    const [a, b] = [
      await start('A', { capacity: 3, worker: false }),
      await start('B', { capacity: 3, worker: false }),
    ];
    void w;
    const all = jobs('a', 12);
    const ownerA = new Owner();
    const first = a.run({ taskId: 'a', maxConcurrent: 3 }, all, ownerA);
    await until('3 running', () => farm.running('a').length === 3);
    farm.running('a')[0].finish();
    farm.running('a')[0].finish();
    await until('A heard of 2', () => ownerA.endedIds.length === 2);
    await a.release('a');
    await first;
    // ends while no process owns the batch: its next owner finds it by reading the queue
    await until('3 running again', () => farm.running('a').length === 3);
    const between = farm.running('a')[0];
    between.finish();
    await sleep(200);
    const ownerB = new Owner();
    const remaining = all.filter((j) => !ownerA.endedIds.includes(j.nodeId));
    const second = b.run({ taskId: 'a', maxConcurrent: 3 }, remaining, ownerB);
    await until('B heard of the job that ended between owners', () =>
      ownerB.endedIds.includes(between.job.nodeId),
    );
    farm.finishAll(5);
    await second;
    expect(ownerA.endedIds.length + ownerB.endedIds.length).toBe(12);
    expect(new Set([...ownerA.endedIds, ...ownerB.endedIds]).size).toBe(12);
    for (const job of all) expect(farm.callsOf(job.nodeId)).toHaveLength(1);
    expect([...ownerB.results.values()].every((r) => r?.kind === 'completed')).toBe(true);
  });

  it('a killed worker’s job runs again once on another instance; killed twice, it fails', async () => {
    const owner = await start('O', { worker: false });
    const w1 = await start('W1');
    const hooks = new Owner();
    const done = owner.run({ taskId: 'a', maxConcurrent: 1 }, jobs('a', 2), hooks);
    await until('n0 running on W1', () => farm.running('a').length === 1);
    expect(farm.running('a')[0]).toMatchObject({ instance: 'W1', job: { nodeId: 'n0' } });
    const w2 = await start('W2');
    await w1.abandon(); // as SIGKILL: no hand-back, its lock lapses
    await until('n0 running again on W2', () => farm.callsOf('n0').length === 2, 15_000);
    expect(farm.callsOf('n0')[1].instance).toBe('W2');
    await w2.abandon(); // killed again
    await start('W3');
    await until('n0 failed', () => hooks.endedIds.includes('n0'), 15_000);
    expect(hooks.results.get('n0')).toMatchObject({
      kind: 'failed',
      errorType: 'AGENT_ERROR',
      errorMessage: 'the worker running this node stopped twice',
    });
    expect(farm.callsOf('n0')).toHaveLength(2);
    farm.finishAll();
    await done;
    expect(hooks.results.get('n1')).toMatchObject({ kind: 'completed' });
    expect(hooks.endedIds.sort()).toEqual(['n0', 'n1']);
  });

  it('close(grace) hands the running jobs back: another instance runs them, each ends once', async () => {
    const owner = await start('O', { capacity: 2, worker: false });
    const w1 = await start('W1', { capacity: 2 });
    const hooks = new Owner();
    const done = owner.run({ taskId: 'a', maxConcurrent: 2 }, jobs('a', 2), hooks);
    await until('2 running on W1', () => farm.running('a').length === 2);
    await start('W2', { capacity: 2 });
    await w1.close(50, new NodeAbort('SHUTDOWN', 'the service shut down'));
    await until(
      'both running on W2',
      () => farm.running('a').filter((c) => c.instance === 'W2').length === 2,
    );
    farm.finishAll();
    await done;
    expect(hooks.endedIds.sort()).toEqual(['n0', 'n1']);
    expect([...hooks.results.values()].map((r) => r?.kind)).toEqual(['completed', 'completed']);
    expect(hooks.startedIds.sort()).toEqual(['n0', 'n1']);
    for (const id of ['n0', 'n1']) expect(farm.callsOf(id).map((c) => c.instance)).toEqual(['W1', 'W2']);
  });
});

/*
 * One owner and its workers at the edges: a dispatcher used out of its lifecycle, batches let go or stopped before
 * their jobs were queued, jobs removed or lost from the queue behind the owner's back, a task stopped before a worker
 * listened, handlers that throw or ignore an abort, and the job ids themselves.
 */
describeWithRedis('BullmqDispatcher: edges', (url) => {
  let prefix: string;
  let farm: Farm;
  let instances: BullmqDispatcher[];
  let queues: Queue[];
  let warn: jest.SpyInstance;
  let error: jest.SpyInstance;

  const options = (name: string, extra: Partial<BullmqDispatcherOptions>): BullmqDispatcherOptions =>
    testOptions(url, prefix, name, extra);

  /** A started "process"; its handler is the farm's unless given one. */
  const start = async (
    name: string,
    extra: Partial<BullmqDispatcherOptions> = {},
    handler?: (job: NodeJob, ctx: JobContext) => Promise<NodeRunResult>,
  ): Promise<BullmqDispatcher> => {
    const d = new BullmqDispatcher(options(name, extra));
    instances.push(d);
    d.handle(handler ?? farm.handler(name));
    await d.start();
    return d;
  };

  /** The queue as an operator's tool sees it. */
  const adminQueue = (): Queue => {
    const q = new Queue('nodes', { connection: { url }, prefix: `${prefix}:bull` });
    queues.push(q);
    return q;
  };

  const messages = (spy: jest.SpyInstance): string[] => spy.mock.calls.map(([m]) => String(m));

  beforeEach(() => {
    prefix = uniquePrefix('dispatch-edge');
    farm = new Farm();
    instances = [];
    queues = [];
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    farm.finishAll();
    await Promise.all(instances.map((d) => d.close(1_000, new NodeAbort('SHUTDOWN', 'the test is over'))));
    await Promise.all(queues.map((q) => q.close()));
    await deletePrefix(url, prefix);
    jest.restoreAllMocks();
  });

  it('refuses work before start and after close, starts once, and closes a never-started one quietly', async () => {
    const job = jobs('a', 1);
    const never = new BullmqDispatcher({ redisUrl: url, prefix, capacity: 2, instanceId: 'N' });
    await expect(never.run({ taskId: 'a', maxConcurrent: 1 }, job)).rejects.toThrow('not started');
    await expect(never.stop('a')).rejects.toThrow('not started');
    await expect(never.abandon()).resolves.toBeUndefined();
    await expect(never.close(0, new Error('bye'))).resolves.toBeUndefined();
    await expect(never.state()).rejects.toThrow('not started');

    // the defaults (lock, stalled check, ack wait, reconcile) for a process that only queues
    const d = new BullmqDispatcher({ redisUrl: url, prefix, capacity: 2, instanceId: 'D', worker: false });
    instances.push(d);
    await d.start();
    await expect(d.start()).rejects.toThrow('started already');
    await expect(d.state()).resolves.toMatchObject({ policy: 'least-work', capacity: 2, limit: 2 });
    await d.close(0, new Error('bye'));
    await expect(d.state()).rejects.toThrow('not started');
    await expect(d.abort('a', new Error('late'))).rejects.toThrow('not started');
    // a 429 reported after the close cannot lower the shared limit any more: said, not thrown
    d.adaptive.rateLimited(Date.now());
    await until('the warning', () => messages(warn).length > 0);
    expect(messages(warn)).toEqual(['could not set the global limit: the dispatcher is not started']);
  });

  it('abort in process scope reaches only this process; a plain error reaches the others as an Error', async () => {
    const a = await start('A', { capacity: 2 });
    const heard: string[] = [];
    a.onRemoteStop((taskId, reason) => heard.push(`A:${taskId}:${reason?.message}`));
    const done = a.run({ taskId: 'a', maxConcurrent: 4 }, jobs('a', 4), new Owner());
    await until('2 running on A', () => farm.running().length === 2);
    const b = await start('B', { capacity: 4 });
    b.onRemoteStop((taskId, reason) => heard.push(`B:${taskId}:${reason?.message}`));
    await until('4 running', () => farm.running().length === 4);
    const onA = farm.running('a').filter((c) => c.instance === 'A');
    const onB = farm.running('a').filter((c) => c.instance === 'B');

    await a.abort('a', new NodeAbort('CANCELLED', 'only here'), 'process');
    expect(onA.map((c) => c.ctx.signal.aborted)).toEqual([true, true]);
    expect(onB.map((c) => c.ctx.signal.aborted)).toEqual([false, false]);
    expect(heard).toEqual([]);

    await a.abort('a', new Error('the deadline passed'));
    for (const call of onB) {
      expect(call.ctx.signal.reason).toBeInstanceOf(Error);
      expect(call.ctx.signal.reason).not.toBeInstanceOf(NodeAbort);
      expect((call.ctx.signal.reason as Error).message).toBe('the deadline passed');
    }
    expect(heard).toEqual(['B:a:the deadline passed']);
    await done;
  });

  it('a second run of a task lets the first go; waitingFor counts its jobs not started', async () => {
    const o = await start('O', { worker: false });
    const first = new Owner();
    const second = new Owner();
    const p1 = o.run({ taskId: 'a', maxConcurrent: 3 }, jobs('a', 3), first);
    const p2 = o.run({ taskId: 'a', maxConcurrent: 3 }, jobs('a', 3), second);
    await p1;
    await expect(o.waitingFor('a')).resolves.toBe(3);
    await expect(o.waitingFor('unknown')).resolves.toBe(0);
    await expect(o.release('unknown')).resolves.toBeUndefined();
    await start('W', { capacity: 1 });
    await until('one running', () => farm.running('a').length === 1);
    await until('the owner heard it started', () => second.startedIds.length === 1);
    await expect(o.waitingFor('a')).resolves.toBe(2);
    farm.finishAll();
    await p2;
    expect(first.endedIds).toEqual([]);
    expect(second.endedIds.sort()).toEqual(['n0', 'n1', 'n2']);
    for (const id of ['n0', 'n1', 'n2']) expect(farm.callsOf(id)).toHaveLength(1);
  });

  it("reports its capacity as the limit once an operator removed the queue's global limit", async () => {
    const d = await start('D', { worker: false, capacity: 3 });
    await d.setLimit(2);
    await expect(d.state()).resolves.toMatchObject({ limit: 2, capacity: 3 });
    await adminQueue().removeGlobalConcurrency();
    await expect(d.state()).resolves.toMatchObject({ limit: 3, capacity: 3, inUse: 0, waiting: 0 });
  });

  it('a batch let go or stopped before its jobs were queued queues none of them', async () => {
    const o = await start('O', { worker: false });
    const released = new Owner();
    const r = o.run({ taskId: 'r', maxConcurrent: 2 }, jobs('r', 2), released);
    await o.release('r');
    await r;
    const stopped = new Owner();
    const s = o.run({ taskId: 's', maxConcurrent: 2 }, jobs('s', 2), stopped);
    await o.stop('s');
    await s;
    await expect(adminQueue().getJobCounts('waiting', 'prioritized', 'active')).resolves.toEqual({
      waiting: 0,
      prioritized: 0,
      active: 0,
    });
    expect([released.endedIds, stopped.endedIds]).toEqual([[], []]);
  });

  it('a job an operator removed from the queue leaves the batch without a result', async () => {
    const o = await start('O', { worker: false });
    const owner = new Owner();
    const all = jobs('a', 2);
    const done = o.run({ taskId: 'a', maxConcurrent: 2 }, all, owner);
    const queue = adminQueue();
    await until('both queued', async () => (await o.state()).waiting === 2);
    await expect(queue.remove(nodeJobId(all[0]))).resolves.toBe(1);
    await until('the owner dropped it', async () => (await o.waitingFor('a')) === 1);
    await start('W');
    farm.finishAll();
    await done;
    expect(owner.endedIds).toEqual(['n1']);
    expect(farm.callsOf('n0')).toEqual([]);
  });

  it('a job lost from the queue without a trace is queued again by its owner, and runs once', async () => {
    const o = await start('O', { worker: false, policy: 'fifo', reconcileIntervalMs: 100 });
    const owner = new Owner();
    const [job] = jobs('a', 1);
    const done = o.run({ taskId: 'a', maxConcurrent: 1 }, [job], owner);
    const queue = adminQueue();
    const id = nodeJobId(job);
    await until('queued', async () => (await queue.getJobState(id)) === 'waiting');
    // as a Redis that lost its last writes would: no job, no event
    const redis = connectRedis(url, 'dispatch-edge-admin');
    await redis.multi().del(`${prefix}:bull:nodes:${id}`).lrem(`${prefix}:bull:nodes:wait`, 0, id).exec();
    await redis.quit();
    expect(await queue.getJobState(id)).toBe('unknown');
    await until('queued again', async () => (await queue.getJobState(id)) === 'waiting');
    await start('W');
    farm.finishAll();
    await done;
    expect(owner.results.get('n0')).toMatchObject({ kind: 'completed' });
    expect(farm.callsOf('n0')).toHaveLength(1);
  });

  it('a worker that did not hear a stop finds it in Redis: the job ends not started, its handler never runs', async () => {
    const s = await start('S', { worker: false });
    await s.stop('a');
    // started after the stop: neither heard it
    const o = await start('O', { worker: false });
    await start('W');
    const owner = new Owner();
    await o.run({ taskId: 'a', maxConcurrent: 2 }, jobs('a', 2), owner);
    expect([...owner.results.values()]).toEqual([{ kind: 'not-started' }, { kind: 'not-started' }]);
    expect(farm.calls).toEqual([]);
  });

  it('a handler that throws: logged, its job ends without a result, and the batch goes on', async () => {
    const owner = new Owner();
    const handler = (job: NodeJob): Promise<NodeRunResult> =>
      job.nodeId === 'n0' ? Promise.reject(new Error('boom')) : Promise.resolve(completed(job));
    const o = await start('O', {}, handler);
    await o.run({ taskId: 'a', maxConcurrent: 1 }, jobs('a', 3), owner);
    expect(owner.results.get('n0')).toBeUndefined();
    expect(owner.endedIds.sort()).toEqual(['n0', 'n1', 'n2']);
    expect(owner.results.get('n2')).toMatchObject({ kind: 'completed' });
    expect(messages(error)).toContain('job a/n0 failed: boom');
  });

  it('jobs failed by another worker on the queue (another version of the service) end failed, with their reason', async () => {
    const first = await start('O1', { worker: false });
    const all = jobs('a', 2);
    const released = first.run({ taskId: 'a', maxConcurrent: 2 }, all, new Owner());
    await until('both queued', async () => (await first.state()).waiting === 2);
    await first.release('a');
    await released;
    // while no process owns the batch, a plain BullMQ worker whose processor throws (with a message and without)
    // takes both
    const foreign = new Worker(
      'nodes',
      (job) => Promise.reject(new Error(job.id === nodeJobId(all[0]) ? 'unknown agent type' : '')),
      { connection: { url, maxRetriesPerRequest: null }, prefix: `${prefix}:bull`, concurrency: 2 },
    );
    const queue = adminQueue();
    try {
      await until('both failed', async () => (await queue.getJobCounts('failed')).failed === 2);
    } finally {
      await foreign.close();
    }
    // the batch's next owner finds them failed
    const owner = new Owner();
    await (await start('O2', { worker: false })).run({ taskId: 'a', maxConcurrent: 2 }, all, owner);
    expect(owner.results.get('n0')).toMatchObject({
      kind: 'failed',
      errorType: 'AGENT_ERROR',
      errorMessage: "the node's job failed: unknown agent type",
    });
    expect(owner.results.get('n1')).toMatchObject({ errorMessage: "the node's job failed: no reason given" });
    expect(farm.calls).toEqual([]);
  });

  it('close hands back the jobs of handlers that ignore the abort, after a grace, to another worker', async () => {
    const o = await start('O', { worker: false });
    const stuck: { job: NodeJob; ctx: JobContext; release(): void }[] = [];
    // a handler that never looks at its signal
    const deaf = (job: NodeJob, ctx: JobContext): Promise<NodeRunResult> =>
      new Promise((resolve) => stuck.push({ job, ctx, release: () => resolve(completed(job)) }));
    const w1 = await start('W1', { capacity: 1 }, deaf);
    const owner = new Owner();
    const done = o.run({ taskId: 'a', maxConcurrent: 1 }, jobs('a', 1), owner);
    await until('n0 stuck on W1', () => stuck.length === 1);
    await start('W2');
    farm.finishAll();
    await w1.close(50, new NodeAbort('SHUTDOWN', 'the service shut down'));
    expect(stuck[0].ctx.signal.aborted).toBe(true);
    await done;
    expect(owner.results.get('n0')).toMatchObject({ kind: 'completed' });
    expect(farm.callsOf('n0').map((c) => c.instance)).toEqual(['W2']);
    // the deaf handler returning at last changes nothing
    stuck[0].release();
  });

  it('derives one queue id per node of a task, whichever process computes it, without ":"', () => {
    const job = { taskId: 'task-1', groupIndex: 2, nodeId: 'node:1' };
    expect(nodeJobId(job)).toBe(nodeJobId({ ...job }));
    expect(nodeJobId(job)).toMatch(/^task-1\.2\.[0-9a-f]{20}$/);
    const odd = nodeJobId({ ...job, taskId: 'tenant:task 1' });
    expect(odd).toMatch(/^[0-9a-f]{20}\.2\.[0-9a-f]{20}$/);
    expect(odd).not.toBe(nodeJobId({ ...job, taskId: 'tenant:task 2' }));
    expect(nodeJobId({ ...job, groupIndex: 3 })).not.toBe(nodeJobId(job));
  });
});
