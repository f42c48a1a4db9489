/**
 * Child process of bench/perf/http-load.ts: N concurrent SSE subscribers of one task, over plain `node:http`
 * (one socket each), in a process of their own so the server's event loop serves them instead of also running them.
 *
 *   sse-clients.child.ts <baseUrl> <taskId> <clients>
 *
 * Tells the parent `ready` once every stream has sent its `: stream open` comment. From then on, for every event
 * received it keeps (receipt time − the event's `timestamp`), i.e. the delay from the event's append to its
 * receipt (both clocks are this machine's; the timestamp has ms resolution). The parent's `measure` message says
 * from which append time on events count (the moment it opened the batch's gate). When every stream has ended
 * (the server ends it after `session_completed`), sends `result` with the delay percentiles.
 */
import * as http from 'node:http';
import { fromParent, percentileSorted, round, tellParent } from './common';

/** The event's `timestamp` field in its `data:` JSON, and the `event:` line of the last one. */
const TIMESTAMP = Buffer.from('"timestamp":"');
const EVENT = Buffer.from('event: ');
const COMPLETED = Buffer.from('event: session_completed');
const BLOCK_END = Buffer.from('\n\n');
const COLON = 0x3a;

/** Midnight (UTC, ms) of the day a timestamp's first 10 characters name, by those characters. */
const days = new Map<string, number>();

/** `Date.parse` of an ISO time `YYYY-MM-DDTHH:mm:ss.sssZ` at `at` in `b`, without making a string of it all. */
function parseIsoMs(b: Buffer, at: number): number {
  const day = b.toString('latin1', at, at + 10);
  let midnight = days.get(day);
  if (midnight === undefined) days.set(day, (midnight = Date.parse(`${day}T00:00:00.000Z`)));
  const d = (i: number): number => b[at + i] - 0x30;
  const h = d(11) * 10 + d(12);
  const m = d(14) * 10 + d(15);
  const sec = d(17) * 10 + d(18);
  const ms = d(20) * 100 + d(21) * 10 + d(22);
  return midnight + ((h * 60 + m) * 60 + sec) * 1000 + ms;
}

async function main(): Promise<void> {
  const [baseUrl, taskId, n] = [process.argv[2], process.argv[3], Number(process.argv[4])];
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const appendedAt: number[] = [];
  const delays: number[] = [];
  let opened = 0;
  let settled = 0;
  let errors = 0;
  let completedStreams = 0;
  let events = 0;
  let resolveAll!: () => void;
  const allSettled = new Promise<void>((resolve) => (resolveAll = resolve));
  let resolveReady!: () => void;
  const allOpen = new Promise<void>((resolve) => (resolveReady = resolve));
  const settle = (): void => {
    if (++settled === n) resolveAll();
  };
  const measure = fromParent<{ type: 'measure'; from: number }>('measure');

  for (let i = 0; i < n; i++) {
    const req = http.get(
      `${baseUrl}/parallel/events/${taskId}`,
      { agent, headers: { accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          errors++;
          res.resume();
          settle();
          return;
        }
        // bytes, not strings: 1,000 streams share this process, and it must not be what limits the figure
        let rest: Buffer | undefined;
        let isOpen = false;
        res.on('data', (chunk: Buffer) => {
          const now = Date.now();
          const buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
          let start = 0;
          let idx: number;
          while ((idx = buffer.indexOf(BLOCK_END, start)) >= 0) {
            const blockStart = start;
            start = idx + 2;
            if (!isOpen && buffer[blockStart] === COLON) {
              isOpen = true;
              if (++opened === n) resolveReady();
              continue;
            }
            // only what the measurement needs, without parsing the whole event
            const at = buffer.indexOf(TIMESTAMP, blockStart);
            if (at < 0 || at > idx) continue;
            events++;
            const ts = parseIsoMs(buffer, at + TIMESTAMP.length);
            appendedAt.push(ts);
            delays.push(now - ts);
            const ev = buffer.indexOf(EVENT, blockStart);
            if (ev >= 0 && ev < idx && COMPLETED.compare(buffer, ev, ev + COMPLETED.length) === 0) {
              completedStreams++;
            }
          }
          rest = start < buffer.length ? buffer.subarray(start) : undefined;
        });
        res.on('end', settle);
        res.on('error', () => {
          errors++;
          settle();
        });
      },
    );
    req.on('error', () => {
      errors++;
      settle();
    });
  }

  await Promise.race([allOpen, allSettled]);
  await tellParent({ type: 'ready', opened, errors });
  const { from } = await measure;
  await allSettled;
  const counted: number[] = [];
  for (let i = 0; i < delays.length; i++) if (appendedAt[i] >= from) counted.push(delays[i]);
  counted.sort((a, b) => a - b);
  await tellParent({
    type: 'result',
    clients: n,
    opened,
    errors,
    streams_with_session_completed: completedStreams,
    events_received: events,
    events_counted: counted.length,
    delay_ms: {
      p50: percentileSorted(counted, 50),
      p90: percentileSorted(counted, 90),
      p99: percentileSorted(counted, 99),
      max: counted.length ? counted[counted.length - 1] : null,
      mean: counted.length ? round(counted.reduce((a, b) => a + b, 0) / counted.length, 1) : null,
    },
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `sse-clients.child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
