import type { Dispatcher, JobContext, NodeJob, SchedulingPolicy } from './dispatcher';

/*
 * The Dispatcher port's contract, written once and run against every adapter (`describeDispatcherContract(name,
 * make)` in the adapter's spec). Jobs are held open by the test and ended one by one, so what is asserted is which
 * jobs start, in which order, and how many at once — never how long anything takes.
 */

export interface DispatcherContractOptions {
  /** `GLOBAL_MAX_CONCURRENT`. */
  capacity: number;
  policy: SchedulingPolicy;
}

/** What an adapter can do beyond the port's minimum; tests of what it cannot are skipped (default: everything). */
export interface DispatcherCapabilities {
  /**
   * A job gives its agent slots back before it ends (`releaseAgentSlots`), so the next job starts while it writes its
   * result. A queue-backed adapter holds the job's global slot until the job ends.
   */
  releasesAgentSlotsEarly?: boolean;
}

/** A job the handler is running: its context, and `finish()` to end it. */
interface Started {
  job: NodeJob;
  ctx: JobContext;
  finish(): void;
}

/** Registers a handler that records every start and keeps each job running until the test ends it. */
class Recorder {
  readonly started: Started[] = [];
  /** Jobs in their agent phase now (started, agent slots not given back), and the most there ever were. */
  agents = 0;
  peakAgents = 0;
  private readonly peakPerTask = new Map<string, number>();
  private readonly agentsPerTask = new Map<string, number>();

  constructor(
    dispatcher: Dispatcher,
    private readonly releaseAgentSlotsAtOnce = false,
  ) {
    dispatcher.handle((job, ctx) => this.run(job, ctx));
  }

  peakOf(taskId: string): number {
    return this.peakPerTask.get(taskId) ?? 0;
  }

  /** Ends the oldest job still running. */
  finishNext(): void {
    const next = this.started.find((s) => !this.ended.has(s));
    if (!next) throw new Error('no job is running');
    next.finish();
  }

  running(): Started[] {
    return this.started.filter((s) => !this.ended.has(s));
  }

  private readonly ended = new Set<Started>();

  private run(job: NodeJob, ctx: JobContext): Promise<void> {
    return new Promise<void>((resolve) => {
      let agent = true;
      const endAgent = (): void => {
        if (!agent) return;
        agent = false;
        this.agents--;
        this.agentsPerTask.set(job.taskId, (this.agentsPerTask.get(job.taskId) ?? 0) - 1);
        ctx.releaseAgentSlots();
      };
      this.agents++;
      this.peakAgents = Math.max(this.peakAgents, this.agents);
      const mine = (this.agentsPerTask.get(job.taskId) ?? 0) + 1;
      this.agentsPerTask.set(job.taskId, mine);
      this.peakPerTask.set(job.taskId, Math.max(this.peakOf(job.taskId), mine));
      const started: Started = {
        job,
        ctx,
        finish: () => {
          this.ended.add(started);
          endAgent();
          ctx.releaseWriteSlot();
          resolve();
        },
      };
      this.started.push(started);
      if (this.releaseAgentSlotsAtOnce) endAgent();
    });
  }
}

function jobs(taskId: string, count: number, expectedMs: (i: number) => number = () => 0): NodeJob[] {
  return Array.from({ length: count }, (_, i) => ({
    taskId,
    groupIndex: 0,
    nodeId: `n${i}`,
    agentType: 'oral-explanation',
    expectedMs: expectedMs(i),
    canvasPath: 'Biology/cells.canvas',
    deadlineAt: null,
  }));
}

/** Waits until `condition` holds (polling on the event loop's turns; no timer involved). */
async function until(condition: () => boolean, maxTurns = 200_000): Promise<void> {
  for (let turn = 0; !condition(); turn++) {
    if (turn > maxTurns) throw new Error('condition not met');
    await new Promise((r) => setImmediate(r));
  }
}

/** A few more turns of the event loop, for a job that must not start to get every chance to. */
async function settle(turns = 50): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/** Ends running jobs one at a time until `done` settles. */
async function drain(recorder: Recorder, done: Promise<void>): Promise<void> {
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    await until(() => finished || recorder.running().length > 0);
    if (!finished) recorder.finishNext();
    await settle(5);
  }
}

export function describeDispatcherContract(
  name: string,
  make: (options: DispatcherContractOptions) => Dispatcher | Promise<Dispatcher>,
  dispose: (dispatcher: Dispatcher) => Promise<void> = () => Promise.resolve(),
  capabilities: DispatcherCapabilities = {},
): void {
  const { releasesAgentSlotsEarly = true } = capabilities;
  describe(`Dispatcher contract: ${name}`, () => {
    let dispatcher: Dispatcher | undefined;
    const open = async (options: Partial<DispatcherContractOptions> = {}): Promise<Dispatcher> =>
      (dispatcher = await make({ capacity: 10, policy: 'fair', ...options }));

    afterEach(async () => {
      if (dispatcher) await dispose(dispatcher);
      dispatcher = undefined;
    });

    it('runs every job of a batch once, never more than the batch cap at once', async () => {
      const d = await open({ capacity: 10 });
      const r = new Recorder(d);
      const done = d.run({ taskId: 'a', maxConcurrent: 3 }, jobs('a', 8));
      await until(() => r.started.length === 3);
      await settle();
      expect(r.started).toHaveLength(3);
      await drain(r, done);
      expect(r.started.map((s) => s.job.nodeId).sort()).toEqual(
        jobs('a', 8)
          .map((j) => j.nodeId)
          .sort(),
      );
      expect(r.peakOf('a')).toBe(3);
    });

    it('never runs more than the global cap at once, over all batches', async () => {
      const d = await open({ capacity: 3 });
      const r = new Recorder(d);
      const a = d.run({ taskId: 'a', maxConcurrent: 5 }, jobs('a', 6));
      const b = d.run({ taskId: 'b', maxConcurrent: 5 }, jobs('b', 6));
      await until(() => r.started.length === 3);
      await settle();
      expect(r.agents).toBe(3);
      expect(await d.state()).toMatchObject({ capacity: 3, limit: 3, inUse: 3 });
      expect((await d.state()).waiting).toBeGreaterThan(0);
      await drain(
        r,
        Promise.all([a, b]).then(() => undefined),
      );
      expect(r.started).toHaveLength(12);
      expect(r.peakAgents).toBe(3);
      expect(await d.state()).toMatchObject({ inUse: 0, waiting: 0 });
    });

    it('shares the global slots round-robin between batches under `fair`', async () => {
      const d = await open({ capacity: 1, policy: 'fair' });
      const r = new Recorder(d);
      const a = d.run({ taskId: 'a', maxConcurrent: 4 }, jobs('a', 4));
      await until(() => r.started.length === 1);
      const b = d.run({ taskId: 'b', maxConcurrent: 4 }, jobs('b', 4));
      await settle();
      expect(await d.waitingFor('b')).toBe(4);
      await drain(
        r,
        Promise.all([a, b]).then(() => undefined),
      );
      const order = r.started.map((s) => s.job.taskId);
      // once both wait, turns alternate until one batch has nothing left
      const fromB = order.slice(order.indexOf('b'));
      const left = { a: fromB.filter((t) => t === 'a').length, b: fromB.filter((t) => t === 'b').length };
      for (let i = 1; i < fromB.length; i++) {
        const bothLeft = left.a > 0 && left.b > 0;
        if (bothLeft) expect(fromB[i]).not.toBe(fromB[i - 1]);
        left[fromB[i - 1] as 'a' | 'b']--;
      }
      expect(order.filter((t) => t === 'b')).toHaveLength(4);
    });

    it('starts a batch’s jobs longest expected first under `fair`, in submission order among equals', async () => {
      const d = await open({ capacity: 1, policy: 'fair' });
      const r = new Recorder(d);
      const expected = [10, 50, 30, 50, 0];
      const done = d.run(
        { taskId: 'a', maxConcurrent: 1 },
        jobs('a', 5, (i) => expected[i]),
      );
      await drain(r, done);
      expect(r.started.map((s) => s.job.nodeId)).toEqual(['n1', 'n3', 'n2', 'n0', 'n4']);
    });

    it('serves the batch with the least expected work left first under `least-work`, longest first within it', async () => {
      const d = await open({ capacity: 1, policy: 'least-work' });
      const r = new Recorder(d);
      const a = d.run(
        { taskId: 'a', maxConcurrent: 4 },
        jobs('a', 6, () => 100),
      );
      await until(() => r.started.length === 1);
      const b = d.run(
        { taskId: 'b', maxConcurrent: 4 },
        jobs('b', 2, (i) => [10, 30][i]),
      );
      await settle();
      expect(await d.waitingFor('b')).toBe(2);
      await drain(
        r,
        Promise.all([a, b]).then(() => undefined),
      );
      // a has 5 × 100 ms left when b (40 ms) arrives: b goes first, then a again
      expect(r.started.map((s) => `${s.job.taskId}.${s.job.nodeId}`)).toEqual([
        'a.n0',
        'b.n1',
        'b.n0',
        'a.n1',
        'a.n2',
        'a.n3',
        'a.n4',
        'a.n5',
      ]);
    });

    it('keeps submission order under `fifo`', async () => {
      const d = await open({ capacity: 1, policy: 'fifo' });
      const r = new Recorder(d);
      const done = d.run(
        { taskId: 'a', maxConcurrent: 1 },
        jobs('a', 4, (i) => i * 10),
      );
      await drain(r, done);
      expect(r.started.map((s) => s.job.nodeId)).toEqual(['n0', 'n1', 'n2', 'n3']);
    });

    it('stop: no new job of the task starts; running ones go on, and run() resolves once they end', async () => {
      const d = await open({ capacity: 10 });
      const r = new Recorder(d);
      const other = d.run({ taskId: 'b', maxConcurrent: 1 }, jobs('b', 2));
      const done = d.run({ taskId: 'a', maxConcurrent: 2 }, jobs('a', 6));
      await until(() => r.started.filter((s) => s.job.taskId === 'a').length === 2);
      await d.stop('a');
      const running = r.running().filter((s) => s.job.taskId === 'a');
      expect(running.map((s) => s.ctx.signal.aborted)).toEqual([false, false]);
      running.forEach((s) => s.finish());
      await done;
      await settle();
      expect(r.started.filter((s) => s.job.taskId === 'a')).toHaveLength(2);
      await drain(r, other); // another task is not affected
      expect(r.started.filter((s) => s.job.taskId === 'b')).toHaveLength(2);
    });

    it('abort: the running jobs’ signals abort with the reason given; other tasks’ do not', async () => {
      const d = await open({ capacity: 10 });
      const r = new Recorder(d);
      const a = d.run({ taskId: 'a', maxConcurrent: 2 }, jobs('a', 2));
      const b = d.run({ taskId: 'b', maxConcurrent: 1 }, jobs('b', 1));
      await until(() => r.started.length === 3);
      const reason = new Error('cancelled');
      await d.abort('a', reason);
      const signals = (task: string) =>
        r.started.filter((s) => s.job.taskId === task).map((s) => s.ctx.signal);
      expect(signals('a').map((s) => [s.aborted, s.reason as unknown])).toEqual([
        [true, reason],
        [true, reason],
      ]);
      expect(signals('b').map((s) => s.aborted)).toEqual([false]);
      r.running().forEach((s) => s.finish());
      await Promise.all([a, b]);
    });

    it('honours a lowered global limit, and reports it', async () => {
      const d = await open({ capacity: 4 });
      const r = new Recorder(d);
      const first = d.run({ taskId: 'a', maxConcurrent: 4 }, jobs('a', 4));
      await until(() => r.started.length === 4);
      await d.setLimit(2);
      expect((await d.state()).limit).toBe(2);
      const second = d.run({ taskId: 'b', maxConcurrent: 4 }, jobs('b', 6));
      r.running().forEach((s) => s.finish()); // the excess drains
      await first;
      r.peakAgents = r.agents;
      await drain(r, second);
      expect(r.peakAgents).toBe(2);
      await d.setLimit(100);
      expect((await d.state()).limit).toBe(4); // never above capacity
    });

    (releasesAgentSlotsEarly ? it : it.skip)(
      'starts the next job once the agent slots are given back, before the handler settles',
      async () => {
        const d = await open({ capacity: 1 });
        const r = new Recorder(d, true); // every job gives its agent slots back at once, keeps its write slot
        const done = d.run({ taskId: 'a', maxConcurrent: 1 }, jobs('a', 4));
        await until(() => r.started.length === 2);
        await settle();
        // two write slots per batch slot: a third waits until a result is "written"
        expect(r.started).toHaveLength(2);
        r.finishNext();
        await until(() => r.started.length === 3);
        await drain(r, done);
        expect(r.started).toHaveLength(4);
      },
    );
  });
}
