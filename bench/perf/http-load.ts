/**
 * Watchers and pollers on a real HTTP server (the production `AppModule` + `configureApp`, see startHttpServer),
 * their clients in a child process each:
 * - `sse_fanout_p99_ms`: 1,000 concurrent SSE subscribers of one running batch — p99 delay from an event's append
 *   (its `timestamp`) to its receipt, and the batch's makespan with / without them;
 * - `status_p99_ms_under_load`: autocannon, 50 connections on `GET /parallel/status/{id}` while the batch runs —
 *   p99 latency, and the batch's makespan with / without the load.
 *
 * Each batch (720 nodes × 50 ms, concurrency 12, ideal 3 s) is submitted over HTTP with the agent runner's gate
 * closed, so its nodes hold their slots but do not run; the load is put in place (every SSE stream open, or
 * autocannon started); then the gate opens and the makespan runs from there until the batch completes. Runs without
 * load go before and after the loaded one, and their mean is the "without" figure.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { BatchOrchestrator } from '../../src/orchestrator/batch-orchestrator.service';
import type { TaskRecord } from '../../src/session/task.types';
import {
  checkCompleted,
  type Figure,
  figure,
  fmt,
  type HttpServer,
  meets,
  out,
  round,
  SleepingRunner,
  spawnChild,
  startHttpServer,
  submitHttp,
  table,
  writeCanvas,
} from './common';

const AGENT = 'oral-explanation';
const NODES = 720;
const NODE_MS = 50;
const CONCURRENCY = 12;
const IDEAL_MS = (NODES * NODE_MS) / CONCURRENCY;
const SSE_CLIENTS = 1_000;
const STATUS_CONNECTIONS = 50;

/** Something that loads the server during a run: put in place before the gate opens, ended after completion. */
interface Load<T> {
  start(server: HttpServer, taskId: string): Promise<void>;
  /** Called right before the gate opens. */
  go(): void;
  finish(): Promise<T>;
}

async function gatedRun<T>(
  server: HttpServer,
  runner: SleepingRunner,
  vault: string,
  name: string,
  nodes: number,
  load?: Load<T>,
): Promise<{ ms: number; task: TaskRecord; load?: T }> {
  const canvas = writeCanvas(vault, `http/${name}.canvas`, nodes);
  runner.closeGate();
  const taskId = await submitHttp(server.url, {
    canvas_path: canvas.relPath,
    groups: [{ group_id: 1, agent_type: AGENT, node_ids: canvas.nodeIds }],
  });
  await load?.start(server, taskId);
  load?.go();
  const t0 = performance.now();
  runner.open();
  const task = await server.app.get(BatchOrchestrator).waitForCompletion(taskId);
  const ms = performance.now() - t0;
  const result = await load?.finish();
  checkCompleted([task], `${name}`);
  return { ms, task, load: result };
}

/** Without load before and after the loaded run; returns both without-runs and the loaded one. */
async function compare<T>(root: string, label: string, load: Load<T>) {
  const vault = path.join(root, `vault-${label}`);
  mkdirSync(vault, { recursive: true });
  const runner = new SleepingRunner(() => NODE_MS);
  const server = await startHttpServer(vault, path.join(root, `data-${label}`), runner, {
    GLOBAL_MAX_CONCURRENT: String(CONCURRENCY),
  });
  try {
    await gatedRun(server, runner, vault, 'warmup', 60);
    const before = await gatedRun(server, runner, vault, 'without-1', NODES);
    const loaded = await gatedRun(server, runner, vault, 'with', NODES, load);
    const after = await gatedRun(server, runner, vault, 'without-2', NODES);
    const withoutMs = (before.ms + after.ms) / 2;
    return { withoutMs, withoutRuns: [before.ms, after.ms], withMs: loaded.ms, load: loaded.load! };
  } finally {
    await server.close();
  }
}

function makespanRows(c: { withoutRuns: number[]; withMs: number; withoutMs: number }, what: string) {
  return [
    [`makespan without ${what} ms (before / after)`, c.withoutRuns.map((x) => fmt(x, 0)).join(' / ')],
    [`makespan with ${what} ms`, fmt(c.withMs, 0)],
    ['makespan with / without', fmt(c.withMs / c.withoutMs, 3)],
    ['ideal ms', fmt(IDEAL_MS, 0)],
  ];
}

// ---------------------------------------------------------------------------------------------------------------

interface SseResult {
  type: 'result';
  clients: number;
  opened: number;
  errors: number;
  streams_with_session_completed: number;
  events_received: number;
  events_counted: number;
  delay_ms: { p50: number; p90: number; p99: number; max: number | null; mean: number | null };
}

function sseLoad(): Load<SseResult> {
  let child: ReturnType<typeof spawnChild> | undefined;
  return {
    async start(server, taskId) {
      child = spawnChild(path.join(__dirname, 'sse-clients.child.ts'), [
        server.url,
        taskId,
        String(SSE_CLIENTS),
      ]);
      const ready = await child.next<{ type: 'ready'; opened: number; errors: number }>('ready', 120_000);
      if (ready.opened !== SSE_CLIENTS) {
        throw new Error(`sse-fanout: only ${ready.opened} of ${SSE_CLIENTS} streams opened`);
      }
    },
    go() {
      child!.send({ type: 'measure', from: Date.now() });
    },
    async finish() {
      const r = await child!.next<SseResult>('result', 120_000);
      await child!.exited;
      return r;
    },
  };
}

export async function benchSseFanout(root: string): Promise<Record<string, Figure>> {
  out(
    `sse-fanout: ${SSE_CLIENTS.toLocaleString('en')} SSE subscribers (child process) on a ${NODES}-node × ${NODE_MS} ms batch, with / without …`,
  );
  const c = await compare(root, 'sse', sseLoad());
  const r = c.load;
  const ratio = c.withMs / c.withoutMs;
  const makespanTarget = { max: 1.05 };
  const allReceived = r.streams_with_session_completed === SSE_CLIENTS && r.errors === 0;
  out(
    table([
      ['figure', 'value'],
      [
        'delay append → receipt p50 / p90 / p99 / max ms',
        [r.delay_ms.p50, r.delay_ms.p90, r.delay_ms.p99, r.delay_ms.max].map((x) => fmt(x, 0)).join(' / '),
      ],
      ['events received (all streams) / counted', `${r.events_received} / ${r.events_counted}`],
      ['streams that got session_completed', `${r.streams_with_session_completed} / ${SSE_CLIENTS}`],
      ...makespanRows(c, 'subscribers'),
    ]),
  );
  const notes: string[] = [];
  if (!allReceived)
    notes.push(
      `${SSE_CLIENTS - r.streams_with_session_completed} stream(s) did not get session_completed, ${r.errors} error(s)`,
    );
  if (!meets(ratio, makespanTarget))
    notes.push(`makespan with / without ${fmt(ratio, 3)} misses its target ≤ 1.05`);
  return {
    sse_fanout_p99_ms: figure(
      'sse-fanout',
      r.delay_ms.p99,
      'ms',
      { max: 100 },
      {
        pass: allReceived && meets(ratio, makespanTarget),
        beside: {
          makespan_with_to_without: round(ratio, 3),
          p50_ms: r.delay_ms.p50,
        },
        note: notes.length ? notes.join('; ') : undefined,
        details: {
          clients: SSE_CLIENTS,
          clients_in: 'a child process (node:http, one socket per stream)',
          batch_nodes: NODES,
          node_ms: NODE_MS,
          concurrency: CONCURRENCY,
          ideal_ms: IDEAL_MS,
          makespan_with_ms: round(c.withMs, 1),
          makespan_without_ms: round(c.withoutMs, 1),
          makespan_without_runs_ms: c.withoutRuns.map((x) => round(x, 1)),
          makespan_with_to_without: {
            value: round(ratio, 4),
            target: makespanTarget,
            pass: meets(ratio, makespanTarget),
          },
          delay_ms: r.delay_ms,
          events_received: r.events_received,
          events_counted: r.events_counted,
          streams_with_session_completed: r.streams_with_session_completed,
          errors: r.errors,
        },
      },
    ),
  };
}

// ---------------------------------------------------------------------------------------------------------------

interface StatusResult {
  type: 'result';
  requests: number;
  requests_per_s: number;
  status_2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number; mean: number };
  [key: string]: unknown;
}

function statusLoad(): Load<StatusResult> {
  let child: ReturnType<typeof spawnChild> | undefined;
  return {
    async start(server, taskId) {
      child = spawnChild(path.join(__dirname, 'status-load.child.ts'), [
        server.url,
        taskId,
        String(STATUS_CONNECTIONS),
      ]);
      await child.next('ready', 60_000);
    },
    go() {},
    async finish() {
      child!.send({ type: 'stop' });
      const r = await child!.next<StatusResult>('result', 60_000);
      await child!.exited;
      return r;
    },
  };
}

export async function benchStatusLoad(root: string): Promise<Record<string, Figure>> {
  out(
    `status-load: autocannon (child process), ${STATUS_CONNECTIONS} connections on GET /parallel/status while a ${NODES}-node × ${NODE_MS} ms batch runs, with / without …`,
  );
  const c = await compare(root, 'status', statusLoad());
  const r = c.load;
  const ratio = c.withMs / c.withoutMs;
  out(
    table([
      ['figure', 'value'],
      [
        'latency p50 / p90 / p99 / max ms',
        [r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.max]
          .map((x) => fmt(x, 0))
          .join(' / '),
      ],
      ['requests (2xx / non-2xx / errors)', `${r.requests} (${r.status_2xx} / ${r.non2xx} / ${r.errors})`],
      ['requests/s', fmt(r.requests_per_s, 0)],
      ...makespanRows(c, 'load'),
    ]),
  );
  const clean = r.non2xx === 0 && r.errors === 0 && r.timeouts === 0;
  return {
    status_p99_ms_under_load: figure(
      'status-load',
      r.latency_ms.p99,
      'ms',
      { max: 50 },
      {
        pass: clean,
        beside: { makespan_with_to_without: round(ratio, 3), requests_per_s: round(r.requests_per_s, 0) },
        note: clean ? undefined : `${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`,
        details: {
          connections: STATUS_CONNECTIONS,
          load_in: 'a child process running autocannon',
          batch_nodes: NODES,
          node_ms: NODE_MS,
          concurrency: CONCURRENCY,
          ideal_ms: IDEAL_MS,
          makespan_with_ms: round(c.withMs, 1),
          makespan_without_ms: round(c.withoutMs, 1),
          makespan_without_runs_ms: c.withoutRuns.map((x) => round(x, 1)),
          makespan_with_to_without: round(ratio, 4),
          autocannon: { ...r, type: undefined },
        },
      },
    ),
  };
}
