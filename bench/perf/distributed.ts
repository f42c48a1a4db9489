/**
 * `distributed` (issue 20): the distributed engine (`REDIS_URL`: Redis + BullMQ) beside the embedded one, every
 * engine a real service process (`test/support/cluster.ts`), on a private redis-server this section starts (AOF on,
 * `appendfsync everysec`, Redis's default with AOF), in one run:
 * - `distributed_makespan_ratio_3p`: 240 nodes × 200 ms at GLOBAL_MAX_CONCURRENT 12 (ideal 4 s) through the fake LLM
 *   provider (Anthropic wire, fixed 200 ms), for the embedded engine, 1, 2 and 3 processes on Redis, and a bare
 *   BullMQ Queue + Worker that only sleeps 200 ms per job (the engine's floor), rounds alternating; the makespan is
 *   the service's own `performance_metrics.total_duration_seconds`;
 * - `distributed_cancel_p99_ms`: 3 processes, batches of 5 s calls filling the cap, `?mode=abort` sent to a process
 *   that does not own the batch: from the request's send to the close of the batch's last provider call;
 * - `distributed_sse_p99_ms`: 3 processes, an SSE client on each following a batch owned by A: receipt on a process
 *   that neither owns the batch nor ran the node − the event's `timestamp`;
 * - `distributed.overhead`: µs per node (wall, CPU of the service process, CPU of Redis) of 2,000 zero-latency nodes
 *   (offline provider) on 1 process on Redis beside the embedded engine on the same workload.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { type Cluster, type ClusterOptions, startCluster } from '../../test/support/cluster';
import {
  type FakeLlmServer,
  peakConcurrency,
  type RequestLogEntry,
  startFakeLlm,
} from '../../test/support/fake-llm-server';
import { redisServerAvailable, uniquePrefix } from '../../test/support/redis';
import { freePort } from '../../test/support/service-process';
import { figure, fmt, median, out, percentile, round, submitHttp, table, writeCanvas } from './common';

const AGENT = 'oral-explanation';
const CAP = 12;
const NODES = 240;
const NODE_MS = 200;
const IDEAL_MS = Math.ceil(NODES / CAP) * NODE_MS;
/** Measured rounds per engine, alternating engines; the figure is the median. */
const ROUNDS = 3;
const WARMUP_NODES = 24;
/** Processes on Redis of the makespan rows. */
const SIZES = [1, 2, 3] as const;
const CANCEL_LATENCY_MS = 5_000;
/** Twice the cap: the cap is full and more wait when the cancel goes out. */
const CANCEL_NODES = 2 * CAP;
const CANCEL_REPS = 25;
/** Cancels stop after this long once `CANCEL_MIN_REPS` are done. */
const CANCEL_BUDGET_MS = 60_000;
const CANCEL_MIN_REPS = 20;
const SSE_BATCHES = 2;
const OVERHEAD_BATCHES = 4;
const OVERHEAD_NODES_PER_BATCH = 500;
const OVERHEAD_ROUNDS = 2;

/** Every process of every engine (the section's only settings besides Redis and the provider). */
const SETTINGS = {
  GLOBAL_MAX_CONCURRENT: String(CAP),
  ADAPTIVE_CONCURRENCY: 'false',
  // dozens of batches a minute go to one process
  EXECUTE_RATE_LIMIT: '0',
  AGENT_TIMEOUT_MS: '60000',
};

/** What the section reads of `GET /parallel/status/<id>`. */
interface StatusBody {
  status: string;
  completed_nodes: number;
  performance_metrics: { total_duration_seconds: number; peak_concurrent: number };
}

const epochNow = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------------------------
// A private redis-server

interface BenchRedis {
  url: string;
  /** Where it comes from, for the results. */
  source: string;
  /** CPU time Redis has used so far (ms), from `INFO cpu`. */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function ping(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return true;
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

function infoCpuMs(info: string): number {
  const field = (name: string): number =>
    Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1000;
}

/** Its own redis-server when the binary is here; else `REDIS_URL` (shared: Redis CPU counts others too); else none. */
async function benchRedis(): Promise<BenchRedis | undefined> {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  let url: string;
  let source: string;
  if (redisServerAvailable()) {
    const port = await freePort();
    dir = mkdtempSync(path.join(os.tmpdir(), 'canvas-batch-bench-redis-'));
    child = spawn(
      'redis-server',
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir],
        ...['--appendonly', 'yes', '--appendfsync', 'everysec'],
      ],
      { stdio: 'ignore' },
    );
    url = `redis://127.0.0.1:${port}`;
    source = 'private redis-server (appendonly yes, appendfsync everysec)';
    let up = false;
    for (let i = 0; i < 200 && !up; i++) {
      up = await ping(url);
      if (!up) await sleep(50);
    }
    if (!up) throw new Error(`bench distributed: redis-server did not start on port ${port}`);
  } else if (process.env.REDIS_URL) {
    url = process.env.REDIS_URL;
    source = 'REDIS_URL (shared: its CPU figures include other clients)';
  } else {
    return undefined;
  }
  const admin = new Redis(url, { maxRetriesPerRequest: 1 });
  const version = /^redis_version:(\S+)/m.exec(await admin.info('server'))?.[1] ?? '?';
  return {
    url,
    source: `${source}, Redis ${version}`,
    cpuMs: async () => infoCpuMs(await admin.info('cpu')),
    async stop() {
      admin.disconnect();
      if (child && child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        });
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP: an SSE follower that notes when each event arrives, status

interface Received {
  id: number;
  event: string;
  /** The event's `timestamp` (epoch ms). */
  timestamp: number;
  nodeId: string | undefined;
  /** When its block arrived here (epoch ms, sub-ms resolution). */
  receivedAt: number;
}

interface Follower {
  events: Received[];
  /** When `: stream open` arrived (epoch ms). */
  openedAt(): number | undefined;
  /** Resolves after `session_completed` (or the end of the stream). */
  done: Promise<Received[]>;
}

/** `GET /parallel/events/<taskId>` from the start; keeps every event with its receipt time. */
function follow(baseUrl: string, taskId: string): Follower {
  const events: Received[] = [];
  let openedAt: number | undefined;
  const done = new Promise<Received[]>((resolve, reject) => {
    const req = http.get(
      `${baseUrl}/parallel/events/${taskId}`,
      { headers: { accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`bench distributed: SSE ${baseUrl} answered ${res.statusCode}`));
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          const at = epochNow();
          buffer += chunk;
          let idx: number;
          while ((idx = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, idx);
            buffer = buffer.slice(idx + 2);
            if (block.startsWith(':')) {
              openedAt ??= at;
              continue;
            }
            const e = parseBlock(block, at);
            if (!e) continue;
            events.push(e);
            if (e.event === 'session_completed') {
              req.destroy();
              resolve(events);
            }
          }
        });
        res.on('end', () => resolve(events));
        res.on('error', () => resolve(events));
      },
    );
    req.on('error', (err) => (events.at(-1)?.event === 'session_completed' ? resolve(events) : reject(err)));
  });
  return { events, openedAt: () => openedAt, done };
}

function parseBlock(block: string, receivedAt: number): Received | undefined {
  let id: number | undefined;
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('id: ')) id = Number(line.slice(4));
    else if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (id === undefined) return undefined;
  const json = JSON.parse(data) as { timestamp: string; data?: { node_id?: string } };
  return { id, event, timestamp: Date.parse(json.timestamp), nodeId: json.data?.node_id, receivedAt };
}

async function getStatus(baseUrl: string, taskId: string): Promise<StatusBody> {
  const res = await fetch(`${baseUrl}/parallel/status/${taskId}`);
  if (res.status !== 200) throw new Error(`bench distributed: status of ${taskId} answered ${res.status}`);
  return (await res.json()) as StatusBody;
}

/** The task's status once it is terminal (polled every 50 ms). */
async function terminal(baseUrl: string, taskId: string, timeoutMs = 30_000): Promise<StatusBody> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const body = await getStatus(baseUrl, taskId);
    if (!['pending', 'running'].includes(body.status)) return body;
    if (Date.now() > end) throw new Error(`bench distributed: task ${taskId} still ${body.status}`);
    await sleep(50);
  }
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench distributed: ${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** utime + stime of a process so far (ms; Linux, 100 ticks a second). */
function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Engines: service processes with their own fake provider

interface Engine {
  label: string;
  cluster: Cluster;
  fake: FakeLlmServer | undefined;
  runs: number;
}

async function startEngine(
  label: string,
  options: Omit<ClusterOptions, 'llm' | 'env'> & { llm: boolean; env?: Record<string, string> },
): Promise<Engine> {
  const fake = options.llm ? await startFakeLlm({ latencyMs: { min: NODE_MS, max: NODE_MS } }) : undefined;
  try {
    const cluster = await startCluster({
      ...options,
      env: { ...SETTINGS, ...options.env },
      llm: fake && { fake, wire: 'anthropic' },
    });
    return { label, cluster, fake, runs: 0 };
  } catch (err) {
    await fake?.close();
    throw err;
  }
}

async function stopEngine(e: Engine): Promise<void> {
  await e.cluster.stop();
  await e.fake?.close();
}

const answered = (log: readonly RequestLogEntry[]): RequestLogEntry[] => log.filter((e) => e.status === 200);

/**
 * Where a batch's time goes, from the provider's log (epoch ms): submit → first call (`head`), first call → last
 * close (`span`), last close → `session_completed` received (`tail`), and the hand-off gaps: with the cap full, call
 * k + cap can only start once call k closed, so `arrival[k + cap] − close[k]` (both sorted) is the time a slot
 * spent between two calls.
 */
function timeline(calls: readonly RequestLogEntry[], submittedAt: number, endedAt: number) {
  const arrivals = calls.map((c) => c.arrivedAt).sort((x, y) => x - y);
  const closes = calls.map((c) => c.closedAt ?? Number.NaN).sort((x, y) => x - y);
  const gaps: number[] = [];
  for (let k = 0; k + CAP < arrivals.length; k++) gaps.push(arrivals[k + CAP] - closes[k]);
  return {
    head_ms: round(arrivals[0] - submittedAt, 1),
    span_ms: round(closes[closes.length - 1] - arrivals[0], 1),
    tail_ms: round(endedAt - closes[closes.length - 1], 1),
    handoff_gap_ms: { p50: percentile(gaps, 50), p90: percentile(gaps, 90), max: Math.max(...gaps) },
  };
}

/** CPU time (ms) of every process of the engine so far, and of Redis when the engine uses it. */
async function engineCpu(e: Engine, redis: BenchRedis): Promise<{ service: number; redis: number }> {
  const service = e.cluster.nodes.reduce((sum, n) => sum + processCpuMs(n.service?.child.pid), 0);
  return { service, redis: e.cluster.redisUrl ? await redis.cpuMs() : 0 };
}

/** Submits one batch of `nodes` to the engine's first process (A, the owner), follows it there to the end. */
async function runBatch(e: Engine, nodes: number, redis: BenchRedis) {
  const canvas = writeCanvas(e.cluster.vault, `dist/run-${++e.runs}.canvas`, nodes);
  const owner = e.cluster.nodes[0];
  if (e.fake) e.fake.log.length = 0;
  const cpu0 = await engineCpu(e, redis);
  const submittedAt = epochNow();
  const t0 = performance.now();
  const taskId = await submitHttp(owner.url, {
    canvas_path: canvas.relPath,
    groups: [{ group_id: 1, agent_type: AGENT, node_ids: canvas.nodeIds }],
  });
  const stream = follow(owner.url, taskId);
  await within(stream.done, 120_000, `${e.label} batch`);
  const submitToEndMs = performance.now() - t0;
  const endedAt = epochNow();
  const cpu1 = await engineCpu(e, redis);
  const status = await getStatus(owner.url, taskId);
  if (status.status !== 'completed' || status.completed_nodes !== nodes) {
    throw new Error(
      `bench distributed: ${e.label} batch ended ${status.status} with ${status.completed_nodes}/${nodes} completed`,
    );
  }
  const calls = e.fake ? answered(e.fake.log) : [];
  const conc = peakConcurrency(calls);
  return {
    ms: status.performance_metrics.total_duration_seconds * 1000,
    submitToEndMs,
    peak: e.fake ? conc.peak : status.performance_metrics.peak_concurrent,
    callsByProcess: Object.fromEntries(Object.entries(conc.byProcess).map(([p, v]) => [p, v.calls])),
    diagnostics: {
      ...(calls.length > CAP ? timeline(calls, submittedAt, endedAt) : {}),
      // cores the engine kept busy over the batch (2 on this machine at most, shared with the bench and Redis)
      service_cpu_cores: round((cpu1.service - cpu0.service) / submitToEndMs, 2),
      redis_cpu_cores: round((cpu1.redis - cpu0.redis) / submitToEndMs, 2),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The bare BullMQ floor: one Queue + one Worker at concurrency 12, global concurrency 12, jobs that only sleep

async function startBare(url: string) {
  const prefix = uniquePrefix('bench-bare');
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const workerConnection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue<{ ms: number }>('sleeps', { connection, prefix });
  await queue.setGlobalConcurrency(CAP);
  let completed = 0;
  let wanted = Infinity;
  let finished: () => void = () => undefined;
  const worker = new Worker<{ ms: number }>(
    'sleeps',
    async (job) => {
      await sleep(job.data.ms);
    },
    { connection: workerConnection, prefix, concurrency: CAP },
  );
  worker.on('completed', () => {
    if (++completed >= wanted) finished();
  });
  await worker.waitUntilReady();
  return {
    /** `jobs` jobs of `ms` each: from before `addBulk` until the last one completed (ms). */
    async run(jobs: number, ms: number): Promise<number> {
      completed = 0;
      wanted = jobs;
      const done = new Promise<void>((resolve) => (finished = resolve));
      const t0 = performance.now();
      await queue.addBulk(
        Array.from({ length: jobs }, (_, i) => ({
          name: 'sleep',
          data: { ms },
          opts: { jobId: `${t0}-${i}` },
        })),
      );
      await within(done, 60_000, 'bare BullMQ run');
      return performance.now() - t0;
    },
    async close() {
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      connection.disconnect();
      workerConnection.disconnect();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. makespan / ideal

interface MakespanRow {
  label: string;
  ms: number[];
  submitToEndMs: number[];
  peak: number[];
  spread: Record<string, number>[];
  diagnostics: Diagnostics[];
}

async function makespans(engines: Engine[], bare: Awaited<ReturnType<typeof startBare>>, redis: BenchRedis) {
  const rows: MakespanRow[] = [...engines.map((e) => e.label), 'bare BullMQ worker (sleeps only)'].map(
    (label) => ({ label, ms: [], submitToEndMs: [], peak: [], spread: [], diagnostics: [] }),
  );
  // warm-up: JIT, connections, the scheduler's first duration estimates
  for (const e of engines) await runBatch(e, WARMUP_NODES, redis);
  await bare.run(WARMUP_NODES, NODE_MS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, e] of engines.entries()) {
      const r = await runBatch(e, NODES, redis);
      rows[i].ms.push(r.ms);
      rows[i].submitToEndMs.push(r.submitToEndMs);
      rows[i].peak.push(r.peak);
      rows[i].spread.push(r.callsByProcess);
      rows[i].diagnostics.push(r.diagnostics);
    }
    const ms = await bare.run(NODES, NODE_MS);
    rows[engines.length].ms.push(ms);
    rows[engines.length].submitToEndMs.push(ms);
  }
  return rows;
}

type Diagnostics = Awaited<ReturnType<typeof runBatch>>['diagnostics'];
const gapP50 = (d: Diagnostics): number => d.handoff_gap_ms?.p50 ?? Number.NaN;
const cores = (d: Diagnostics): number => d.service_cpu_cores + d.redis_cpu_cores;

// ---------------------------------------------------------------------------------------------------------------
// 2. cancel to last call closed

interface CancelRep {
  cancelled_through: string;
  /** From the DELETE's send to the close of the batch's last provider call. */
  ms: number;
  reply_ms: number;
  calls_open_at_send: number;
  processes_with_open_calls: number;
  calls_started_after_reply: number;
  all_closed_by_client: boolean;
  status: string;
}

async function cancels(e: Engine): Promise<CancelRep[]> {
  const fake = e.fake!;
  const [a, ...others] = e.cluster.nodes;
  fake.configure({ latencyMs: { min: CANCEL_LATENCY_MS, max: CANCEL_LATENCY_MS } });
  const reps: CancelRep[] = [];
  const started = performance.now();
  try {
    for (let rep = 0; rep < CANCEL_REPS; rep++) {
      if (rep >= CANCEL_MIN_REPS && performance.now() - started > CANCEL_BUDGET_MS) break;
      const canvas = writeCanvas(e.cluster.vault, `dist/cancel-${rep + 1}.canvas`, CANCEL_NODES);
      fake.log.length = 0;
      const taskId = await submitHttp(a.url, {
        canvas_path: canvas.relPath,
        groups: [{ group_id: 1, agent_type: AGENT, node_ids: canvas.nodeIds }],
      });
      // the cap full: twelve calls open across the processes
      const fillEnd = performance.now() + 20_000;
      while (fake.inFlight < CAP) {
        if (performance.now() > fillEnd)
          throw new Error(`bench distributed: cancel rep ${rep + 1}: cap not filled`);
        await sleep(5);
      }
      const through = others[rep % others.length];
      const sentAt = Date.now();
      const openAtSend = fake.log.filter((c) => c.closedAt === undefined);
      const res = await fetch(`${through.url}/parallel/cancel/${taskId}?mode=abort`, { method: 'DELETE' });
      const repliedAt = Date.now();
      if (res.status !== 200) throw new Error(`bench distributed: cancel answered ${res.status}`);
      await res.arrayBuffer();
      await within(fake.idle(), 2 * CANCEL_LATENCY_MS, 'closing the aborted calls');
      const final = await terminal(through.url, taskId);
      const lastClose = Math.max(...fake.log.map((c) => c.closedAt ?? Infinity));
      reps.push({
        cancelled_through: through.name,
        ms: lastClose - sentAt,
        reply_ms: repliedAt - sentAt,
        calls_open_at_send: openAtSend.length,
        processes_with_open_calls: new Set(openAtSend.map((c) => c.process)).size,
        // a call already on the wire gets a scheduling slice to arrive (as in test/distributed.e2e-spec.ts)
        calls_started_after_reply: fake.log.filter((c) => c.arrivedAt > repliedAt + 50).length,
        all_closed_by_client: fake.log.every((c) => c.clientClosed),
        status: final.status,
      });
    }
  } finally {
    fake.configure({ latencyMs: { min: NODE_MS, max: NODE_MS } });
  }
  return reps;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. SSE append-to-receipt on the other processes

async function sseDelays(e: Engine) {
  const fake = e.fake!;
  const owner = e.cluster.nodes[0];
  const other: number[] = [];
  const otherRunner: number[] = [];
  const ownerDelays: number[] = [];
  const crossProcess: number[] = [];
  let events = 0;
  for (let b = 0; b < SSE_BATCHES; b++) {
    const canvas = writeCanvas(e.cluster.vault, `dist/sse-${b + 1}.canvas`, NODES);
    fake.log.length = 0;
    const taskId = await submitHttp(owner.url, {
      canvas_path: canvas.relPath,
      groups: [{ group_id: 1, agent_type: AGENT, node_ids: canvas.nodeIds }],
    });
    const followers = e.cluster.nodes.map((n) => ({ name: n.name, f: follow(n.url, taskId) }));
    await within(Promise.all(followers.map((x) => x.f.done)), 120_000, 'SSE batch');
    await fake.idle();
    const runnerOf = new Map(answered(fake.log).map((c) => [c.node, c.process]));
    // live events only: appended once every stream was open (earlier ones come as a replay)
    const from = Math.max(...followers.map((x) => x.f.openedAt() ?? Infinity));
    const byId = followers.map((x) => ({
      name: x.name,
      events: new Map(x.f.events.map((ev) => [ev.id, ev])),
    }));
    for (const ev of followers[0].f.events) {
      if (ev.event !== 'task_completed' || ev.timestamp < from) continue;
      events++;
      ownerDelays.push(ev.receivedAt - ev.timestamp);
      for (const { name, events: theirs } of byId.slice(1)) {
        const mine = theirs.get(ev.id);
        if (!mine) throw new Error(`bench distributed: event ${ev.id} never reached ${name}`);
        crossProcess.push(mine.receivedAt - ev.receivedAt);
        if (runnerOf.get(mine.nodeId) === name) otherRunner.push(mine.receivedAt - mine.timestamp);
        else other.push(mine.receivedAt - mine.timestamp);
      }
    }
  }
  const stats = (v: number[]) => ({
    samples: v.length,
    p50: round(percentile(v, 50), 2),
    p99: round(percentile(v, 99), 2),
    max: v.length ? round(Math.max(...v), 2) : null,
  });
  return {
    batches: SSE_BATCHES,
    task_completed_events: events,
    other_process_not_runner: stats(other),
    other_process_that_ran_the_node: stats(otherRunner),
    owner: stats(ownerDelays),
    other_minus_owner_receipt: stats(crossProcess),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 4. overhead per node: zero-latency agent, the same workload on both engines

async function overheadRun(e: Engine, batches: number, perBatch: number, redis: BenchRedis) {
  const node = e.cluster.nodes[0];
  const canvases = Array.from({ length: batches }, () =>
    writeCanvas(e.cluster.vault, `dist/overhead-${++e.runs}.canvas`, perBatch),
  );
  const pid = node.service?.child.pid;
  const cpu0 = processCpuMs(pid);
  const redis0 = e.cluster.redisUrl ? await redis.cpuMs() : 0;
  const t0 = performance.now();
  const taskIds = await Promise.all(
    canvases.map((c) =>
      submitHttp(node.url, {
        canvas_path: c.relPath,
        groups: [{ group_id: 1, agent_type: AGENT, node_ids: c.nodeIds }],
      }),
    ),
  );
  await within(
    Promise.all(taskIds.map((id) => follow(node.url, id).done)),
    180_000,
    `${e.label} overhead run`,
  );
  const wallMs = performance.now() - t0;
  const cpuMs = processCpuMs(pid) - cpu0;
  const redisCpuMs = e.cluster.redisUrl ? (await redis.cpuMs()) - redis0 : 0;
  for (const id of taskIds) {
    const s = await getStatus(node.url, id);
    if (s.status !== 'completed') throw new Error(`bench distributed: ${e.label} overhead batch ${s.status}`);
  }
  const n = batches * perBatch;
  return {
    wall_us_per_node: round((wallMs * 1000) / n, 1),
    service_cpu_us_per_node: round((cpuMs * 1000) / n, 1),
    redis_cpu_us_per_node: round((redisCpuMs * 1000) / n, 1),
  };
}

// ---------------------------------------------------------------------------------------------------------------

export async function benchDistributed(root: string): Promise<Record<string, unknown>> {
  void root; // every engine has its own temp vault and data dirs (test/support/cluster.ts removes them)
  const t0 = performance.now();
  const loadStart = os.loadavg().map((l) => round(l, 2));
  const redis = await benchRedis();
  if (!redis) {
    const skipped = 'redis-server is not installed and REDIS_URL is not set';
    out(`distributed: skipped (${skipped})`);
    return { distributed: { skipped } };
  }
  out(
    `distributed: ${NODES} nodes × ${NODE_MS} ms at ${CAP}, embedded and 1/2/3 processes on Redis and a bare BullMQ worker, ${ROUNDS} rounds; cancels; SSE; overhead …`,
  );
  const engines: Engine[] = [];
  let bare: Awaited<ReturnType<typeof startBare>> | undefined;
  try {
    // 1. makespan (every engine alive at once, so the rounds can alternate)
    engines.push(
      ...(await Promise.all([
        startEngine('embedded (1 process, no Redis)', { size: 1, llm: true }),
        ...SIZES.map((size) =>
          startEngine(`Redis, ${size} process${size > 1 ? 'es' : ''}`, {
            size,
            llm: true,
            redisUrl: redis.url,
            prefix: uniquePrefix(`bench-d${size}`),
          }),
        ),
      ])),
    );
    const entry = engines[0].cluster.entry.join(' ');
    bare = await startBare(redis.url);
    out(`  ${engines.reduce((n, e) => n + e.cluster.nodes.length, 0)} processes up (node ${entry}) …`);
    const rows = await makespans(engines, bare, redis);
    const ratio = (r: MakespanRow) => median(r.ms) / IDEAL_MS;
    out(
      table([
        [
          'engine',
          'makespans ms (rounds)',
          'median / ideal',
          'submit → terminal ms',
          'peak calls',
          'hand-off gap p50 ms',
          'CPU cores (service + Redis)',
        ],
        ...rows.map((r) => [
          r.label,
          r.ms.map((ms) => fmt(ms, 0)).join(' / '),
          fmt(ratio(r), 3),
          r.submitToEndMs.map((ms) => fmt(ms, 0)).join(' / '),
          r.peak.length ? String(Math.max(...r.peak)) : '',
          r.diagnostics.length ? fmt(median(r.diagnostics.map(gapP50)), 1) : '',
          r.diagnostics.length ? fmt(median(r.diagnostics.map(cores)), 2) : '',
        ]),
      ]),
    );
    await bare.close();
    bare = undefined;

    // 3. SSE (3 processes, 200 ms calls), then 2. cancels (3 processes, 5 s calls)
    const three = engines[engines.length - 1];
    const sse = await sseDelays(three);
    const cancelReps = await cancels(three);
    const cancelMs = cancelReps.map((r) => r.ms);
    const validCancels = cancelReps.every(
      (r) => r.calls_started_after_reply === 0 && r.all_closed_by_client && r.status === 'cancelled',
    );
    out(
      table([
        ['3 processes', 'samples', 'p50 ms', 'p99 ms', 'max ms'],
        latencyRow('SSE: receipt on B/C (not the node’s runner) − timestamp', sse.other_process_not_runner),
        latencyRow('SSE: receipt on A (the owner) − timestamp', sse.owner),
        latencyRow('SSE: receipt on B/C − receipt on A', sse.other_minus_owner_receipt),
        [
          'abort-cancel via B/C → last call closed',
          String(cancelMs.length),
          fmt(percentile(cancelMs, 50), 0),
          fmt(percentile(cancelMs, 99), 0),
          fmt(Math.max(...cancelMs), 0),
        ],
      ]),
    );
    for (const e of engines.splice(0)) await stopEngine(e);

    // 4. overhead: offline provider, 0 ms
    const offline = { env: { AGENT_LATENCY_MS: '0' }, llm: false } as const;
    engines.push(
      ...(await Promise.all([
        startEngine('embedded', { size: 1, ...offline }),
        startEngine('Redis, 1 process', {
          size: 1,
          ...offline,
          redisUrl: redis.url,
          prefix: uniquePrefix('bench-oh'),
        }),
      ])),
    );
    const [emb, dist] = engines;
    for (const e of engines) await overheadRun(e, 1, OVERHEAD_NODES_PER_BATCH, redis); // warm-up
    const ohRuns: Record<'embedded' | 'redis', Awaited<ReturnType<typeof overheadRun>>[]> = {
      embedded: [],
      redis: [],
    };
    for (let r = 0; r < OVERHEAD_ROUNDS; r++) {
      ohRuns.embedded.push(await overheadRun(emb, OVERHEAD_BATCHES, OVERHEAD_NODES_PER_BATCH, redis));
      ohRuns.redis.push(await overheadRun(dist, OVERHEAD_BATCHES, OVERHEAD_NODES_PER_BATCH, redis));
    }
    const med = (k: 'embedded' | 'redis', f: keyof (typeof ohRuns.redis)[number]) =>
      median(ohRuns[k].map((x) => x[f]));
    const overhead = {
      nodes: OVERHEAD_BATCHES * OVERHEAD_NODES_PER_BATCH,
      batches_at_once: OVERHEAD_BATCHES,
      agent: 'offline provider, AGENT_LATENCY_MS=0',
      rounds: OVERHEAD_ROUNDS,
      embedded: ohRuns.embedded,
      redis_1_process: ohRuns.redis,
      median: {
        embedded_wall_us_per_node: med('embedded', 'wall_us_per_node'),
        redis_wall_us_per_node: med('redis', 'wall_us_per_node'),
        embedded_service_cpu_us_per_node: med('embedded', 'service_cpu_us_per_node'),
        redis_service_cpu_us_per_node: med('redis', 'service_cpu_us_per_node'),
        redis_server_cpu_us_per_node: med('redis', 'redis_cpu_us_per_node'),
      },
      wall_ratio_redis_to_embedded: round(
        med('redis', 'wall_us_per_node') / med('embedded', 'wall_us_per_node'),
        3,
      ),
      cpu_ratio_redis_to_embedded: round(
        (med('redis', 'service_cpu_us_per_node') + med('redis', 'redis_cpu_us_per_node')) /
          med('embedded', 'service_cpu_us_per_node'),
        3,
      ),
    };
    out(
      table([
        [
          `overhead, ${overhead.nodes} nodes × 0 ms (${OVERHEAD_BATCHES} batches at once)`,
          'wall µs/node',
          'service CPU µs/node',
          'Redis CPU µs/node',
        ],
        ...(['embedded', 'redis'] as const).map((k) => [
          k === 'embedded' ? 'embedded (1 process)' : 'Redis (1 process)',
          ohRuns[k].map((x) => fmt(x.wall_us_per_node, 0)).join(' / '),
          ohRuns[k].map((x) => fmt(x.service_cpu_us_per_node, 0)).join(' / '),
          ohRuns[k].map((x) => fmt(x.redis_cpu_us_per_node, 0)).join(' / '),
        ]),
      ]),
    );
    out(
      `  Redis / embedded: wall ${fmt(overhead.wall_ratio_redis_to_embedded, 2)}×, CPU (service + Redis) ${fmt(overhead.cpu_ratio_redis_to_embedded, 2)}×`,
    );

    const byLabel = (i: number) => round(ratio(rows[i]), 4);
    const sectionS = round((performance.now() - t0) / 1000, 1);
    out(`  distributed section: ${sectionS} s`);
    const common = {
      entry,
      redis: redis.source,
      section_s: sectionS,
      // the machine is shared (other work runs beside the bench): 1-minute load at the section's start and end
      loadavg_at_start: loadStart,
      loadavg_at_end: os.loadavg().map((l) => round(l, 2)),
    };
    return {
      distributed_makespan_ratio_3p: figure(
        'distributed',
        byLabel(3),
        'ratio',
        { max: 1.03 },
        {
          beside: {
            embedded: byLabel(0),
            redis_1_process: byLabel(1),
            redis_2_processes: byLabel(2),
            bare_bullmq_floor: byLabel(4),
          },
          details: {
            ...common,
            nodes: NODES,
            node_ms: NODE_MS,
            global_max_concurrent: CAP,
            ideal_ms: IDEAL_MS,
            rounds: ROUNDS,
            provider: 'fake LLM provider, Anthropic wire, fixed 200 ms',
            measured_from:
              'performance_metrics.total_duration_seconds of the final status (the service’s own metrics); bare BullMQ: addBulk until the last job completed',
            engines: rows.map((r) => ({
              engine: r.label,
              makespans_ms: r.ms.map((ms) => round(ms, 1)),
              median_to_ideal: round(ratio(r), 4),
              submit_to_terminal_ms: r.submitToEndMs.map((ms) => round(ms, 1)),
              peak_provider_calls: r.peak,
              calls_by_process: r.spread,
              diagnostics: r.diagnostics,
            })),
          },
        },
      ),
      distributed_cancel_p99_ms: figure(
        'distributed',
        round(percentile(cancelMs, 99), 1),
        'ms',
        { max: 250 },
        {
          pass: validCancels,
          beside: {
            p50: round(percentile(cancelMs, 50), 1),
            reply_p50: round(median(cancelReps.map((r) => r.reply_ms)), 1),
          },
          ...(validCancels
            ? {}
            : {
                note: 'a cancel let a call start after its reply, left one unclosed, or did not end cancelled',
              }),
          details: {
            ...common,
            processes: 3,
            reps: cancelReps.length,
            call_latency_ms: CANCEL_LATENCY_MS,
            batch_nodes: CANCEL_NODES,
            definition:
              'DELETE /parallel/cancel/<id>?mode=abort sent to B or C (the batch is owned by A): from the send to the fake provider’s closedAt of the batch’s last call',
            runs: cancelReps,
          },
        },
      ),
      distributed_sse_p99_ms: figure(
        'distributed',
        sse.other_process_not_runner.p99,
        'ms',
        { max: 100 },
        {
          beside: {
            p50: sse.other_process_not_runner.p50,
            owner_p99: sse.owner.p99,
            other_minus_owner_p99: sse.other_minus_owner_receipt.p99,
          },
          details: {
            ...common,
            processes: 3,
            definition:
              'per task_completed event: receipt by an SSE client on B or C (not the batch’s owner A, not the process that ran the node) − the event’s timestamp (set by the owner as it records the outcome, just before the store-and-publish)',
            ...sse,
          },
        },
      ),
      distributed: { ...common, overhead },
    };
  } finally {
    await bare?.close();
    for (const e of engines) await stopEngine(e);
    await redis.stop();
  }
}

/** One row of the latency table: a label, then samples, p50, p99 and max in ms. */
function latencyRow(
  label: string,
  q: { samples: number; p50: number; p99: number; max: number | null },
): string[] {
  return [label, String(q.samples), fmt(q.p50, 1), fmt(q.p99, 1), fmt(q.max, 1)];
}
