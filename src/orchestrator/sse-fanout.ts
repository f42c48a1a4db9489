import type { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable, Logger } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../config';
import { EventLog, replayLog, type LogReader, type TaskEventRecord } from '../session';
import { type OutputDelta, OutputDeltas } from './deltas/output-deltas';
import { wireJson } from './task-event-stream';

const logger = new Logger('SseFanout');
/**
 * A fan-out whose writes took D ms starts the next one CYCLE_FACTOR × D later at the earliest (≤ MAX_CYCLE_MS):
 * fan-outs take at most a quarter of the event loop, and what is published meanwhile goes out together.
 */
const CYCLE_FACTOR = 4;
const MAX_CYCLE_MS = 50;
/** Milliseconds of writes to clients before the event loop gets a turn (timers, I/O, the batches' work). */
const SLICE_MS = 2;
/**
 * Bytes that may wait in a client's response buffer (its socket is not taking them yet); past that it gets no more
 * fan-outs and catches up from the log once the buffer has drained, so a slow client holds at most this much here.
 */
const MAX_BUFFERED = 64 * 1024;
/** A client whose socket stays full this long (it stopped reading) is disconnected; it can resume by id. */
const STALLED_CLIENT_MS = 60_000;
/**
 * A client's delta buffer: a `task_output_delta` goes to a client only while fewer bytes than this (the delta
 * included) wait for its socket; otherwise that client loses it. Deltas so never hold more than this per client,
 * never make a client `stalled` (events still have MAX_BUFFERED - this of room), and never delay an event.
 */
export const MAX_DELTA_BACKLOG = 16 * 1024;
/** Deltas of a task that arrive within this many ms go to each client in one write. */
const DELTA_FANOUT_MS = 100;

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  Connection: 'keep-alive',
  'Cache-Control': 'private, no-cache, no-store, must-revalidate, max-age=0, no-transform',
  Pragma: 'no-cache',
  Expires: '0',
  'X-Accel-Buffering': 'no',
} as const;

const STREAM_OPEN = Buffer.from(': stream open\n\n');
const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');

/** An event as one SSE frame (`id:`, `event:`, one `data:` line), built once however many clients it goes to. */
const frames = new WeakMap<TaskEventRecord, Buffer>();
export function sseFrame(e: TaskEventRecord): Buffer {
  let frame = frames.get(e);
  if (frame === undefined) {
    frame = Buffer.from(`id: ${e.id}\nevent: ${e.type}\ndata: ${wireJson(e)}\n\n`, 'utf8');
    frames.set(e, frame);
  }
  return frame;
}

/**
 * A delta as one SSE frame: `event: task_output_delta` and its `data:`, without an `id:` — a delta is not in the
 * log, and an EventSource keeps the last id it saw, so a reconnect resumes after the last stored event.
 */
export function deltaFrame(d: OutputDelta): Buffer {
  const data = {
    type: 'task_output_delta',
    task_id: d.taskId,
    node_id: d.nodeId,
    group_id: d.groupId,
    text: d.text,
    offset: d.offset,
  };
  return Buffer.from(`event: task_output_delta\ndata: ${JSON.stringify(data)}\n\n`, 'utf8');
}

function framesOf(events: readonly TaskEventRecord[]): Buffer {
  return events.length === 1 ? sseFrame(events[0]) : Buffer.concat(events.map(sseFrame));
}

/**
 * The HTTP side of task events: every connected client of a task is served from one shared feed of pre-framed
 * bytes. A client first gets the stored events after its id, read from the log page by page as fast as it reads;
 * then it joins the task's live clients, which get the events published since the last fan-out in one write each.
 * A fan-out writes to its clients in slices of 2 ms with a turn of the event loop between them, and fan-outs are
 * paced by their own cost (one whose writes took D ms starts the next 4 × D later at the earliest, ≤ 50 ms), so many
 * watchers take at most about a quarter of the event loop from the batches. A client with more than 64 KiB waiting
 * for its socket is skipped and catches up from the log once it drains: a slow reader holds no queue here and never
 * slows the others; one that reads nothing for a minute is disconnected (it can resume by id).
 *
 * Nest's `@Sse()` writes each event to each client as its own message (an RxJS pipeline, a promise and a socket
 * write per event per client): with 1,000 watchers that cost the batch they watched 9 × its makespan. The RxJS
 * side stays: the live events come from the task's live feed on the `EventLog` (one per task, however many clients),
 * and in-process consumers keep `TaskEventStream.open()` (`EventLog.follow`).
 *
 * Replay-then-live exists once: a client's catch-up is `replayLog`, the replay half of `EventLog.follow`, and the
 * rules are the same (each event once, in id order, a gap filled from the log, the end after `session_completed` or
 * a finished task's exhausted log). What differs is the live half: `follow` queues the live events of its one
 * subscriber while it reads; here the shared rounds skip a client that reads, so its replay reads again past the
 * last event that went out in a round (`LogReader.passedBy`) — nothing published during an async page read is lost,
 * and a round sends a client only the events after its last one.
 */
@Injectable()
export class SseFanout {
  private readonly channels = new Map<string, TaskChannel>();
  /** Deltas written to clients, and deltas a client lost because its delta buffer was full, since the start. */
  readonly deltaCounts = { sent: 0, dropped: 0 };

  constructor(
    private readonly log: EventLog,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
    private readonly deltas: OutputDeltas,
  ) {}

  /**
   * Whether a client resuming after `afterId` has had everything: the task finished (asked first: a finished task's
   * log is complete) and no event is stored after that id. Its reconnect is then answered 204, which stops an
   * EventSource from reconnecting (HTML standard); a 200 that ends at once would make it reconnect forever.
   */
  async exhausted(taskId: string, afterId: number): Promise<boolean> {
    if (!(await this.log.finished(taskId))) return false;
    return (await this.log.after(taskId, afterId, 1)).length === 0;
  }

  /**
   * Answers `req` with the task's event stream after event `afterId` (the task exists: checked by the caller); with
   * `deltas`, the running nodes' `task_output_delta` events too (live only, best effort).
   */
  attach(
    taskId: string,
    afterId: number,
    req: IncomingMessage,
    res: ServerResponse,
    options: { deltas?: boolean } = {},
  ): void {
    res.writeHead(200, SSE_HEADERS);
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);
    req.socket.setTimeout(0);
    res.write(STREAM_OPEN);
    let channel = this.channels.get(taskId);
    if (!channel) {
      channel = new TaskChannel(
        taskId,
        this.log,
        this.options.keepAliveIntervalMs,
        (gone) => {
          if (this.channels.get(taskId) === gone) this.channels.delete(taskId);
        },
        this.deltas,
        this.deltaCounts,
      );
      if (channel.ended) {
        res.end(); // the service is shutting down
        return;
      }
      this.channels.set(taskId, channel);
    }
    channel.add(new SseClient(res, afterId, options.deltas === true));
  }

  /** Connected SSE clients, over all tasks. */
  get clientCount(): number {
    let count = 0;
    for (const channel of this.channels.values()) count += channel.size;
    return count;
  }
}

class SseClient {
  /** `live`: gets the fan-outs; `reading`: being sent the log; `stalled`: its socket is full. */
  state: 'live' | 'reading' | 'stalled' = 'reading';
  private stallTimer?: NodeJS.Timeout;

  constructor(
    readonly res: ServerResponse,
    /** The id of the last event written to it. */
    public last: number,
    /** It asked for `task_output_delta` events. */
    readonly deltas = false,
  ) {
    res.once('close', () => clearTimeout(this.stallTimer));
  }

  get closed(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /**
   * Writes `chunk` (events up to `last`); false when more than MAX_BUFFERED bytes wait for the socket (the client
   * is then `stalled`).
   */
  write(chunk: Buffer, last = this.last): boolean {
    this.last = last;
    this.res.write(chunk);
    if (this.res.writableLength <= MAX_BUFFERED) return true;
    this.state = 'stalled';
    this.stallTimer = setTimeout(() => this.res.destroy(), STALLED_CLIENT_MS);
    this.stallTimer.unref();
    return false;
  }

  /**
   * Writes delta frames if its delta buffer has room (at most MAX_DELTA_BACKLOG bytes waiting for its socket, these
   * included; a socket with nothing waiting takes them whatever their size); false when it lost them. Never changes
   * its state: a delta never stalls a client.
   */
  writeDelta(chunk: Buffer): boolean {
    if (this.state === 'stalled' || this.closed) return false;
    const waiting = this.res.writableLength;
    if (waiting > 0 && waiting + chunk.length > MAX_DELTA_BACKLOG) return false;
    this.res.write(chunk);
    return true;
  }

  /** Runs `resume` once the socket has drained. */
  onDrain(resume: () => void): void {
    this.res.once('drain', () => {
      clearTimeout(this.stallTimer);
      resume();
    });
  }

  end(): void {
    clearTimeout(this.stallTimer);
    if (!this.res.writableEnded) this.res.end();
  }
}

interface Round {
  events: TaskEventRecord[];
  first: number;
  last: number;
  /** The events' frames, concatenated once for all the clients that are at `first - 1`. */
  whole?: Buffer;
  clients: SseClient[];
  next: number;
  /** When it started (`performance.now()`), and how long its slices took (without the turns between them). */
  startedAt: number;
  took: number;
}

/** The clients of one task and its live feed; gone with its last client. */
class TaskChannel {
  private readonly clients = new Set<SseClient>();
  private pending: TaskEventRecord[] = [];
  private flushTimer?: NodeJS.Timeout;
  private nextFlushAt = 0;
  /** The fan-out in progress: its clients are written a slice at a time. */
  private round?: Round;
  private sliceTimer?: NodeJS.Immediate;
  private readonly feed: Subscription | undefined;
  private readonly keepAlive: NodeJS.Timeout;
  private disposed = false;
  /** The id of `session_completed` once published: a client that got it is done. */
  private endId = Infinity;
  /** The last id that went out in a round (to the clients that were live then). */
  private roundedUpTo = 0;
  /** Clients that asked for deltas, the subscription that brings them while there are any, and deltas waiting. */
  private deltaClients = 0;
  private deltaFeed: (() => void) | undefined;
  private pendingDeltas: Buffer[] = [];
  private deltaTimer?: NodeJS.Timeout;
  ended = false;

  constructor(
    private readonly taskId: string,
    private readonly log: EventLog,
    keepAliveMs: number,
    private readonly onGone: (channel: TaskChannel) => void,
    private readonly deltas: OutputDeltas,
    private readonly deltaCounts: { sent: number; dropped: number },
  ) {
    this.keepAlive = setInterval(() => this.sendKeepAlive(), keepAliveMs);
    this.keepAlive.unref();
    this.feed = log.live(taskId).subscribe({
      next: (e) => this.publish(e),
      complete: () => this.end(), // the service is shutting down: clients reconnect and resume by id
    });
  }

  get size(): number {
    return this.clients.size;
  }

  add(client: SseClient): void {
    this.clients.add(client);
    if (client.deltas && this.deltaClients++ === 0) {
      this.deltaFeed = this.deltas.subscribe(this.taskId, (d) => this.publishDelta(d));
    }
    client.res.once('close', () => {
      this.clients.delete(client);
      if (client.deltas && --this.deltaClients === 0) this.stopDeltas();
      if (this.clients.size === 0) this.dispose();
    });
    this.catchUp(client);
  }

  /** A delta for the clients that asked for them, written with the others that arrive within DELTA_FANOUT_MS. */
  private publishDelta(d: OutputDelta): void {
    this.pendingDeltas.push(deltaFrame(d));
    this.deltaTimer ??= setTimeout(() => this.flushDeltas(), DELTA_FANOUT_MS);
  }

  /** One write per client with room in its delta buffer; a client without loses these deltas (never an event). */
  private flushDeltas(): void {
    this.deltaTimer = undefined;
    const frames = this.pendingDeltas;
    this.pendingDeltas = [];
    const chunk = frames.length === 1 ? frames[0] : Buffer.concat(frames);
    for (const client of this.clients) {
      if (!client.deltas) continue;
      if (client.writeDelta(chunk)) this.deltaCounts.sent += frames.length;
      else this.deltaCounts.dropped += frames.length;
    }
  }

  private stopDeltas(): void {
    this.deltaFeed?.();
    this.deltaFeed = undefined;
    clearTimeout(this.deltaTimer);
    this.deltaTimer = undefined;
    this.pendingDeltas = [];
  }

  /** Ends every client's stream (they resume by id later) and lets go of the feed. */
  end(): void {
    this.ended = true;
    // what was published before the end still goes out, all at once
    clearImmediate(this.sliceTimer);
    this.continueRound(true);
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.startRound(true);
    for (const client of this.clients) client.end();
    this.dispose();
  }

  private publish(e: TaskEventRecord): void {
    this.pending.push(e);
    if (e.type === 'session_completed') this.endId = e.id;
    this.schedule();
  }

  private schedule(): void {
    if (this.flushTimer || this.round || this.pending.length === 0 || this.disposed) return;
    const wait = Math.max(0, this.nextFlushAt - performance.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.startRound();
    }, wait);
  }

  /** A fan-out of what was published since the last one: one write to each live client. */
  private startRound(all = false): void {
    const events = this.pending;
    if (events.length === 0) return;
    // a node's last delta comes before its task_completed (and a stream may end with these events)
    if (this.pendingDeltas.length) {
      clearTimeout(this.deltaTimer);
      this.flushDeltas();
    }
    this.pending = [];
    this.roundedUpTo = events[events.length - 1].id;
    this.round = {
      events,
      first: events[0].id,
      last: events[events.length - 1].id,
      clients: [...this.clients],
      next: 0,
      took: 0,
      startedAt: performance.now(),
    };
    this.continueRound(all);
  }

  /**
   * Writes the round to its clients for SLICE_MS (to all of them with `all`), then lets the event loop run timers
   * and I/O before the next slice: a batch's nodes wait at most one slice, not a whole fan-out. The next round
   * starts CYCLE_FACTOR × the time the slices took after this one started.
   */
  private continueRound(all = false): void {
    const round = this.round;
    if (!round) return;
    const started = performance.now();
    const count = round.clients.length;
    let now = started;
    while (round.next < count && (all || now - started < SLICE_MS)) {
      const stop = Math.min(count, round.next + 16);
      for (; round.next < stop; round.next++) this.deliver(round.clients[round.next], round);
      now = performance.now();
    }
    round.took += now - started;
    if (round.next < round.clients.length) {
      this.sliceTimer = setImmediate(() => this.continueRound());
      return;
    }
    this.round = undefined;
    this.nextFlushAt = round.startedAt + Math.min(MAX_CYCLE_MS, CYCLE_FACTOR * round.took);
    this.schedule();
  }

  private deliver(client: SseClient, round: Round): void {
    const { events, first, last } = round;
    if (client.state !== 'live' || client.closed) return;
    if (client.last >= last) {
      // it has all of these (or asked to start past them): once the task has ended, so has its stream
      if (last >= this.endId) client.end();
    } else if (client.last === first - 1) {
      this.send(client, (round.whole ??= framesOf(events)), last);
    } else if (client.last >= first) {
      // it read some of these from the log while they waited here
      this.send(client, framesOf(events.filter((e) => e.id > client.last)), last);
    } else {
      this.catchUp(client); // a gap (not expected): fill it from the log
    }
  }

  private send(client: SseClient, chunk: Buffer, last: number): void {
    const flowing = client.write(chunk, last);
    if (client.last >= this.endId) client.end();
    else if (!flowing) client.onDrain(() => this.catchUp(client));
  }

  /**
   * Sends `client` the stored events after its last one, a page at a time while its socket takes them; then it is
   * live. Ends its stream after `session_completed`, or once a finished task's log is exhausted (`replayLog`).
   */
  private catchUp(client: SseClient): void {
    client.state = 'reading';
    const reader: LogReader = {
      get last() {
        return client.last;
      },
      get done() {
        return client.closed;
      },
      take: (events) => client.write(framesOf(events), events[events.length - 1].id),
      passedBy: () => this.roundedUpTo,
    };
    replayLog(this.log, this.taskId, reader).then(
      (end) => {
        if (client.closed) return;
        if (end === 'ended') return client.end();
        // its socket is full: the rest once it drained
        if (end === 'stopped') return client.onDrain(() => this.catchUp(client));
        // caught up: no round went out since the replay's last look (rounds start from timers, not between the
        // microtasks that brought its answer here)
        client.state = 'live';
      },
      (err: unknown) => {
        // (the store is closing, or failing): this stream ends, its client resumes by id once the service is back
        logger.warn(
          `event stream of task ${this.taskId} ended: the log could not be read (${(err as Error).message})`,
        );
        client.res.destroy();
      },
    );
  }

  private sendKeepAlive(): void {
    for (const client of this.clients) {
      if (client.state === 'live' && !client.closed && !client.write(KEEP_ALIVE)) {
        client.onDrain(() => this.catchUp(client));
      }
    }
  }

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.flushTimer);
    clearImmediate(this.sliceTimer);
    clearInterval(this.keepAlive);
    this.stopDeltas();
    // (subscribing can complete at once, before `feed` is set: the log has closed)
    this.feed?.unsubscribe();
    this.onGone(this);
  }
}
