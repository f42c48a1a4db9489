import { Logger, type OnApplicationShutdown, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Observable, Subject } from 'rxjs';
import { connectRedis } from '../redis';
import { EventLog, REPLAY_PAGE } from './event-log';
import { LiveFeed } from './live-feed';
import { TaskNotFoundError } from './task.errors';
import type { EventDraft } from './task-store';
import { asTaskEvent, type TaskEvent } from './task-events';
import { isTerminal, type TaskEventRecord, type TaskStatus } from './task.types';
import { appendEvents, entryRecord, RedisSessionKeys, type StreamEntry } from './redis-session-layout';

const logger = new Logger('RedisEventLog');

export interface RedisEventLogOptions {
  /** The service's Redis (`REDIS_URL`). */
  url: string;
  /** Every key and the channel start with it (`REDIS_PREFIX`). */
  prefix: string;
  /** Connection names in `CLIENT LIST`: `<name>:events` and `<name>:events-sub` (default `canvas-batch`). */
  name?: string;
}

/** This process's live side of one watched task. */
interface Track {
  /** Live subscriptions to it here. */
  feeds: number;
  /** The highest id handed to its feeds (undefined until the first). */
  seen?: number;
  /** The stream's last id when watching began (read then): where a catch-up starts while `seen` is unknown. */
  floor?: number;
  floorRead: Promise<void>;
  /** Records that arrived and wait their turn (while the log is read to fill a gap). */
  waiting: TaskEventRecord[];
  /** The log is being read for it. */
  filling: boolean;
  /** Catch up from the stream at the next turn (the subscription was lost and is back). */
  catchUp: boolean;
  /** Local writes waiting until their records went to the feeds. */
  waiters: { id: number; resolve: () => void }[];
}

/**
 * `EventLog` on Redis, for the distributed engine: any process appends, reads and follows any task's log.
 *
 * Stored: one stream per task, event n at the stream id `<n>-0`, the id from a counter in the task's hash, both
 * in one script (`redis-session-layout.ts`): gap-free and strictly increasing however many processes append.
 * Live: the script that appends also PUBLISHes the records on the prefix's channel; each instance holds one
 * subscriber connection and feeds its process-local `LiveFeed`s from it. Its own writes go to its feeds at once
 * (so they are published before the write resolves, as the port asks) and their echo is ignored. For a watched
 * task, records reach the feeds once each and in id order from where its log ended when watching began: a gap
 * (another process's events still on their way, or events stored and never published) is read from the stream
 * first. When the subscriber reconnects (Redis restarted, connection dropped), pub/sub has dropped what was
 * published meanwhile: each watched task catches up from its stream, so `follow` loses nothing. (`all()`
 * observers get what arrives, not that catch-up, for tasks nobody here watches; and they see every process's
 * events, not only this one's.)
 *
 * Owns two connections (commands, shared with `RedisTaskStore`, and the subscriber); `shutdown()` quits them.
 */
export class RedisEventLog extends EventLog implements OnModuleInit, OnModuleDestroy, OnApplicationShutdown {
  /** The command connection (`RedisTaskStore` runs its scripts on it). */
  readonly redis: Redis;
  readonly keys: RedisSessionKeys;
  /** Marks this instance's messages on the channel (its own writes reached its feeds already). */
  readonly origin = randomUUID();
  private readonly subscriber: Redis;
  private readonly feed = new LiveFeed();
  private readonly local = new Subject<TaskEvent>();
  private readonly tracks = new Map<string, Track>();
  /** Settles once the channel is subscribed: a read after it sees, live, every event stored after it. */
  private readonly subscribed: Promise<void>;
  private connectedOnce = false;
  private closed = false;
  private quitting?: Promise<void>;

  constructor(options: RedisEventLogOptions) {
    super();
    const name = options.name ?? 'canvas-batch';
    this.keys = new RedisSessionKeys(options.prefix);
    this.redis = connectRedis(options.url, `${name}:events`);
    this.subscriber = connectRedis(options.url, `${name}:events-sub`);
    for (const [role, connection] of [
      ['commands', this.redis],
      ['subscriber', this.subscriber],
    ] as const) {
      let reported = false;
      connection.on('error', (err: Error) => {
        // once per outage: ioredis retries every second while Redis is away
        if (!reported) logger.warn(`Redis ${role} connection: ${err.message} (reconnecting)`);
        reported = true;
      });
      connection.on('ready', () => (reported = false));
    }
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.keys.channel) this.receive(message);
    });
    this.subscriber.on('ready', () => {
      if (this.connectedOnce) void this.resync();
      this.connectedOnce = true;
    });
    this.subscribed = this.subscriber.subscribe(this.keys.channel).then(
      // feeds joined before: what was published until now did not reach them
      () => this.catchUpAll(),
      () => undefined, // closed before it connected
    );
  }

  /**
   * Resolves once the channel is subscribed: from then on every event any process publishes reaches this process's
   * feeds. The log's reads and appends wait for it (a read after it misses nothing live); Nest awaits it at start.
   */
  ready(): Promise<void> {
    return this.subscribed;
  }

  onModuleInit(): Promise<void> {
    return this.subscribed;
  }

  async append(taskId: string, drafts: readonly EventDraft[]): Promise<TaskEvent[]> {
    await this.subscribed;
    const stored = await appendEvents(this.redis, this.keys, taskId, drafts, this.keys.channel, this.origin);
    if (!stored) throw new TaskNotFoundError(taskId);
    await this.deliver(stored);
    return this.storedHere(stored);
  }

  /**
   * Stores `drafts` as the task's next events without publishing them (all or none), as a store's operation would
   * that publishes later: for tests. Throws `TaskNotFoundError` for an unknown task.
   */
  async insert(taskId: string, drafts: readonly EventDraft[]): Promise<TaskEventRecord[]> {
    await this.subscribed;
    const stored = await appendEvents(this.redis, this.keys, taskId, drafts, '', this.origin);
    if (!stored) throw new TaskNotFoundError(taskId);
    return stored;
  }

  async after(taskId: string, afterId: number, limit = Infinity): Promise<TaskEvent[]> {
    await this.subscribed;
    if (limit <= 0) return [];
    return (await this.range(taskId, afterId, Infinity, limit)).map(asTaskEvent);
  }

  /**
   * Hands `records` to this process's feeds now (ids already handed out are skipped). The scripts that stored them
   * published them on the channel already, for every other process: nothing more goes to Redis.
   */
  publish(records: readonly TaskEventRecord[]): void {
    void this.deliver(records);
    this.storedHere(records);
  }

  /** Only this process's writes: every process counts its own (metrics), none another's. */
  override stored(): Observable<TaskEvent> {
    return this.local.asObservable();
  }

  private storedHere(records: readonly TaskEventRecord[]): TaskEvent[] {
    const events = records.map(asTaskEvent);
    for (const e of events) this.local.next(e);
    return events;
  }

  /**
   * `publish`, resolved once the records went to the feeds (at once, unless a gap before them is being read from
   * the log): `RedisTaskStore` resolves its writes after it.
   */
  deliver(records: readonly TaskEventRecord[]): Promise<void> {
    const byTask = new Map<string, TaskEventRecord[]>();
    for (const r of records) {
      const list = byTask.get(r.taskId);
      if (list) list.push(r);
      else byTask.set(r.taskId, [r]);
    }
    return Promise.all([...byTask].map(([taskId, list]) => this.ingest(taskId, list))).then(() => undefined);
  }

  live(taskId: string): Observable<TaskEvent> {
    return new Observable<TaskEvent>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      this.watch(taskId);
      const sub = this.feed.forTask(taskId).subscribe(subscriber);
      return () => {
        sub.unsubscribe();
        this.unwatch(taskId);
      };
    });
  }

  all(): Observable<TaskEvent> {
    return this.feed.all();
  }

  async finished(taskId: string): Promise<boolean> {
    // a task that is gone (deleted after its retention) will have no more events either
    const status = (await this.redis.hget(this.keys.task(taskId), 'status')) as TaskStatus | null;
    return isTerminal(status ?? 'failed');
  }

  get liveFeedCount(): number {
    return this.feed.count;
  }

  close(): number {
    this.closed = true;
    const tracks = [...this.tracks.values()];
    this.tracks.clear();
    for (const track of tracks) track.waiters.forEach((w) => w.resolve());
    return this.feed.close();
  }

  /** Ends the live feeds and quits both connections (waiting for the replies of commands sent). */
  shutdown(): Promise<void> {
    this.close();
    this.quitting ??= Promise.all([this.subscriber, this.redis].map(quit)).then(() => undefined);
    return this.quitting;
  }

  onModuleDestroy(): void {
    this.close();
  }

  onApplicationShutdown(): Promise<void> {
    return this.shutdown();
  }

  /** A message on the channel: another process's records (this instance's own reached its feeds already). */
  private receive(message: string): void {
    const cut = message.indexOf('\n');
    if (cut < 0 || message.slice(0, cut) === this.origin) return;
    try {
      const records = JSON.parse(message.slice(cut + 1)) as TaskEventRecord[];
      if (records.length) void this.deliver(records);
    } catch (err) {
      logger.warn(`a message on ${this.keys.channel} could not be read: ${(err as Error).message}`);
    }
  }

  /** The subscriber is back: once the channel is subscribed again, every watched task catches up from its log. */
  private async resync(): Promise<void> {
    try {
      await this.subscriber.subscribe(this.keys.channel);
    } catch {
      return; // closing
    }
    this.catchUpAll();
  }

  private catchUpAll(): void {
    for (const [taskId, track] of this.tracks) {
      track.catchUp = true;
      this.drain(taskId, track);
    }
  }

  private watch(taskId: string): void {
    const known = this.tracks.get(taskId);
    if (known) {
      known.feeds++;
      return;
    }
    const track: Track = {
      feeds: 1,
      floorRead: Promise.resolve(),
      waiting: [],
      filling: false,
      catchUp: false,
      waiters: [],
    };
    // on the command connection before any read a follower makes after joining: its log read starts at or after it
    track.floorRead = this.redis.xrevrange(this.keys.events(taskId), '+', '-', 'COUNT', 1).then(
      (entries) => {
        const [last] = entries as StreamEntry[];
        track.floor = last ? entryRecord(last).id : 0;
      },
      () => undefined,
    );
    this.tracks.set(taskId, track);
  }

  private unwatch(taskId: string): void {
    const track = this.tracks.get(taskId);
    if (!track || --track.feeds > 0) return;
    this.tracks.delete(taskId);
    // what waited here still goes to the observers of every task
    const rest = track.waiting.filter((r) => track.seen === undefined || r.id > track.seen);
    if (rest.length) this.feed.publish(rest.sort(byId));
    track.waiters.forEach((w) => w.resolve());
  }

  /** Records of one task arrived (own writes, the channel): to its feeds, in order. Never rejects. */
  private ingest(taskId: string, records: TaskEventRecord[]): Promise<void> {
    const track = this.tracks.get(taskId);
    if (!track) {
      this.feed.publish(records);
      return Promise.resolve();
    }
    track.waiting.push(...records);
    this.drain(taskId, track);
    const last = Math.max(...records.map((r) => r.id));
    if ((track.seen !== undefined && track.seen >= last) || this.tracks.get(taskId) !== track) {
      return Promise.resolve();
    }
    return new Promise((resolve) => track.waiters.push({ id: last, resolve }));
  }

  /** Hands the waiting records out in id order, each once; stops at a gap to read it from the log first. */
  private drain(taskId: string, track: Track): void {
    if (track.filling || this.tracks.get(taskId) !== track) return;
    if (track.catchUp) {
      track.catchUp = false;
      this.fill(taskId, track, track.seen, Infinity);
      return;
    }
    const waiting = track.waiting.sort(byId);
    track.waiting = [];
    const out: TaskEventRecord[] = [];
    let seen = track.seen;
    for (let i = 0; i < waiting.length; i++) {
      const r = waiting[i];
      if (seen !== undefined && r.id <= seen) continue;
      const base = seen ?? track.floor;
      if (base !== undefined && r.id > base + 1) {
        // another process's events still on their way, or stored and never published: read them first
        track.waiting = waiting.slice(i);
        this.handOut(track, out);
        this.fill(taskId, track, base, r.id - 1);
        return;
      }
      out.push(r);
      seen = r.id;
    }
    this.handOut(track, out);
  }

  /**
   * Reads the task's log after `from` up to `upTo` into its feeds, then goes on with what waited meanwhile. Without
   * `from` (nothing handed out yet) it starts where the log ended when watching began, or, not knowing that, hands
   * out the last stored event alone (a follower behind it fills the rest from the log).
   */
  private fill(taskId: string, track: Track, after: number | undefined, upTo: number): void {
    track.filling = true;
    const current = (): boolean => this.tracks.get(taskId) === track;
    void (async () => {
      let from = after;
      try {
        if (from === undefined) {
          await track.floorRead;
          if (!current()) return;
          from = track.floor;
        }
        if (from === undefined) {
          const [last] = (await this.redis.xrevrange(this.keys.events(taskId), '+', '-', 'COUNT', 1)) as
            StreamEntry[] | [];
          if (!current()) return;
          if (last) this.handOut(track, [entryRecord(last)]);
        } else {
          for (let cursor = from; ;) {
            const page = await this.range(taskId, cursor, upTo, REPLAY_PAGE);
            if (!current()) return;
            this.handOut(track, page);
            if (page.length < REPLAY_PAGE) break;
            cursor = page[page.length - 1].id;
          }
        }
      } catch (err) {
        if (!current()) return;
        // the gap stays: a follower fills it from the log itself
        logger.warn(`the log of task ${taskId} could not be read to fill a gap: ${(err as Error).message}`);
        if (upTo !== Infinity) track.seen = Math.max(track.seen ?? 0, upTo);
      }
      track.filling = false;
      this.drain(taskId, track);
    })();
  }

  private handOut(track: Track, records: readonly TaskEventRecord[]): void {
    const seen = track.seen;
    const fresh = seen === undefined ? records : records.filter((r) => r.id > seen);
    if (!fresh.length) return;
    const last = fresh[fresh.length - 1].id;
    track.seen = last;
    this.feed.publish(fresh);
    if (track.waiters.length) {
      const ready = track.waiters.filter((w) => w.id <= last);
      track.waiters = track.waiters.filter((w) => w.id > last);
      ready.forEach((w) => w.resolve());
    }
  }

  /** Stored records with `afterId < id <= upTo`, at most `limit`. */
  private async range(
    taskId: string,
    afterId: number,
    upTo: number,
    limit: number,
  ): Promise<TaskEventRecord[]> {
    const start = afterId >= 0 ? `(${Math.floor(afterId)}-0` : '-';
    const end = upTo === Infinity ? '+' : `${Math.floor(upTo)}-0`;
    const stream = this.keys.events(taskId);
    const entries = (
      limit === Infinity
        ? await this.redis.xrange(stream, start, end)
        : await this.redis.xrange(stream, start, end, 'COUNT', limit)
    ) as StreamEntry[];
    return entries.map(entryRecord);
  }
}

/** QUIT (after the replies of commands sent), or just the socket when that fails. */
async function quit(connection: Redis): Promise<void> {
  if (connection.status === 'end') return;
  try {
    await connection.quit();
  } catch {
    connection.disconnect();
  }
}

function byId(a: TaskEventRecord, b: TaskEventRecord): number {
  return a.id - b.id;
}
