/**
 * Child process of bench/perf/http-load.ts: autocannon against `GET /parallel/status/{taskId}`, in a process of its
 * own so the load generator does not run on the server's event loop.
 *
 *   status-load.child.ts <baseUrl> <taskId> <connections>
 *
 * Tells the parent `ready` once autocannon has started, loads until the parent's `stop`, then sends `result`
 * (latency percentiles in ms, request counts, non-2xx and errors).
 */
import autocannon from 'autocannon';
import { fromParent, tellParent } from './common';

async function main(): Promise<void> {
  const [baseUrl, taskId, connections] = [process.argv[2], process.argv[3], Number(process.argv[4])];
  const stop = fromParent('stop');
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: `${baseUrl}/parallel/status/${taskId}`, connections, duration: 3_600 },
      (err: unknown, result: autocannon.Result) => {
        if (err) reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
        else resolve(result);
      },
    );
    instance.on('start', () => started());
    void stop.then(() => instance.stop());
  });
  await running;
  await tellParent({ type: 'ready' });
  const r = await done;
  await tellParent({
    type: 'result',
    connections,
    duration_s: r.duration,
    requests: r.requests.total,
    requests_per_s: r.requests.average,
    status_2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    bytes_per_s: r.throughput.average,
    latency_ms: {
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      max: r.latency.max,
      mean: r.latency.mean,
    },
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `status-load.child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
