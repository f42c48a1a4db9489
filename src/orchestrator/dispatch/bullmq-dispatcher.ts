import { Logger } from '@nestjs/common';
import { Job, Queue, QueueEvents, WaitingError, Worker } from 'bullmq';
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { settleWithin } from '../../common';
import { connectRedis, RedisKeys } from '../../redis';
import { NodeAbort } from '../batch-run';
import { AdaptiveLimit } from '../concurrency/adaptive-limit';
import { type ControlCommand, ControlChannel, type WireReason } from './control-channel';
import {
  type BatchHooks,
  type DispatchBatch,
  Dispatcher,
  type DispatcherState,
  type JobContext,
  type JobHandler,
  type NodeJob,
  type NodeRunResult,
  type RemoteStopListener,
  startOrder,
  type SchedulingPolicy,
} from './dispatcher';

export interface BullmqDispatcherOptions {
  redisUrl: string;
  /** `REDIS_PREFIX`: BullMQ's keys go under `<prefix>:bull`, the dispatcher's own under `<prefix>:dispatch`. */
  prefix: string;
  /** `GLOBAL_MAX_CONCURRENT`, for the whole cluster (BullMQ's global concurrency). */
  capacity: number;
  policy?: SchedulingPolicy;
  /** This process runs jobs (a worker); false: it only queues its batches' jobs. Default true. */
  worker?: boolean;
  /** This process's name (`INSTANCE_ID`): who sent a control message. */
  instanceId: string;
  /** A job's lock; a killed worker's job runs again after it lapsed (and a stalled check ran). Default 5 s. */
  lockDurationMs?: number;
  /** How often each worker looks for jobs whose lock lapsed. Default 2.5 s. */
  stalledIntervalMs?: number;
  /** AIMD on the shared limit (429s halve it). Default on. */
  adaptive?: boolean;
  /** How long `stop`/`abort` wait for every process to acknowledge. Default 1 s. */
  ackWaitMs?: number;
  /** How often an owner reads the state of its outstanding jobs (events it may have missed). Default 2 s. */
  reconcileIntervalMs?: number;
  /** How long finished jobs (and their results) stay readable for a batch's next owner. Default 1 h. */
  keepFinishedMs?: number;
}

const QUEUE = 'nodes';
/** BullMQ's highest priority value (2^21 - 1); lower runs first. */
const MAX_PRIORITY = 2_097_151;
/** `least-work`: the priority steps in 5 % of remaining work (a change re-prioritises the batch's waiting jobs). */
const WORK_STEP = Math.log(1.05);
/** A stop is remembered in Redis this long, for processes that missed the message. */
const STOP_TTL_MS = 24 * 3_600_000;
/** A task's stop key is read again after this long, even with the control channel up (and the entry dropped). */
const RECHECK_STOP_MS = 600_000;
/** After `close` aborted its running jobs, how long a handler gets to return before its job is handed back anyway. */
const ABORTED_GRACE_MS = 2_000;
/** At most this many workers are woken at once. */
const MAX_WAKE = 32;
const NOT_STARTED: NodeRunResult = { kind: 'not-started' };

/** One job of a batch this process owns, from the moment the feeder takes it until it ends. */
interface Entry {
  readonly id: string;
  readonly job: NodeJob;
  readonly batch: OwnedBatch;
  /** Its BullMQ job, once added. */
  bull: Job<NodeJob> | undefined;
  /** Added to the queue (or an add was attempted): the reconcile may look it up. */
  added: boolean;
  started: boolean;
  ended: boolean;
  /** BullMQ priority (0: none). */
  priority: number;
}

/** A batch this process owns: its feeder's state and its outstanding jobs. */
interface OwnedBatch {
  readonly taskId: string;
  readonly hooks: BatchHooks;
  /** In start order. */
  readonly jobs: readonly NodeJob[];
  next: number;
  /** Most jobs outstanding (added, not ended) at once. */
  readonly window: number;
  readonly outstanding: Map<string, Entry>;
  /** Σ max(expectedMs, 1) of the jobs not ended yet (`least-work`). */
  remainingMs: number;
  /** The priority its waiting jobs hold (`least-work`). */
  priority: number;
  seq: number;
  stopped: boolean;
  released: boolean;
  /** Its adds, re-prioritisations and removals, one after the other. */
  chain: Promise<void>;
  /** `hooks.ended` calls not settled yet. */
  readonly settling: Set<Promise<void>>;
  finish(): void;
}

/** A job this process's worker runs now. */
interface Running {
  readonly bull: Job<NodeJob>;
  readonly token: string | undefined;
  readonly controller: AbortController;
  /** Gives up on the handler: the processor ends at once (its job handed back). */
  forsake(): void;
}

/**
 * The distributed engine: node jobs go through one BullMQ queue that every process's worker takes from; the queue's
 * global concurrency is the cluster-wide cap, and the batch's owner keeps at most `max_concurrent` of its jobs in
 * the queue at once (its per-batch cap, across processes). Between batches BullMQ priorities do the scheduling:
 * none under `fifo`, the job's turn within its batch under `fair` (batches interleave), the batch's remaining
 * expected work under `least-work`. The owner hears of its jobs through `QueueEvents` (and a periodic look at their
 * state, for events it missed — or that happened before it owned the batch). Job ids are deterministic (task, group,
 * node), so a process taking a batch over re-adds its jobs and BullMQ keeps one of each.
 *
 * Stops and aborts reach every process over a pub/sub control channel (`ControlChannel`); a stop is also kept in a
 * key for processes that were not listening. A killed worker's job runs again once (stalled-job recovery, then
 * `failed`); a process that shuts down hands its running jobs back to the queue.
 */
export class BullmqDispatcher extends Dispatcher {
  private readonly logger = new Logger('Dispatcher');
  private readonly keys: RedisKeys;
  private readonly bullPrefix: string;
  private readonly policy: SchedulingPolicy;
  private readonly capacity: number;
  private readonly lockDurationMs: number;
  private readonly stalledIntervalMs: number;
  private readonly keepFinishedMs: number;
  private handler: JobHandler | undefined;
  private readonly remoteStop: RemoteStopListener[] = [];
  /** Tasks stopped (here or by another process), with when. */
  private readonly stopped = new Map<string, number>();
  /** When each task's stop key was last found absent (`heardSinceChecked`). */
  private readonly checkedStop = new Map<string, number>();
  private readonly owned = new Map<string, OwnedBatch>();
  private readonly entries = new Map<string, Entry>();
  /** This worker's running jobs, by task. */
  private readonly running = new Map<string, Set<Running>>();
  private runningCount = 0;
  private cmd: Redis | undefined;
  private queue: Queue<NodeJob> | undefined;
  private events: QueueEvents | undefined;
  private worker: Worker<NodeJob> | undefined;
  private channel: ControlChannel | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private lifecycle: 'new' | 'started' | 'closing' | 'closed' = 'new';
  /** AIMD on the shared limit, fed by the agent calls of this process. */
  readonly adaptive: AdaptiveLimit;

  constructor(private readonly options: BullmqDispatcherOptions) {
    super();
    this.keys = new RedisKeys(options.prefix);
    this.bullPrefix = this.keys.key('bull');
    this.policy = options.policy ?? 'least-work';
    this.capacity = options.capacity;
    this.lockDurationMs = options.lockDurationMs ?? 5_000;
    this.stalledIntervalMs = options.stalledIntervalMs ?? 2_500;
    this.keepFinishedMs = options.keepFinishedMs ?? 3_600_000;
    this.adaptive = new AdaptiveLimit(
      options.capacity,
      (n) => {
        this.applyLimit(n).catch((err: Error) =>
          this.logger.warn(`could not set the global limit: ${err.message}`),
        );
      },
      { enabled: options.adaptive ?? true, inFlight: () => this.runningCount },
    );
  }

  /** Connects: the queue (its global concurrency set to the capacity), its events, the control channel, the worker. */
  async start(): Promise<void> {
    if (this.lifecycle !== 'new') throw new Error('the dispatcher was started already');
    this.lifecycle = 'started';
    const connection = this.connection();
    this.cmd = connectRedis(this.options.redisUrl, `dispatch-${this.options.instanceId}`);
    const queue = new Queue<NodeJob>(QUEUE, {
      connection,
      prefix: this.bullPrefix,
      defaultJobOptions: {
        removeOnComplete: { age: Math.ceil(this.keepFinishedMs / 1000) },
        removeOnFail: { age: Math.ceil(this.keepFinishedMs / 1000) },
      },
    });
    this.queue = queue;
    queue.on('error', (err) => this.logger.warn(`queue: ${err.message}`));
    await queue.waitUntilReady();
    await queue.setGlobalConcurrency(this.capacity);
    // events from now on: none between this read and the first XREAD is lost (reading from '$' would lose them)
    const last = await this.cmd.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
    this.events = new QueueEvents(QUEUE, {
      connection,
      prefix: this.bullPrefix,
      lastEventId: last[0]?.[0] ?? '0-0',
    });
    this.listen(this.events);
    await this.events.waitUntilReady();
    this.channel = new ControlChannel(
      this.cmd,
      connectRedis(this.options.redisUrl, `dispatch-sub-${this.options.instanceId}`),
      this.keys,
      { instanceId: this.options.instanceId, ackWaitMs: this.options.ackWaitMs ?? 1_000 },
      (cmd, from) => this.onControl(cmd, from),
    );
    await this.channel.start();
    if (this.options.worker ?? true) {
      this.worker = new Worker<NodeJob>(QUEUE, (job, token, signal) => this.process(job, token, signal), {
        connection,
        prefix: this.bullPrefix,
        concurrency: this.capacity,
        maxStalledCount: 1,
        lockDuration: this.lockDurationMs,
        stalledInterval: this.stalledIntervalMs,
        // an idle worker looks again every second even without a wake-up marker
        drainDelay: 1,
        autorun: false,
      });
      this.worker.on('error', (err) => this.logger.warn(`worker: ${err.message}`));
      await this.worker.waitUntilReady();
      this.runWorker();
    }
    this.reconcileTimer = setInterval(() => this.reconcileAll(), this.options.reconcileIntervalMs ?? 2_000);
    this.reconcileTimer.unref();
  }

  handle(handler: JobHandler): void {
    this.handler = handler;
    this.runWorker();
  }

  override onRemoteStop(listener: RemoteStopListener): void {
    this.remoteStop.push(listener);
  }

  async run(batch: DispatchBatch, jobs: readonly NodeJob[], hooks: BatchHooks = {}): Promise<void> {
    this.queueOrFail();
    const previous = this.owned.get(batch.taskId);
    if (previous) this.letGo(previous);
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const ordered = startOrder(jobs, this.policy);
    const b: OwnedBatch = {
      taskId: batch.taskId,
      hooks,
      jobs: ordered,
      next: 0,
      // the batch's cap cannot bind when it is at least the global one: a lookahead keeps global slots busy
      window:
        batch.maxConcurrent >= this.capacity
          ? batch.maxConcurrent + this.capacity
          : Math.max(1, batch.maxConcurrent),
      outstanding: new Map(),
      remainingMs: ordered.reduce((sum, job) => sum + work(job), 0),
      priority: Number.POSITIVE_INFINITY,
      seq: 0,
      stopped: false,
      released: false,
      chain: Promise.resolve(),
      settling: new Set(),
      finish,
    };
    this.owned.set(b.taskId, b);
    this.fill(b);
    this.checkDone(b);
    await finished;
  }

  async stop(taskId: string): Promise<void> {
    const channel = this.channelOrFail();
    this.stopLocally(taskId);
    // the key first (same transaction): a process that misses the message still finds the stop before a job starts;
    // sent at once (no await before), so an `abort` called right after reaches every process after it
    await channel.send({ kind: 'stop', taskId }, (multi) =>
      multi.set(this.stopKey(taskId), '1', 'PX', STOP_TTL_MS),
    );
  }

  release(taskId: string): Promise<void> {
    const b = this.owned.get(taskId);
    if (b) this.letGo(b);
    return Promise.resolve();
  }

  async abort(taskId: string, reason: Error, scope: 'cluster' | 'process' = 'cluster'): Promise<void> {
    this.abortLocally(taskId, reason);
    if (scope === 'process') return;
    const wire: WireReason = {
      message: reason.message,
      ...(reason instanceof NodeAbort && { errorType: reason.errorType }),
    };
    await this.channelOrFail().send({ kind: 'abort', taskId, reason: wire });
  }

  override async close(graceMs: number, abortWith: Error): Promise<void> {
    if (this.lifecycle === 'closing' || this.lifecycle === 'closed') return;
    const started = this.lifecycle === 'started';
    this.lifecycle = 'closing';
    clearInterval(this.reconcileTimer);
    for (const b of [...this.owned.values()]) this.letGo(b);
    if (started) {
      if (this.worker) await this.closeWorker(this.worker, graceMs, abortWith);
      await this.disconnect();
    }
    this.lifecycle = 'closed';
  }

  /**
   * Stops at once, as a killed process would: the worker closes without waiting for or handing back its running
   * jobs (their locks lapse and another worker runs them again), batches are let go. For tests of crash recovery.
   */
  async abandon(): Promise<void> {
    if (this.lifecycle !== 'started') return;
    this.lifecycle = 'closing';
    clearInterval(this.reconcileTimer);
    for (const b of [...this.owned.values()]) this.letGo(b);
    for (const set of this.running.values()) for (const r of set) r.forsake();
    await this.worker?.close(true);
    await this.disconnect();
    this.lifecycle = 'closed';
  }

  async setLimit(limit: number): Promise<void> {
    await this.applyLimit(limit);
  }

  async state(): Promise<DispatcherState> {
    const queue = this.queueOrFail();
    const [limit, counts] = await Promise.all([
      queue.getGlobalConcurrency(),
      queue.getJobCounts('active', 'waiting', 'prioritized'),
    ]);
    return {
      policy: this.policy,
      limit: limit ?? this.capacity,
      capacity: this.capacity,
      inUse: counts.active ?? 0,
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
    };
  }

  /** This owner's jobs of the task taken by its feeder and not started yet (0 under `fifo`, which keeps no turns). */
  waitingFor(taskId: string): Promise<number> {
    const b = this.owned.get(taskId);
    if (!b || this.policy === 'fifo') return Promise.resolve(0);
    let waiting = 0;
    for (const e of b.outstanding.values()) if (!e.started) waiting++;
    return Promise.resolve(waiting);
  }

  // ─── owner side ─────────────────────────────────────────────────────────────────────────────────────────────────

  /** Takes the batch's next jobs up to its window (at once, so `waitingFor` counts them) and queues their add. */
  private fill(b: OwnedBatch): void {
    if (b.stopped || b.released) return;
    const fresh: Entry[] = [];
    while (b.next < b.jobs.length && b.outstanding.size < b.window) {
      const job = b.jobs[b.next++];
      const entry: Entry = {
        id: nodeJobId(job),
        job,
        batch: b,
        bull: undefined,
        added: false,
        started: false,
        ended: false,
        priority: 0,
      };
      b.outstanding.set(entry.id, entry);
      this.entries.set(entry.id, entry);
      fresh.push(entry);
    }
    if (fresh.length) this.enqueue(b, () => this.add(b, fresh));
  }

  private enqueue(b: OwnedBatch, step: () => Promise<void>): void {
    b.chain = b.chain.then(step).catch((err: Error) => {
      this.logger.error(`task ${b.taskId}: queue operation failed: ${err.message}`);
    });
  }

  private async add(b: OwnedBatch, entries: Entry[]): Promise<void> {
    if (b.stopped || b.released) {
      for (const e of entries) if (!e.added) this.drop(e);
      this.checkDone(b);
      return;
    }
    if (this.policy === 'least-work') {
      const priority = workPriority(b.remainingMs);
      if (priority < b.priority && Number.isFinite(b.priority)) await this.reprioritise(b, priority);
      b.priority = Math.min(b.priority, priority);
      for (const e of entries) e.priority = b.priority;
    } else if (this.policy === 'fair') {
      for (const e of entries) e.priority ||= Math.min(++b.seq, MAX_PRIORITY);
    }
    try {
      const added = await this.queueOrFail().addBulk(
        entries.map((e) => ({
          name: 'node',
          data: e.job,
          opts: { jobId: e.id, ...(e.priority > 0 && { priority: e.priority }) },
        })),
      );
      entries.forEach((e, i) => (e.bull = added[i]));
      if (entries.length > 1) await this.wakeWorkers();
    } finally {
      // even when the add failed: the reconcile finds the job missing and adds it again
      for (const e of entries) e.added = true;
    }
  }

  /**
   * `least-work`: the batch's remaining work dropped a step — its waiting jobs move to the new priority first, in
   * their order (BullMQ keeps insertion order among equal priorities), so the job added next queues behind them.
   */
  private async reprioritise(b: OwnedBatch, priority: number): Promise<void> {
    const waiting = [...b.outstanding.values()].filter((e) => e.bull && !e.started && !e.ended);
    await Promise.all(
      waiting.map((e) =>
        (e.bull as Job<NodeJob>).changePriority({ priority }).then(
          () => (e.priority = priority),
          () => undefined, // gone meanwhile (started, ended): nothing to move
        ),
      ),
    );
  }

  private listen(events: QueueEvents): void {
    events.on('error', (err) => this.logger.warn(`queue events: ${err.message}`));
    events.on('active', ({ jobId }) => {
      const e = this.entries.get(jobId);
      if (e) this.markStarted(e);
    });
    events.on('completed', ({ jobId, returnvalue }) => {
      const e = this.entries.get(jobId);
      if (e) this.end(e, asResult(returnvalue));
    });
    events.on('failed', ({ jobId, failedReason }) => {
      const e = this.entries.get(jobId);
      if (e) this.end(e, this.failure(failedReason));
    });
    // the job was there already (a takeover): it may have ended before this owner listened
    events.on('duplicated', ({ jobId }) => {
      const e = this.entries.get(jobId);
      if (e) void this.reconcile(e);
    });
    events.on('removed', ({ jobId }) => {
      const e = this.entries.get(jobId);
      if (e && !e.started) this.drop(e);
    });
  }

  private markStarted(e: Entry): void {
    if (e.started || e.ended) return;
    e.started = true;
    e.batch.hooks.started?.(e.job);
  }

  /** The job ended with `result`: the owner's hooks run, and the batch's next job is queued. */
  private end(e: Entry, result: NodeRunResult | undefined): void {
    if (e.ended) return;
    const b = e.batch;
    if (b.released) return void (e.ended = true); // the next owner hears of it
    // a job that did not start (its task stopped) is not reported as started now
    if (result?.kind !== 'not-started' && result?.kind !== 'shutdown') this.markStarted(e);
    this.forget(e);
    this.fill(b);
    const settled = (async () => {
      try {
        if (e.started) b.hooks.agentEnded?.(e.job);
        await b.hooks.ended?.(e.job, result);
      } catch (err) {
        this.logger.error(`job ${b.taskId}/${e.job.nodeId} could not be settled: ${(err as Error).message}`);
      }
    })();
    b.settling.add(settled);
    void settled.finally(() => {
      b.settling.delete(settled);
      this.checkDone(b);
    });
  }

  /** The job will not run (removed from the queue after a stop): it leaves the batch without a result. */
  private drop(e: Entry): void {
    if (e.ended) return;
    this.forget(e);
    this.checkDone(e.batch);
  }

  private forget(e: Entry): void {
    e.ended = true;
    e.batch.outstanding.delete(e.id);
    e.batch.remainingMs -= work(e.job);
    if (this.entries.get(e.id) === e) this.entries.delete(e.id);
  }

  private checkDone(b: OwnedBatch): void {
    const idle = b.outstanding.size === 0 && (b.stopped || b.next >= b.jobs.length);
    if ((b.released || idle) && b.settling.size === 0) {
      if (this.owned.get(b.taskId) === b) this.owned.delete(b.taskId);
      b.finish();
    }
  }

  /** This process stops dispatching the batch; its jobs stay in the queue for the next owner. */
  private letGo(b: OwnedBatch): void {
    b.released = true;
    for (const e of b.outstanding.values()) if (this.entries.get(e.id) === e) this.entries.delete(e.id);
    if (this.owned.get(b.taskId) === b) this.owned.delete(b.taskId);
    this.checkDone(b);
  }

  /** Reads the state of a job whose event may have been missed, and acts on it. */
  private async reconcile(e: Entry): Promise<void> {
    const queue = this.queue;
    if (!queue || e.ended) return;
    try {
      const state = await queue.getJobState(e.id);
      if (e.ended) return;
      if (state === 'completed' || state === 'failed') {
        const job = await queue.getJob(e.id);
        if (e.ended || !job) return;
        this.end(e, state === 'completed' ? asResult(job.returnvalue) : this.failure(job.failedReason));
      } else if (state === 'active') {
        this.markStarted(e);
      } else if (state === 'unknown' && e.added && !e.batch.released) {
        // gone (removed after it finished long ago, or its add failed): queue it again, or let it go if stopped
        e.added = false;
        this.enqueue(e.batch, () => this.add(e.batch, [e]));
      }
    } catch (err) {
      this.logger.warn(`could not read job ${e.id}: ${(err as Error).message}`);
    }
  }

  private reconcileAll(): void {
    for (const b of this.owned.values()) {
      for (const e of b.outstanding.values()) if (e.added) void this.reconcile(e);
    }
  }

  /** The batch was stopped: remove its jobs still waiting in the queue (running ones go on). */
  private async removeWaiting(b: OwnedBatch): Promise<void> {
    const queue = this.queueOrFail();
    await Promise.all(
      [...b.outstanding.values()].map(async (e) => {
        if (e.started || e.ended) return;
        if (!e.added) return this.drop(e);
        // only a waiting job: a finished one may hold a result whose event has not arrived yet
        const state = await queue.getJobState(e.id);
        if (state !== 'waiting' && state !== 'prioritized') return;
        if ((await queue.remove(e.id)) === 1) this.drop(e);
      }),
    );
    this.checkDone(b);
  }

  private failure(reason: string | undefined): NodeRunResult {
    const now = new Date().toISOString();
    const stalled = /stalled more than allowable limit/.test(reason ?? '');
    return {
      kind: 'failed',
      startedAt: now,
      finishedAt: now,
      durationMs: 0,
      errorType: 'AGENT_ERROR',
      errorMessage: stalled
        ? 'the worker running this node stopped twice'
        : `the node's job failed: ${reason || 'no reason given'}`,
      inputTokens: 0,
      outputTokens: 0,
      attempts: 0,
    };
  }

  // ─── control ────────────────────────────────────────────────────────────────────────────────────────────────────

  private onControl(cmd: ControlCommand, from: string): void {
    const remote = from !== this.options.instanceId;
    if (cmd.kind === 'stop') {
      this.stopLocally(cmd.taskId);
      if (remote) for (const listener of this.remoteStop) listener(cmd.taskId);
      return;
    }
    // the sender aborted its own jobs with the original reason already
    if (!remote) return;
    const reason =
      cmd.reason.errorType !== undefined
        ? new NodeAbort(cmd.reason.errorType as NodeAbort['errorType'], cmd.reason.message)
        : new Error(cmd.reason.message);
    this.abortLocally(cmd.taskId, reason);
    for (const listener of this.remoteStop) listener(cmd.taskId, reason);
  }

  private stopLocally(taskId: string): void {
    const now = Date.now();
    this.stopped.set(taskId, now);
    for (const [id, at] of this.stopped) if (now - at > STOP_TTL_MS) this.stopped.delete(id);
    const b = this.owned.get(taskId);
    if (!b || b.stopped) return;
    b.stopped = true;
    this.enqueue(b, () => this.removeWaiting(b));
    this.checkDone(b);
  }

  private abortLocally(taskId: string, reason: Error): void {
    for (const r of this.running.get(taskId) ?? []) r.controller.abort(reason);
  }

  private stopKey(taskId: string): string {
    return this.keys.key('dispatch', 'stopped', taskId);
  }

  // ─── worker side ────────────────────────────────────────────────────────────────────────────────────────────────

  private runWorker(): void {
    const worker = this.worker;
    if (!worker || !this.handler || worker.isRunning() || this.lifecycle !== 'started') return;
    worker.run().catch((err: Error) => this.logger.error(`worker stopped: ${err.message}`));
  }

  /** Runs one job on this process's worker (any process's batch); its result goes back to the owner via BullMQ. */
  private async process(
    bull: Job<NodeJob>,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<NodeRunResult | null> {
    const job = bull.data;
    const handler = this.handler;
    if (this.stopped.has(job.taskId)) return NOT_STARTED;
    if (!this.heardSinceChecked(job.taskId)) {
      const at = Date.now();
      if ((await this.cmd?.exists(this.stopKey(job.taskId))) === 1) this.stopped.set(job.taskId, Date.now());
      else {
        if (this.checkedStop.size > 10_000) this.checkedStop.clear();
        this.checkedStop.set(job.taskId, at);
      }
    }
    // checked synchronously right before the handler: a stop acknowledged by this process is seen here
    if (this.stopped.has(job.taskId)) return NOT_STARTED;
    if (!handler) throw new Error('no job handler registered');
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    let forsake!: () => void;
    const forsaken = new Promise<never>((_, reject) => (forsake = () => reject(new WaitingError())));
    forsaken.catch(() => undefined);
    const running: Running = { bull, token, controller, forsake };
    this.track(job.taskId, running, true);
    const ctx: JobContext = {
      signal: controller.signal,
      feedback: this.adaptive,
      // the job holds its global slot until it ends: the queue knows no partial release
      releaseAgentSlots: () => undefined,
      releaseWriteSlot: () => undefined,
    };
    try {
      const work = handler(job, ctx);
      const result = (await Promise.race([work, forsaken])) ?? null;
      if (result?.kind === 'shutdown') return await this.handBack(bull, token);
      return result;
    } catch (err) {
      if (err instanceof WaitingError) throw err;
      this.logger.error(`job ${job.taskId}/${job.nodeId} failed: ${(err as Error).message}`);
      return null;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.track(job.taskId, running, false);
    }
  }

  /**
   * The task's stop key was found absent at a time since which the control channel has listened without a break:
   * a stop made since would have reached this process, no need to read the key again.
   */
  private heardSinceChecked(taskId: string): boolean {
    const checkedAt = this.checkedStop.get(taskId);
    const since = this.channel?.listeningSince;
    if (checkedAt === undefined || since === undefined || checkedAt < since) return false;
    if (Date.now() - checkedAt < RECHECK_STOP_MS) return true;
    this.checkedStop.delete(taskId);
    return false;
  }

  private track(taskId: string, r: Running, on: boolean): void {
    let set = this.running.get(taskId);
    if (on) {
      if (!set) this.running.set(taskId, (set = new Set()));
      set.add(r);
      this.runningCount++;
    } else if (set?.delete(r)) {
      this.runningCount--;
      if (!set.size) this.running.delete(taskId);
    }
  }

  /**
   * This process's shutdown aborted the job: back to the queue (ahead of its equals) for another worker, which is
   * woken. This worker takes no more jobs (the process is going away): closing it first also cuts its own wait for
   * a job, so it cannot take the wake-up itself.
   */
  private async handBack(bull: Job<NodeJob>, token: string | undefined): Promise<NodeRunResult> {
    this.worker?.close().catch((err: Error) => this.logger.warn(`worker close: ${err.message}`));
    try {
      await bull.moveToWait(token);
    } catch (err) {
      // its lock is gone (another worker has it): nothing to hand back
      this.logger.warn(`job ${bull.id} not handed back: ${(err as Error).message}`);
      return { kind: 'shutdown' };
    }
    await this.wakeWorkers().catch(() => undefined);
    throw new WaitingError();
  }

  /**
   * Wakes the workers blocked waiting for a job (BullMQ's marker set; each waiting worker pops one member). BullMQ
   * wakes one worker per add, which then takes every job it can: waking several lets the workers of all processes
   * race for a batch's first jobs, so the work spreads over them (each then refills the slots it holds).
   */
  private async wakeWorkers(): Promise<void> {
    const queue = this.queue;
    if (!queue || !this.cmd) return;
    const members = Array.from({ length: Math.min(this.capacity, MAX_WAKE) }, (_, i) => [0, `w${i}`]).flat();
    await this.cmd.zadd(queue.keys.marker, ...members);
  }

  private async closeWorker(worker: Worker<NodeJob>, graceMs: number, abortWith: Error): Promise<void> {
    const closing = worker.close();
    if (await settleWithin(closing, graceMs)) return;
    for (const set of this.running.values()) for (const r of set) r.controller.abort(abortWith);
    if (await settleWithin(closing, ABORTED_GRACE_MS)) return;
    // handlers that ignore the abort: their jobs go back to the queue anyway
    for (const set of [...this.running.values()]) {
      for (const r of [...set]) {
        try {
          await r.bull.moveToWait(r.token);
        } catch (err) {
          this.logger.warn(`job ${r.bull.id} not handed back: ${(err as Error).message}`);
        }
        r.forsake();
      }
    }
    await this.wakeWorkers().catch(() => undefined);
    await closing;
  }

  // ─── plumbing ───────────────────────────────────────────────────────────────────────────────────────────────────

  private connection(): {
    url: string;
    maxRetriesPerRequest: null;
    retryStrategy: (attempt: number) => number;
  } {
    return {
      url: this.options.redisUrl,
      // what BullMQ's workers require; a Redis restart delays jobs rather than failing them
      maxRetriesPerRequest: null,
      retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
    };
  }

  private async applyLimit(limit: number): Promise<void> {
    const n = Math.max(1, Math.min(this.capacity, Math.floor(limit)));
    await this.queueOrFail().setGlobalConcurrency(n);
    // workers waiting while the queue was at its limit look again
    await this.wakeWorkers();
  }

  private async disconnect(): Promise<void> {
    await this.events?.close().catch(() => undefined);
    await this.queue?.close().catch(() => undefined);
    await this.channel?.close();
    await this.cmd?.quit().catch(() => this.cmd?.disconnect());
  }

  private queueOrFail(): Queue<NodeJob> {
    if (!this.queue || this.lifecycle !== 'started') throw new Error('the dispatcher is not started');
    return this.queue;
  }

  private channelOrFail(): ControlChannel {
    if (!this.channel || this.lifecycle !== 'started') throw new Error('the dispatcher is not started');
    return this.channel;
  }
}

/** The job's id in the queue: the same for the same node of the same task, whichever process adds it. */
export function nodeJobId(job: Pick<NodeJob, 'taskId' | 'groupIndex' | 'nodeId'>): string {
  // BullMQ ids may not contain ':' nor be integers
  const task = /^[\w.-]+$/.test(job.taskId) ? job.taskId : digest(job.taskId);
  return `${task}.${job.groupIndex}.${digest(job.nodeId)}`;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 20);
}

function work(job: NodeJob): number {
  return Math.max(job.expectedMs, 1);
}

/** `least-work`: less remaining work, a lower (sooner) priority; steps of 5 %, from 1 up. */
function workPriority(remainingMs: number): number {
  const step = Math.floor(Math.log(Math.max(remainingMs, 1)) / WORK_STEP) + 1;
  return Math.min(Math.max(step, 1), MAX_PRIORITY);
}

function asResult(value: unknown): NodeRunResult | undefined {
  if (value && typeof value === 'object' && 'kind' in value) return value as NodeRunResult;
  return undefined;
}
