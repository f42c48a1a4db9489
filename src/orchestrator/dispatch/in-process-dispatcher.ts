import { Logger } from '@nestjs/common';
import { AdaptiveLimit } from '../concurrency/adaptive-limit';
import { GlobalSlots, type Slot, SlotLimiter } from '../concurrency/slot-limiter';
import {
  type BatchHooks,
  type DispatchBatch,
  Dispatcher,
  type DispatcherState,
  type JobHandler,
  type NodeJob,
  type NodeRunResult,
  type SchedulingPolicy,
  startOrder,
} from './dispatcher';

export interface InProcessDispatcherOptions {
  /** `GLOBAL_MAX_CONCURRENT`. */
  capacity: number;
  policy?: SchedulingPolicy;
  /** AIMD on the global limit (429s halve it). Default on. */
  adaptive?: boolean;
}

/** One batch being dispatched: stopped or not, and the abort controllers of its running jobs. */
interface Batch {
  stopped: boolean;
  readonly running: Set<AbortController>;
}

/**
 * The embedded engine: the global cap is `GlobalSlots` (round-robin between batches under `fair`, least work first
 * under `least-work`), each batch's cap an `async-sema` semaphore, and a batch's jobs are started by one loop each.
 * A job holds, in this order, a write slot (twice the batch's cap: nodes between their start and their result file,
 * so fast agents cannot pile thousands of file writes onto the thread pool), a batch slot, then a global slot; the
 * stop is checked after each.
 */
export class InProcessDispatcher extends Dispatcher {
  private readonly logger = new Logger(InProcessDispatcher.name);
  private readonly slots: GlobalSlots;
  private readonly batches = new Map<string, Batch>();
  private handler: JobHandler | undefined;
  /** AIMD on the global limit, fed by the agent calls of this process. */
  readonly adaptive: AdaptiveLimit;

  constructor(options: InProcessDispatcherOptions) {
    super();
    this.slots = new GlobalSlots(options.capacity, options.policy ?? 'least-work');
    this.adaptive = new AdaptiveLimit(options.capacity, (n) => this.slots.setLimit(n), {
      enabled: options.adaptive ?? true,
      inFlight: () => this.slots.inUse,
    });
  }

  handle(handler: JobHandler): void {
    this.handler = handler;
  }

  async run(batch: DispatchBatch, jobs: readonly NodeJob[], hooks: BatchHooks = {}): Promise<void> {
    const handler = this.handler;
    if (!handler) throw new Error('no job handler registered: call handle() first');
    const state: Batch = { stopped: false, running: new Set() };
    this.batches.set(batch.taskId, state);
    this.slots.setWork(
      batch.taskId,
      jobs.map((job) => job.expectedMs),
    );
    const own = new SlotLimiter(batch.maxConcurrent);
    const writes = new SlotLimiter(2 * batch.maxConcurrent);
    const inflight = new Set<Promise<void>>();
    try {
      for (const job of startOrder(jobs, this.slots.policy)) {
        if (state.stopped) break;
        const writeSlot = await writes.acquire();
        const batchSlot = await own.acquire();
        if (state.stopped) {
          batchSlot.release();
          writeSlot.release();
          break;
        }
        const p: Promise<void> = this.start(handler, job, state, batchSlot, writeSlot, hooks).finally(() => {
          batchSlot.release();
          writeSlot.release();
          inflight.delete(p);
        });
        inflight.add(p);
      }
      while (inflight.size) await Promise.allSettled([...inflight]);
    } finally {
      if (this.batches.get(batch.taskId) === state) {
        this.batches.delete(batch.taskId);
        this.slots.forgetWork(batch.taskId);
      }
    }
  }

  stop(taskId: string): Promise<void> {
    const batch = this.batches.get(taskId);
    if (batch) batch.stopped = true;
    return Promise.resolve();
  }

  /** In one process, leaving a batch is stopping it. */
  release(taskId: string): Promise<void> {
    return this.stop(taskId);
  }

  /** Every running job is in this process: `scope` changes nothing. */
  abort(taskId: string, reason: Error): Promise<void> {
    for (const c of this.batches.get(taskId)?.running ?? []) c.abort(reason);
    return Promise.resolve();
  }

  setLimit(limit: number): Promise<void> {
    this.slots.setLimit(limit);
    return Promise.resolve();
  }

  state(): Promise<DispatcherState> {
    return Promise.resolve({
      policy: this.slots.policy,
      limit: this.slots.limit,
      capacity: this.slots.capacity,
      inUse: this.slots.inUse,
      waiting: this.slots.waiting,
    });
  }

  waitingFor(taskId: string): Promise<number> {
    return Promise.resolve(this.slots.waitingFor(taskId));
  }

  private async start(
    handler: JobHandler,
    job: NodeJob,
    batch: Batch,
    batchSlot: Slot,
    writeSlot: Slot,
    hooks: BatchHooks,
  ): Promise<void> {
    const globalSlot = await this.slots.acquire(job.taskId, job.expectedMs);
    if (batch.stopped) {
      globalSlot.release();
      return; // never started
    }
    const controller = new AbortController();
    batch.running.add(controller);
    let agent = true;
    const endAgent = (): void => {
      if (!agent) return;
      agent = false;
      globalSlot.release();
      batchSlot.release();
      hooks.agentEnded?.(job);
    };
    let result: NodeRunResult | undefined;
    try {
      hooks.started?.(job);
      result =
        (await handler(job, {
          signal: controller.signal,
          feedback: this.adaptive,
          releaseAgentSlots: endAgent,
          releaseWriteSlot: () => writeSlot.release(),
        })) ?? undefined;
    } catch (err) {
      this.logger.error(`job ${job.taskId}/${job.nodeId} failed: ${(err as Error).message}`);
    } finally {
      endAgent();
      batch.running.delete(controller);
    }
    try {
      await hooks.ended?.(job, result);
    } catch (err) {
      this.logger.error(`job ${job.taskId}/${job.nodeId} could not be settled: ${(err as Error).message}`);
    }
  }
}
