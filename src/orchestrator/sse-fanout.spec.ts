import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolveOptions } from '../config';
import { InMemoryEventLog, type TaskEventRecord, type TaskStatus } from '../session';
import { LocalOutputDeltas } from './deltas/output-deltas';
import { deltaFrame, MAX_DELTA_BACKLOG, SseFanout, sseFrame } from './sse-fanout';

const TASK = 'task-1';

/** The real `setImmediate` (the tests fake timers): a turn of the event loop for the log's async reads. */
const realSetImmediate = setImmediate;
/** Lets the log's (async) reads and what they trigger run; timers stay where they are. */
const settle = async (): Promise<void> => {
  for (let turn = 0; turn < 20; turn++) await new Promise((r) => realSetImmediate(r));
};

/** A response that records what it was sent; `full` makes its writes report a full socket. */
class ResponseDouble extends EventEmitter {
  chunks: string[] = [];
  headers?: Record<string, string>;
  writableEnded = false;
  destroyed = false;
  full = false;

  writeHead(status: number, headers: Record<string, string>): this {
    this.headers = headers;
    return this;
  }

  write(chunk: Buffer): boolean {
    this.chunks.push(chunk.toString('utf8'));
    return !this.full;
  }

  /** Bytes waiting for the socket: none, or more than a client may hold when `full`. */
  get writableLength(): number {
    return this.full ? 1 << 20 : this.buffered;
  }

  buffered = 0;

  end(): void {
    this.writableEnded = true;
    this.emit('close');
  }

  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }

  /** The event ids it received, in order. */
  get ids(): number[] {
    return [...this.chunks.join('').matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  }

  asResponse(): ServerResponse {
    return this as unknown as ServerResponse;
  }
}

const request = {
  socket: { setNoDelay: jest.fn(), setKeepAlive: jest.fn(), setTimeout: jest.fn() },
} as unknown as IncomingMessage;

describe('SseFanout', () => {
  let log: InMemoryEventLog;
  let status: TaskStatus;
  /** Log reads so far. */
  let reads: jest.SpyInstance;
  let fanout: SseFanout;
  let deltas: LocalOutputDeltas;
  /** Stores an event without publishing it. */
  const append = (type: string, data: Record<string, unknown> = {}): TaskEventRecord =>
    log.insert(TASK, [{ type, timestamp: '2026-11-27T00:00:00.000Z', data }])[0];
  const publish = (type: string, data: Record<string, unknown> = {}): TaskEventRecord => {
    const e = append(type, data);
    log.publish([e]);
    return e;
  };
  /** A client after `after`, once its replay has run. */
  const connect = async (after = 0, options: { deltas?: boolean } = {}): Promise<ResponseDouble> => {
    const res = new ResponseDouble();
    fanout.attach(TASK, after, request, res.asResponse(), options);
    await settle();
    return res;
  };
  const delta = (text: string, offset = 0) => ({ taskId: TASK, nodeId: 'n1', groupId: 'g', text, offset });
  /** The deltas a client got: its `task_output_delta` frames' data. */
  const deltasOf = (res: ResponseDouble): Array<Record<string, unknown>> =>
    [...res.chunks.join('').matchAll(/^event: task_output_delta\ndata: (.*)$/gm)].map(
      (m) => JSON.parse(m[1]) as Record<string, unknown>,
    );

  beforeEach(() => {
    jest.useFakeTimers();
    status = 'running';
    log = new InMemoryEventLog({ taskStatus: () => Promise.resolve(status) });
    reads = jest.spyOn(log, 'after');
    deltas = new LocalOutputDeltas();
    fanout = new SseFanout(
      log,
      resolveOptions({ vaultRoot: '/v', dataDir: '/d', keepAliveIntervalMs: 1_000 }),
      deltas,
    );
  });
  afterEach(() => {
    log.close();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('frames an event once: id, event name and its wire JSON on one data line', () => {
    const e = append('task_completed', { node_id: 'n1', text: 'line one\nline two' });
    const frame = sseFrame(e);
    expect(sseFrame(e)).toBe(frame);
    const lines = frame.toString('utf8').split('\n');
    expect(lines.slice(0, 2)).toEqual(['id: 1', 'event: task_completed']);
    expect(JSON.parse(lines[2].slice('data: '.length))).toEqual({
      type: 'task_completed',
      task_id: TASK,
      timestamp: e.timestamp,
      data: { node_id: 'n1', text: 'line one\nline two' },
    });
    expect(lines.slice(3)).toEqual(['', '']);
  });

  it('opens with SSE headers and a comment, replays the log after the id, then sends live events', async () => {
    append('progress_update');
    append('task_completed');
    append('task_completed');
    const res = await connect(1);
    expect(res.headers).toMatchObject({ 'Content-Type': 'text/event-stream', 'X-Accel-Buffering': 'no' });
    expect(res.headers?.['Cache-Control']).toMatch(/no-cache.*no-transform/);
    expect(res.chunks[0]).toBe(': stream open\n\n');
    expect(res.ids).toEqual([2, 3]);
    publish('task_failed');
    expect(res.ids).toEqual([2, 3]); // fanned out on the next timer turn, not inside publish
    jest.advanceTimersByTime(1);
    expect(res.ids).toEqual([2, 3, 4]);
    expect(fanout.clientCount).toBe(1);
  });

  it('writes what was published in one turn to each client in one write, the same bytes to all', async () => {
    const clients = [await connect(), await connect(), await connect()];
    const before = clients.map((c) => c.chunks.length);
    for (let i = 0; i < 5; i++) publish('task_completed', { i });
    jest.advanceTimersByTime(1);
    clients.forEach((c, i) => {
      expect(c.chunks.length).toBe(before[i] + 1);
      expect(c.ids).toEqual([1, 2, 3, 4, 5]);
    });
    expect(new Set(clients.map((c) => c.chunks.at(-1))).size).toBe(1);
  });

  it('writes to many clients in slices of 2 ms, letting the event loop run in between', async () => {
    let clock = 1_000;
    const now = jest.spyOn(performance, 'now').mockImplementation(() => clock);
    const clients = await Promise.all(
      Array.from({ length: 150 }, async () => {
        const c = await connect();
        const write = c.write.bind(c);
        jest.spyOn(c, 'write').mockImplementation((chunk: Buffer) => {
          clock += 0.05; // a socket write "takes" 50 µs: 40 of them fill a slice (checked every 16)
          return write(chunk);
        });
        return c;
      }),
    );
    const got = () => clients.filter((c) => c.ids.length === 1).length;
    publish('task_completed');
    jest.advanceTimersToNextTimer(); // the fan-out's first slice
    expect(got()).toBe(48);
    publish('task_completed'); // waits for this fan-out to finish
    jest.advanceTimersToNextTimer();
    expect(got()).toBe(96);
    jest.advanceTimersToNextTimer();
    jest.advanceTimersToNextTimer();
    expect(got()).toBe(150);
    jest.advanceTimersByTime(100);
    for (const c of clients) expect(c.ids).toEqual([1, 2]);
    now.mockRestore();
  });

  it('finishes a fan-out in progress at once when the log closes', async () => {
    const clients = await Promise.all(Array.from({ length: 100 }, () => connect()));
    publish('task_completed');
    jest.advanceTimersToNextTimer();
    publish('task_completed');
    log.close();
    for (const c of clients) {
      expect(c.ids).toEqual([1, 2]);
      expect(c.writableEnded).toBe(true);
    }
  });

  it('paces fan-outs by their own cost, so what arrives meanwhile goes out together', async () => {
    const res = await connect();
    const now = jest.spyOn(performance, 'now');
    let clock = 1_000;
    now.mockImplementation(() => clock);
    const write = res.write.bind(res);
    jest.spyOn(res, 'write').mockImplementation((chunk: Buffer) => {
      clock += 10; // this fan-out "takes" 10 ms: the next one starts 40 ms after it did
      return write(chunk);
    });
    publish('task_completed');
    jest.advanceTimersByTime(1);
    expect(res.ids).toEqual([1]);
    publish('task_completed');
    publish('task_completed');
    jest.advanceTimersByTime(20);
    expect(res.ids).toEqual([1]);
    jest.advanceTimersByTime(15);
    expect(res.ids).toEqual([1, 2, 3]);
    expect(res.chunks.filter((c) => c.startsWith('id:'))).toHaveLength(2);
    now.mockRestore();
  });

  it('ends every stream after session_completed, live or replayed, and forgets the task with its last client', async () => {
    const live = await connect();
    publish('task_completed');
    publish('session_completed', { status: 'completed' });
    jest.advanceTimersByTime(1);
    expect(live.ids).toEqual([1, 2]);
    expect(live.writableEnded).toBe(true);
    expect(fanout.clientCount).toBe(0);
    status = 'completed';
    const late = await connect();
    expect(late.ids).toEqual([1, 2]);
    expect(late.writableEnded).toBe(true);
    const pastTheEnd = await connect(2);
    expect(pastTheEnd.ids).toEqual([]);
    expect(pastTheEnd.writableEnded).toBe(true);
  });

  it('skips a client whose socket is full; once it drains it catches up from the log, then is live again', async () => {
    const slow = await connect();
    const fast = await connect();
    slow.full = true;
    publish('task_completed');
    jest.advanceTimersByTime(1);
    expect(slow.ids).toEqual([1]); // the write that filled it
    for (let i = 0; i < 3; i++) {
      publish('task_completed');
      jest.advanceTimersByTime(100);
    }
    jest.advanceTimersByTime(15_000); // and no keep-alive either while it is full
    expect(slow.ids).toEqual([1]);
    expect(slow.chunks.some((c) => c.includes('keep-alive'))).toBe(false);
    expect(fast.ids).toEqual([1, 2, 3, 4]);
    expect(fast.chunks.filter((c) => c === ': keep-alive\n\n').length).toBeGreaterThanOrEqual(15);
    slow.full = false;
    const before = reads.mock.calls.length;
    slow.emit('drain');
    await settle();
    expect(reads.mock.calls.length).toBe(before + 1);
    expect(slow.ids).toEqual([1, 2, 3, 4]);
    publish('task_completed');
    jest.advanceTimersByTime(100);
    expect(slow.ids).toEqual([1, 2, 3, 4, 5]);
    expect(fast.ids).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps writing to a client with up to 64 KiB waiting for its socket; past that it waits for the drain', async () => {
    const res = await connect();
    res.buffered = 64 * 1024;
    publish('task_completed');
    jest.advanceTimersByTime(1);
    publish('task_completed');
    jest.advanceTimersByTime(100);
    expect(res.ids).toEqual([1, 2]);
    res.buffered = 64 * 1024 + 1;
    publish('task_completed');
    jest.advanceTimersByTime(100);
    publish('task_completed');
    jest.advanceTimersByTime(100);
    expect(res.ids).toEqual([1, 2, 3]);
    res.buffered = 0;
    res.emit('drain');
    await settle();
    expect(res.ids).toEqual([1, 2, 3, 4]);
  });

  it('replays a long log a page at a time, waiting for the client to read each', async () => {
    for (let i = 0; i < 2_500; i++) append('task_completed');
    const res = await connect();
    res.full = true;
    const reader = new ResponseDouble();
    reader.full = true;
    fanout.attach(TASK, 0, request, reader.asResponse());
    await settle();
    expect(reader.ids).toHaveLength(1_000);
    reader.emit('drain');
    await settle();
    expect(reader.ids).toHaveLength(2_000);
    reader.full = false;
    reader.emit('drain');
    await settle();
    expect(reader.ids).toEqual(Array.from({ length: 2_500 }, (_, i) => i + 1));
  });

  it('disconnects a client that stops reading for a minute; the others carry on', async () => {
    const stuck = await connect();
    const other = await connect();
    stuck.full = true;
    publish('task_completed');
    jest.advanceTimersByTime(59_000);
    expect(stuck.destroyed).toBe(false);
    jest.advanceTimersByTime(1_001);
    expect(stuck.destroyed).toBe(true);
    expect(fanout.clientCount).toBe(1);
    publish('task_completed');
    jest.advanceTimersByTime(100);
    expect(other.ids).toEqual([1, 2]);
  });

  it('sends a client only what it has not read when it joined while a fan-out was pending', async () => {
    const early = await connect();
    publish('task_completed');
    publish('task_completed');
    const joined = await connect(); // reads 1–2 from the log while they wait for the fan-out
    publish('task_completed');
    jest.advanceTimersByTime(1);
    expect(early.ids).toEqual([1, 2, 3]);
    expect(joined.ids).toEqual([1, 2, 3]);
  });

  it('misses nothing that went out in a round while its log read was under way, and doubles nothing', async () => {
    append('task_completed');
    const live = await connect();
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    reads.mockImplementationOnce(async (taskId: string, afterId: number, limit?: number) => {
      const page = await InMemoryEventLog.prototype.after.call(log, taskId, afterId, limit);
      await held; // the page was read; it arrives after a round went out
      return page;
    });
    const res = new ResponseDouble();
    fanout.attach(TASK, 0, request, res.asResponse());
    await settle();
    publish('task_completed');
    jest.advanceTimersByTime(1);
    expect(live.ids).toEqual([1, 2]);
    expect(res.ids).toEqual([]);
    release();
    await settle();
    expect(res.ids).toEqual([1, 2]);
    publish('task_completed');
    jest.advanceTimersByTime(100);
    expect(res.ids).toEqual([1, 2, 3]);
    expect(live.ids).toEqual([1, 2, 3]);
  });

  it('ends the stream of a client behind the others once the task and its log are gone', async () => {
    const slow = await connect();
    const other = await connect();
    slow.full = true;
    publish('task_completed');
    jest.advanceTimersByTime(1);
    publish('task_completed'); // goes to `other` only
    jest.advanceTimersByTime(100);
    expect(other.ids).toEqual([1, 2]);
    reads.mockResolvedValue([]); // deleted after its retention: no log, no status
    status = 'failed';
    slow.full = false;
    slow.emit('drain');
    await settle();
    expect(slow.ids).toEqual([1]);
    expect(slow.writableEnded).toBe(true);
  });

  it('sends nothing to a client that asked to start past the end of the log, and ends its stream with the task', async () => {
    const res = await connect(50);
    publish('task_completed');
    jest.advanceTimersByTime(100);
    expect(res.writableEnded).toBe(false);
    publish('session_completed');
    jest.advanceTimersByTime(100);
    expect(res.ids).toEqual([]);
    expect(res.writableEnded).toBe(true);
  });

  it('ends only the stream whose log read fails (the store is closing); nothing is thrown', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const slow = await connect();
    const other = await connect();
    slow.full = true;
    publish('task_completed');
    jest.advanceTimersByTime(1);
    reads.mockRejectedValue(new Error('the database connection is not open'));
    slow.full = false;
    expect(() => slow.emit('drain')).not.toThrow();
    await settle();
    expect(slow.destroyed).toBe(true);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('the log could not be read'));
    expect(other.destroyed).toBe(false);
    await expect(connect()).resolves.toBeDefined();
    warn.mockRestore();
  });

  it('fills a gap in the live feed from the log', async () => {
    const res = await connect();
    append('task_completed'); // stored, never published
    publish('task_completed');
    jest.advanceTimersByTime(1);
    await settle();
    expect(res.ids).toEqual([1, 2]);
    publish('task_completed');
    jest.advanceTimersByTime(100);
    expect(res.ids).toEqual([1, 2, 3]);
  });

  it('ends the streams (after what was published) when the log closes; a stream opened after that ends at once', async () => {
    const res = await connect();
    publish('task_completed');
    expect(log.close()).toBe(1);
    expect(res.ids).toEqual([1]);
    expect(res.writableEnded).toBe(true);
    const late = await connect();
    expect(late.chunks).toEqual([': stream open\n\n']);
    expect(late.writableEnded).toBe(true);
    expect(fanout.clientCount).toBe(0);
    // nothing was thrown inside the feed's callbacks (RxJS would rethrow it from a timer)
    expect(() => jest.runOnlyPendingTimers()).not.toThrow();
  });

  it('keeps one feed per watched task and lets go of it with its last client', async () => {
    const a = await connect();
    const b = await connect();
    expect(log.liveFeedCount).toBe(1);
    a.end();
    expect(log.liveFeedCount).toBe(1);
    b.destroy();
    expect(log.liveFeedCount).toBe(0);
    const c = await connect();
    expect(log.liveFeedCount).toBe(1);
    publish('task_completed');
    jest.advanceTimersByTime(1);
    expect(c.ids).toEqual([1]);
  });

  describe('task_output_delta', () => {
    it('frames a delta without an id: its name and data on their own lines', () => {
      expect(deltaFrame(delta('a "b"\nc', 5)).toString('utf8')).toBe(
        'event: task_output_delta\ndata: {"type":"task_output_delta","task_id":"task-1","node_id":"n1","group_id":"g","text":"a \\"b\\"\\nc","offset":5}\n\n',
      );
    });

    it('goes only to the clients that asked, the deltas of a moment in one write, never into the log', async () => {
      const plain = await connect();
      const watcher = await connect(0, { deltas: true });
      expect(deltas.listeners(TASK)).toBe(1);
      deltas.publish(delta('Hello', 0));
      deltas.publish(delta(' world', 5));
      expect(deltasOf(watcher)).toEqual([]);
      jest.advanceTimersByTime(100);
      expect(deltasOf(watcher).map((d) => d.text)).toEqual(['Hello', ' world']);
      expect(watcher.chunks.filter((c) => c.includes('task_output_delta'))).toHaveLength(1);
      expect(deltasOf(plain)).toEqual([]);
      expect(fanout.deltaCounts.sent).toBe(2);
      // events keep their ids and order beside the deltas; the log has none of the deltas
      publish('task_completed');
      jest.advanceTimersByTime(1);
      expect(watcher.ids).toEqual([1]);
      expect((await log.after(TASK, 0, 10)).map((e) => e.type)).toEqual(['task_completed']);
    });

    it('a delta published before an event goes out before it (the stream may end with that event)', async () => {
      const watcher = await connect(0, { deltas: true });
      deltas.publish(delta('the end of the text', 40));
      publish('task_completed');
      publish('session_completed');
      jest.advanceTimersByTime(1);
      const all = watcher.chunks.join('');
      expect(all.indexOf('task_output_delta')).toBeGreaterThan(-1);
      expect(all.indexOf('task_output_delta')).toBeLessThan(all.indexOf('event: task_completed'));
      expect(watcher.writableEnded).toBe(true);
    });

    it('a client whose delta buffer is full loses deltas, never events; the others get them', async () => {
      const slow = await connect(0, { deltas: true });
      const fast = await connect(0, { deltas: true });
      slow.buffered = MAX_DELTA_BACKLOG - 10;
      deltas.publish(delta('x'.repeat(100)));
      jest.advanceTimersByTime(100);
      expect(deltasOf(slow)).toEqual([]);
      expect(deltasOf(fast)).toHaveLength(1);
      expect(fanout.deltaCounts.dropped).toBe(1);
      // deltas larger than the buffer still go to a client whose socket has nothing waiting
      deltas.publish(delta('y'.repeat(MAX_DELTA_BACKLOG)));
      jest.advanceTimersByTime(100);
      expect(deltasOf(fast)).toHaveLength(2);
      expect(deltasOf(slow)).toEqual([]);
      // an event still goes to it (up to 64 KiB may wait for an event)
      publish('task_completed');
      jest.advanceTimersByTime(1);
      expect(slow.ids).toEqual([1]);
      // stalled (its socket full): no delta at all, and none makes it stalled
      slow.full = true;
      publish('task_completed');
      jest.advanceTimersByTime(100);
      deltas.publish(delta('y', 100));
      jest.advanceTimersByTime(100);
      expect(deltasOf(slow)).toEqual([]);
      expect(fanout.deltaCounts.dropped).toBe(3);
      slow.full = false;
      slow.buffered = 0;
      slow.emit('drain');
      await settle();
      expect(slow.ids).toEqual([1, 2]);
      deltas.publish(delta('z', 101));
      jest.advanceTimersByTime(100);
      expect(deltasOf(slow).map((d) => d.text)).toEqual(['z']);
    });

    it('listens for the task’s deltas while a client wants them, and stops with the last one', async () => {
      const plain = await connect();
      expect(deltas.listeners(TASK)).toBe(0);
      const a = await connect(0, { deltas: true });
      const b = await connect(0, { deltas: true });
      expect(deltas.listeners(TASK)).toBe(1);
      deltas.publish(delta('pending'));
      a.destroy();
      expect(deltas.listeners(TASK)).toBe(1);
      b.destroy();
      expect(deltas.listeners(TASK)).toBe(0);
      jest.advanceTimersByTime(100);
      expect(deltasOf(b)).toEqual([]);
      const c = await connect(0, { deltas: true });
      plain.destroy();
      c.destroy();
      expect(deltas.listeners(TASK)).toBe(0);
      expect(fanout.clientCount).toBe(0);
    });
  });
});
