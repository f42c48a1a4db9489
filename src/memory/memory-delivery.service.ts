import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { failpoint } from '../common';
import { type MemoryDeliveryOptions, resolveMemoryDelivery } from '../config';
import { type MemoryEvent, MemoryOutbox } from './memory-outbox';
import { InjectMemoryOptions, type MemoryModuleOptions } from './memory.module-definition';
import { MemoryStore, safeString } from './memory-store';

export type MemoryDeliveryState = 'starting' | 'idle' | 'delivering' | 'retrying' | 'stopped';

/** The figures of `GET /memory/status` (and of metrics): outbox counts plus the drain loop's own state. */
export interface MemoryDeliveryStatus {
  /** `neo4j`, `embedded`, or a host store's kind. */
  store: string;
  /** Where events go (no credentials). */
  target: string;
  state: MemoryDeliveryState;
  /** Events in the outbox not yet confirmed by the store. */
  pending: number;
  /** Events the store confirmed (all time, from the outbox). */
  delivered: number;
  /** Failed delivery attempts since this process started (one attempt = one batch). */
  failedAttempts: number;
  /** The last delivery error (credentials redacted), and when; kept after a recovery. */
  lastError: string | null;
  lastErrorAt: string | null;
  /** Age of the oldest pending event, or `null` when nothing is pending. */
  oldestPendingAgeSeconds: number | null;
  lastDeliveryAt: string | null;
  /** While retrying: when the next attempt is due. */
  nextRetryAt: string | null;
}

/**
 * Delay before retry number `failures` (≥ 1): exponential from `baseMs`, capped at `maxMs`, with "equal jitter"
 * (between half and all of it) so that many services coming back at once do not retry in lockstep.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * Math.min(Math.max(random(), 0), 1));
}

/**
 * The drain loop: delivers the outbox to the `MemoryStore` in the batches it claims (oldest first; an outbox shared
 * by several processes' loops gives each batch to one of them), and marks each batch delivered (in order, in one
 * transaction) only after the store confirmed all of it. A failure (error, timeout, an answer that is not the
 * expected receipt) leaves the batch pending and backs off; the loop resumes by itself. Delivery is
 * at-least-once and the stores are idempotent by event id, so each event ends up stored once.
 *
 * Never on a batch's path: the listener only appends to the outbox and calls `notify()`. Shutdown makes one bounded
 * final attempt; whatever is left stays in the outbox for the next start.
 */
@Injectable()
export class MemoryDeliveryService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('MemoryDelivery');
  private readonly options: Required<MemoryDeliveryOptions>;
  private readonly kind: string;
  private readonly target: string;
  private readonly secrets: string[];
  private loop: Promise<void> | undefined;
  private state: MemoryDeliveryState = 'starting';
  private stopping = false;
  private deadlineAt = Number.POSITIVE_INFINITY;
  /** Ends the current pause early; `wakeOnNotify` says whether a new event may (not during a backoff). */
  private wake: (() => void) | undefined;
  private wakeOnNotify = false;
  /** Gives up on the attempt in flight (shutdown deadline). */
  private abandonAttempt: ((reason: Error) => void) | undefined;
  private consecutiveFailures = 0;
  private failedAttempts = 0;
  private lastError: string | null = null;
  private lastErrorAt: string | null = null;
  private lastDeliveryAt: string | null = null;
  private nextRetryAt: number | null = null;

  constructor(
    private readonly outbox: MemoryOutbox,
    private readonly store: MemoryStore,
    @InjectMemoryOptions() options: MemoryModuleOptions,
  ) {
    this.options = resolveMemoryDelivery(options.memoryDelivery);
    this.kind = safeString(() => store.kind, 'custom');
    this.target = safeString(() => store.target, this.kind);
    this.secrets = [options.neo4j?.password ?? ''].filter((s) => s.length >= 4);
  }

  onApplicationBootstrap(): void {
    this.loop ??= this.run();
  }

  /** A new event is in the outbox: an idle loop looks now (a loop backing off keeps its pace). */
  notify(): void {
    if (this.wakeOnNotify) this.wake?.();
  }

  /** Rejects when the outbox cannot be read. */
  async status(): Promise<MemoryDeliveryStatus> {
    const [{ pending, delivered }, oldest] = await Promise.all([
      this.outbox.counts(),
      this.outbox.oldestPendingCreatedAt(),
    ]);
    const oldestMs = oldest === null ? NaN : Date.parse(oldest);
    return {
      store: this.kind,
      target: this.target,
      state: this.state,
      pending,
      delivered,
      failedAttempts: this.failedAttempts,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      oldestPendingAgeSeconds:
        oldest === null ? null : Number.isFinite(oldestMs) ? Math.max(0, (Date.now() - oldestMs) / 1000) : 0,
      lastDeliveryAt: this.lastDeliveryAt,
      nextRetryAt: this.nextRetryAt === null ? null : new Date(this.nextRetryAt).toISOString(),
    };
  }

  /**
   * Before the database and the driver close: stop the loop, after one final attempt bounded by
   * `shutdownAttemptMs` (an attempt in flight is given up at that bound). Never throws.
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const bound = this.options.shutdownAttemptMs;
    this.deadlineAt = Date.now() + bound;
    const deadline = setTimeout(
      () => this.abandonAttempt?.(new Error(`shutdown: no answer within the final attempt's ${bound} ms`)),
      bound,
    );
    this.wake?.();
    try {
      await this.loop;
    } finally {
      clearTimeout(deadline);
      this.state = 'stopped';
    }
    const pending = await this.outbox.counts().then(
      (c) => c.pending,
      () => -1,
    );
    if (pending > 0) {
      this.logger.warn(
        `${pending} memory events stay in the outbox; they are delivered after the next start`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------------------------

  /** The loop itself: never rejects. */
  private async run(): Promise<void> {
    await this.announce();
    while (!(this.stopping && Date.now() >= this.deadlineAt)) {
      let batch: MemoryEvent[];
      try {
        batch = await this.outbox.claimBatch(this.options.batchSize);
      } catch (err) {
        if (!(await this.fail(err, 0))) break;
        await this.backOff();
        continue;
      }
      if (batch.length === 0) {
        if (this.stopping) break;
        this.state = 'idle';
        await this.pause(this.options.idlePollMs, true);
        await this.pause(this.options.lingerMs, false);
        continue;
      }
      this.state = 'delivering';
      if (await this.attempt(batch)) {
        if (batch.length < this.options.batchSize) await this.pause(this.options.lingerMs, false);
        continue;
      }
      // a failed final attempt: the rest waits for the next start
      if (this.stopping) break;
      await this.backOff();
    }
    this.state = 'stopped';
  }

  /** The start-up check: one clear log line saying where memory goes, or that the store is unreachable. */
  private async announce(): Promise<void> {
    try {
      const description = await this.bounded('start-up check', () => this.store.prepare());
      const { pending } = await this.outbox.counts();
      this.logger.log(
        `learning memory goes to ${this.redact(safeString(() => String(description), this.target))}` +
          (pending > 0 ? `; delivering ${pending} pending events` : ''),
      );
    } catch (err) {
      const message = this.describe(err);
      this.lastError = message;
      this.lastErrorAt = new Date().toISOString();
      this.logger.warn(
        `learning memory store unreachable at start-up (${this.target}): ${message}. The service runs on; ` +
          'events wait in the outbox and are delivered once the store is reachable.',
      );
    }
  }

  /** Delivers one batch; true once the store confirmed it and the outbox marked it delivered. */
  private async attempt(batch: MemoryEvent[]): Promise<boolean> {
    const ids = batch.map((e) => e.eventId);
    try {
      const receipt: unknown = await this.bounded('delivery', (signal) => this.store.deliver(batch, signal));
      if (!isReceiptFor(receipt, batch.length)) {
        throw new Error(`the store answered ${preview(receipt)} instead of { stored: ${batch.length} }`);
      }
      // crash tests: the store holds the batch, the outbox does not know yet (redelivered after the restart)
      failpoint('memory.before-mark');
      await this.outbox.markDelivered(ids, new Date().toISOString());
      if (this.consecutiveFailures > 0) {
        this.logger.log(
          `learning memory store reachable again after ${this.consecutiveFailures} failed attempts: delivering`,
        );
      }
      this.consecutiveFailures = 0;
      this.lastDeliveryAt = new Date().toISOString();
      return true;
    } catch (err) {
      await this.fail(err, batch.length, ids);
      return false;
    }
  }

  /** Counts and records a failure; returns whether the loop should go on. */
  private async fail(err: unknown, events: number, ids: string[] = []): Promise<boolean> {
    this.consecutiveFailures++;
    this.failedAttempts++;
    const message = this.describe(err);
    this.lastError = message;
    this.lastErrorAt = new Date().toISOString();
    if (ids.length) await this.outbox.recordFailure(ids, message).catch(() => undefined);
    const line = `learning memory delivery to ${this.target} failed (${events} events stay pending): ${message}`;
    // one warning per outage, not one per retry
    if (this.consecutiveFailures === 1) this.logger.warn(`${line}; retrying with backoff`);
    else this.logger.debug(`${line} (attempt ${this.consecutiveFailures})`);
    return !this.stopping;
  }

  private async backOff(): Promise<void> {
    this.state = 'retrying';
    const delay = backoffDelay(
      this.consecutiveFailures,
      this.options.retryBaseMs,
      this.options.retryMaxMs,
      Math.random,
    );
    this.nextRetryAt = Date.now() + delay;
    await this.pause(delay, false);
    this.nextRetryAt = null;
  }

  /** Waits `ms`, or less when woken (by shutdown, or by `notify()` when `onNotify`). */
  private pause(ms: number, onNotify: boolean): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === done) {
          this.wake = undefined;
          this.wakeOnNotify = false;
        }
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
      this.wakeOnNotify = onNotify;
    });
  }

  /**
   * Runs a store call with a bound: `attemptTimeoutMs`, or less once shutting down. A call that does not settle in
   * time is given up (its signal aborted); its late outcome is observed and dropped, never left unhandled.
   */
  private bounded<T>(what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ms = Math.max(0, Math.min(this.options.attemptTimeoutMs, this.deadlineAt - Date.now()));
    const controller = new AbortController();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (this.abandonAttempt === giveUp) this.abandonAttempt = undefined;
        fn();
      };
      const giveUp = (reason: Error): void =>
        settle(() => {
          controller.abort(reason);
          reject(reason);
        });
      const timer = setTimeout(() => giveUp(new Error(`${what}: no answer within ${ms} ms`)), ms);
      this.abandonAttempt = giveUp;
      let result: Promise<T>;
      try {
        result = Promise.resolve(call(controller.signal));
      } catch (err) {
        result = Promise.reject(err instanceof Error ? err : new Error(this.describe(err)));
      }
      result.then(
        (value) => settle(() => resolve(value)),
        (err: unknown) => settle(() => reject(err instanceof Error ? err : new Error(this.describe(err)))),
      );
    });
  }

  /** A message for logs and the status route: an Error's message or a short preview, credentials redacted. */
  private describe(err: unknown): string {
    const raw = safeString(() => {
      // duck-typed: an error from another realm (a native addon, a VM context) is not `instanceof Error` here
      const e = err as { message?: unknown; name?: unknown } | null;
      if (typeof e === 'object' && e !== null && typeof e.message === 'string') {
        return e.message || String(e.name);
      }
      return preview(err);
    }, 'unknown error');
    return this.redact(raw.replace(/\s+/g, ' ').trim()).slice(0, 500);
  }

  private redact(text: string): string {
    return this.secrets.reduce((t, s) => t.split(s).join('[redacted]'), text);
  }
}

function isReceiptFor(receipt: unknown, count: number): boolean {
  return (
    typeof receipt === 'object' && receipt !== null && (receipt as { stored?: unknown }).stored === count
  );
}

function preview(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 200));
  try {
    const json = JSON.stringify(value) as string | undefined;
    return (json ?? typeof value).slice(0, 200);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
