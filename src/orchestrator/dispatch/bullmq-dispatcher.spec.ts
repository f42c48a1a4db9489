import { deletePrefix, describeWithRedis, uniquePrefix } from '../../../test/support/redis';
import { NodeAbort } from '../batch-run';
import { BullmqDispatcher, type BullmqDispatcherOptions } from './bullmq-dispatcher';
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

describeWithRedis('BullmqDispatcher across processes', (url) => {
  let prefix: string;
  let farm: Farm;
  let instances: BullmqDispatcher[];

  /** A "process": its own dispatcher on the shared prefix, its handler recorded by the farm. */
  const start = async (
    name: string,
    options: Partial<BullmqDispatcherOptions> = {},
  ): Promise<BullmqDispatcher> => {
    const d = new BullmqDispatcher({
      redisUrl: url,
      prefix,
      capacity: 4,
      instanceId: name,
      lockDurationMs: 1_000,
      stalledIntervalMs: 500,
      reconcileIntervalMs: 300,
      ...options,
    });
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
