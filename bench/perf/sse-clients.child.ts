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
const TIMESTAMP = '"timestamp":"';
const COMPLETED = 'event: session_completed';

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
        res.setEncoding('utf8');
        let buffer = '';
        let isOpen = false;
        res.on('data', (chunk: string) => {
          const now = Date.now();
          buffer += chunk;
          let idx: number;
          while ((idx = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, idx);
            buffer = buffer.slice(idx + 2);
            if (!isOpen && block.startsWith(':')) {
              isOpen = true;
              if (++opened === n) resolveReady();
              continue;
            }
            // only what the measurement needs, without parsing the whole event: the client must not be what
            // limits the figure (1,000 streams share this one process)
            const at = block.indexOf(TIMESTAMP);
            if (at < 0) continue;
            events++;
            const ts = Date.parse(
              block.slice(at + TIMESTAMP.length, block.indexOf('"', at + TIMESTAMP.length)),
            );
            appendedAt.push(ts);
            delays.push(now - ts);
            if (block.startsWith(COMPLETED, block.indexOf('event: '))) completedStreams++;
          }
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
