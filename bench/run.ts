/**
 * canvas-batch benchmark (`npm run bench`).
 *
 * (a) Orchestrator overhead: 10 canvases × 1,000 text nodes, a zero-latency agent, 10 batches submitted at once
 *     through the real `BatchOrchestrator` in a Nest application context (real SQLite file, real event log, real
 *     canvas writes), side by side with a bare `Sema(12)` loop over the same 10,000 agent calls.
 * (b) Scheduling quality: 100 nodes at 1,000 ms agent latency, maxConcurrent 12 / globalMaxConcurrent 12 → makespan
 *     against the ideal ceil(100 / 12) × 1 s.
 *
 * (c) Resume after a restart; (d) canvas size (see bench/README.md).
 * (f) Learning-memory drain (bench/perf/memory-drain.ts): 10,000 pending events into Neo4j (NEO4J_URI) and the
 *     embedded store.
 * (e) Rate-limited provider: 200 nodes through the real LLM runner against the fake provider (capacity 8,
 *     400–1200 ms, Retry-After 1 s), GLOBAL_MAX_CONCURRENT 12, adaptive concurrency on and off (bench/llm-provider.ts).
 * (g) Local model: nodes/s and per-node latency of the local provider (a real GGUF model through llama.cpp) at 1, 2
 *     and 4 parallel sequences (bench/local-model.ts; also writes bench/results/local-model.json).
 * `canvas-view` (bench/canvas-view.ts): frames per second of the dashboard's canvas view panning a 5,000-node canvas in
 *     headless Chromium, culling on and off, and a 500-node canvas (also writes bench/results/canvas-view.json).
 * (i) Result cache: one node's hit path beside a miss and the cache off, offline agent at 0 ms, SQLite (and Redis with
 *     REDIS_URL) (bench/result-cache.ts; also writes bench/results/result-cache.json).
 * `output-deltas` (bench/output-deltas.ts): makespan of a streaming batch (AGENT_STREAM=true) with 0 and with 100
 *     `?include=deltas` subscribers that read nothing, side by side (also writes bench/results/output-deltas.json).
 * `distributed` (bench/perf/distributed.ts): the distributed engine on Redis + BullMQ beside the embedded one, as real
 *     service processes on a private redis-server (makespan with 1–3 processes, cross-process cancel and SSE, overhead).
 * The performance issue's figures (makespan ratios, fairness, memory, SSE fan-out, status under load) live in
 * bench/perf/, one file per section; section (a) also yields `overhead_us_per_node` and `throughput_nodes_per_s`.
 *
 * `npm run bench` runs every section; `npm run bench -- makespan fairness` runs the sections whose name starts with
 * one of the arguments (see SECTIONS). Prints tables and writes bench/results/latest.json plus a timestamped copy.
 */
import { type DynamicModule, type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { Sema } from 'async-sema';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { AgentNodeInput } from '../src/agent/agent-runner';
import { OfflineAgentRunner } from '../src/agent/offline-agent-runner';
import { CanvasService } from '../src/canvas/canvas.service';
import type { CanvasBatchOptions } from '../src/orchestrator/orchestrator.module-definition';
import { BatchOrchestrator } from '../src/orchestrator/batch-orchestrator.service';
import { MemoryOutbox } from '../src/memory/memory-outbox';
import { OrchestratorModule } from '../src/orchestrator/orchestrator.module';
import type { TaskRecord } from '../src/session/task.types';
import { EventLog } from '../src/session/event-log';
import { TaskStore } from '../src/session/task-store';
import { benchProvider, E_CAPACITY, E_GLOBAL, E_LATENCY, E_NODES, E_RETRY_AFTER_S } from './llm-provider';
import { runCanvasViewBench } from './canvas-view';
import { runLocalModelBench } from './local-model';
import { runResultCacheBench } from './result-cache';
import { runPlanningBench } from './planning';
import { runOutputDeltasBench } from './output-deltas';
import { sectionFilter } from './perf/common';
import { benchDistributed } from './perf/distributed';
import { benchMemoryDrain, E_EVENTS, printMemoryDrain } from './perf/memory-drain';
import { benchFairness } from './perf/fairness';
import { benchSseFanout, benchStatusLoad } from './perf/http-load';
import { benchMakespanHetero, benchMakespanUniform } from './perf/makespan';
import { benchRss100k, benchRssBatches } from './perf/memory';
import { overheadFigures } from './perf/overhead';
import { printFigures, writeResults } from './perf/report';

// ---------------------------------------------------------------------------------------------------------------
// Parameters

const AGENT = 'oral-explanation';
const CONCURRENCY = 12;
const A_CANVASES = 10;
const A_NODES_PER_CANVAS = 1_000;
const WARMUP_NODES = 200;
const B_NODES = 100;
const B_LATENCY_MS = 1_000;
/** Each batch's own deadline: generous, but a hung run still ends well inside the 5-minute budget. */
const BATCH_TIMEOUT_MS = 240_000;

/** Grid of the generated canvases (Obsidian-like text nodes). */
const GRID_COLUMNS = 40;
const NODE_WIDTH = 400;
const NODE_HEIGHT = 200;
const GRID_STEP_X = 480;
const GRID_STEP_Y = 280;

// ---------------------------------------------------------------------------------------------------------------
// Output helpers (lint forbids console.*)

const out = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function fmt(n: number, digits = 2): string {
  return round(n, digits).toLocaleString('en-US', { maximumFractionDigits: digits });
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]): string =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0]), sep, ...rows.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Canvas generation

const TOPICS_EN: [string, string[]][] = [
  [
    'Photosynthesis',
    [
      'Plants turn light energy into chemical energy.',
      'It happens in the chloroplasts.',
      'Carbon dioxide and water become glucose and oxygen.',
    ],
  ],
  [
    'Newton’s second law',
    [
      'Force equals mass times acceleration.',
      'A larger net force gives a larger acceleration.',
      'The acceleration points along the net force.',
    ],
  ],
  [
    'Supply and demand',
    [
      'Prices move towards the point where supply meets demand.',
      'A shortage pushes prices up.',
      'A surplus pushes prices down.',
    ],
  ],
  [
    'Mitochondria',
    [
      'Mitochondria produce most of the cell’s ATP.',
      'They have their own DNA.',
      'Cellular respiration happens across their inner membrane.',
    ],
  ],
  [
    'The French Revolution',
    [
      'It began in 1789 with the storming of the Bastille.',
      'It ended the absolute monarchy.',
      'Its ideals spread across Europe.',
    ],
  ],
  [
    'Entropy',
    [
      'Entropy measures the number of microstates of a system.',
      'In an isolated system it never decreases.',
      'It explains why heat flows from hot to cold.',
    ],
  ],
];
const TOPICS_ZH: [string, string[]][] = [
  ['导数', ['导数描述函数在某一点的变化率。', '它是切线的斜率。', '求导是微积分的基本运算。']],
  ['光合作用', ['植物利用光能把二氧化碳和水转化为葡萄糖。', '这一过程发生在叶绿体中。', '同时释放出氧气。']],
];

/** The text of node `i` of canvas `c`: a heading and a few sentences; every 10th node is in Chinese. */
function nodeText(c: number, i: number): string {
  const zh = i % 10 === 9;
  const topics = zh ? TOPICS_ZH : TOPICS_EN;
  const [title, sentences] = topics[(c * 7 + i) % topics.length];
  return `# ${title} ${c + 1}.${i + 1}\n${sentences.join(zh ? '' : ' ')}`;
}

/** A 16-hex-character id, Obsidian's shape. */
function obsidianId(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);
}

interface GeneratedCanvas {
  relPath: string;
  nodeIds: string[];
  inputs: AgentNodeInput[];
}

/** Writes a valid JSON Canvas of `count` text nodes laid out on a grid, tab-indented like Obsidian. */
function writeCanvas(vault: string, relPath: string, c: number, count: number): GeneratedCanvas {
  const nodes = Array.from({ length: count }, (_, i) => ({
    id: obsidianId(relPath, i),
    type: 'text',
    text: nodeText(c, i),
    x: (i % GRID_COLUMNS) * GRID_STEP_X,
    y: Math.floor(i / GRID_COLUMNS) * GRID_STEP_Y,
    width: NODE_WIDTH,
    height: NODE_HEIGHT,
  }));
  const abs = path.join(vault, relPath);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, `${JSON.stringify({ nodes, edges: [] }, null, '\t')}\n`);
  return {
    relPath,
    nodeIds: nodes.map((n) => n.id),
    inputs: nodes.map((n) => ({ canvasPath: relPath, nodeId: n.id, nodeType: 'text', content: n.text })),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Nest application context

@Module({})
class BenchModule {
  static with(options: CanvasBatchOptions): DynamicModule {
    return {
      module: BenchModule,
      imports: [EventEmitterModule.forRoot(), OrchestratorModule.forRoot(options)],
    };
  }
}

/**
 * Lets the detached (`async: true`, setImmediate-scheduled) `agent.completed` listeners run before the context
 * closes: closing right after `waitForCompletion` otherwise closes SQLite under them and the last memory-outbox
 * events are lost ("The database connection is not open") — see bench/README.md.
 */
async function drainDetachedListeners(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function createContext(options: CanvasBatchOptions): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(BenchModule.with(options), {
    logger: ['error', 'warn'],
  });
  await app.init();
  return app;
}

// ---------------------------------------------------------------------------------------------------------------
// Measurement

interface Sample {
  wallMs: number;
  cpuMs: number;
}

async function measure<T>(fn: () => Promise<T>): Promise<Sample & { value: T }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, value };
}

/** The bare baseline: `Sema(12)` over the same agent calls, nothing else. */
async function bareLoop(runner: OfflineAgentRunner, inputs: readonly AgentNodeInput[]): Promise<number> {
  const sema = new Sema(CONCURRENCY);
  let bytes = 0;
  await Promise.all(
    inputs.map(async (node) => {
      await sema.acquire();
      try {
        const { markdown } = await runner.run({
          agentType: AGENT,
          node,
          signal: new AbortController().signal,
        });
        bytes += markdown.length;
      } finally {
        sema.release();
      }
    }),
  );
  return bytes;
}

/** Submits one single-group batch per canvas, all at once, and waits for every one to finish. */
async function orchestrate(
  orchestrator: BatchOrchestrator,
  canvases: readonly GeneratedCanvas[],
): Promise<TaskRecord[]> {
  const submitted = await Promise.all(
    canvases.map((c) =>
      orchestrator.submit({
        canvasPath: c.relPath,
        groups: [{ groupId: 1, agentType: AGENT, nodeIds: c.nodeIds }],
        maxConcurrent: CONCURRENCY,
        timeoutMs: BATCH_TIMEOUT_MS,
      }),
    ),
  );
  return Promise.all(submitted.map(({ task }) => orchestrator.waitForCompletion(task.taskId)));
}

function checkTasks(tasks: readonly TaskRecord[], label: string): void {
  const bad = tasks.filter((t) => t.status !== 'completed');
  if (bad.length) {
    throw new Error(
      `${label}: ${bad.length} task(s) did not complete: ${bad.map((t) => `${t.taskId} ${t.status} ${t.errorMessage ?? ''}`).join('; ')}`,
    );
  }
}

/** Counts nodes and edges of the canvases on disk, to check every result was placed. */
function canvasCounts(vault: string, canvases: readonly GeneratedCanvas[]): { nodes: number; edges: number } {
  let nodes = 0;
  let edges = 0;
  for (const c of canvases) {
    const doc = JSON.parse(readFileSync(path.join(vault, c.relPath), 'utf8')) as {
      nodes: unknown[];
      edges: unknown[];
    };
    nodes += doc.nodes.length;
    edges += doc.edges.length;
  }
  return { nodes, edges };
}

// ---------------------------------------------------------------------------------------------------------------
// Benchmarks

async function benchOverhead(root: string) {
  const vault = path.join(root, 'vault-a');
  const dataDir = path.join(root, 'data-a');
  mkdirSync(vault, { recursive: true });
  const warm = writeCanvas(vault, 'warmup/warmup.canvas', 99, WARMUP_NODES);
  const canvases = Array.from({ length: A_CANVASES }, (_, c) =>
    writeCanvas(vault, `bench/canvas-${String(c + 1).padStart(2, '0')}.canvas`, c, A_NODES_PER_CANVAS),
  );
  const inputs = canvases.flatMap((c) => c.inputs);
  const total = inputs.length;
  const runner = new OfflineAgentRunner(0);

  const app = await createContext({
    vaultRoot: vault,
    dataDir,
    globalMaxConcurrent: CONCURRENCY,
    agentRunner: runner,
  });
  try {
    const orchestrator = app.get(BatchOrchestrator);
    const canvasService = app.get(CanvasService);

    // Warm-up: both paths once on a small canvas, so JIT and first-use costs do not land in the measurement.
    await bareLoop(runner, warm.inputs);
    checkTasks(await orchestrate(orchestrator, [warm]), 'warm-up');
    await canvasService.flush();
    const statsBefore = canvasService.writeStats();

    const bare1 = await measure(() => bareLoop(runner, inputs));
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const orch = await measure(() => orchestrate(orchestrator, canvases));
    lag.disable();
    await canvasService.flush();
    const bare2 = await measure(() => bareLoop(runner, inputs));
    checkTasks(orch.value, '(a)');
    await drainDetachedListeners();
    const outbox = await app.get(MemoryOutbox).counts();

    const statsAfter = canvasService.writeStats();
    const writes = statsAfter.writes - statsBefore.writes;
    const bytesWritten = statsAfter.bytesWritten - statsBefore.bytesWritten;
    const onDisk = canvasCounts(vault, canvases);
    const bareWallMs = (bare1.wallMs + bare2.wallMs) / 2;
    const bareCpuMs = (bare1.cpuMs + bare2.cpuMs) / 2;
    const metrics = orch.value.map((t) => t.metrics);
    const efficiencies = metrics.map((m) => m?.parallel_efficiency ?? 0);

    return {
      nodes: total,
      canvases: A_CANVASES,
      nodes_per_canvas: A_NODES_PER_CANVAS,
      agent: AGENT,
      max_concurrent: CONCURRENCY,
      global_max_concurrent: CONCURRENCY,
      warmup_nodes: WARMUP_NODES,
      orchestrator: {
        wall_ms: round(orch.wallMs, 1),
        cpu_ms: round(orch.cpuMs, 1),
        nodes_per_s: round(total / (orch.wallMs / 1000), 1),
        us_per_node: round((orch.wallMs * 1000) / total, 1),
        cpu_us_per_node: round((orch.cpuMs * 1000) / total, 1),
        event_loop_delay_ms: {
          p50: round(lag.percentile(50) / 1e6, 1),
          p99: round(lag.percentile(99) / 1e6, 1),
          max: round(lag.max / 1e6, 1),
        },
        tasks_completed: orch.value.filter((t) => t.status === 'completed').length,
        task_duration_s: {
          min: Math.min(...metrics.map((m) => m?.total_duration_seconds ?? 0)),
          max: Math.max(...metrics.map((m) => m?.total_duration_seconds ?? 0)),
        },
        task_parallel_efficiency: { min: Math.min(...efficiencies), max: Math.max(...efficiencies) },
        task_average_duration_per_node_s: {
          min: Math.min(...metrics.map((m) => m?.average_duration_per_node ?? 0)),
          max: Math.max(...metrics.map((m) => m?.average_duration_per_node ?? 0)),
        },
        task_peak_concurrent: Math.max(...metrics.map((m) => m?.peak_concurrent ?? 0)),
      },
      bare_loop: {
        runs_wall_ms: [round(bare1.wallMs, 1), round(bare2.wallMs, 1)],
        wall_ms: round(bareWallMs, 1),
        cpu_ms: round(bareCpuMs, 1),
        nodes_per_s: round(total / (bareWallMs / 1000), 1),
        us_per_node: round((bareWallMs * 1000) / total, 1),
      },
      ratio_orchestrator_to_bare_time: round(orch.wallMs / bareWallMs, 1),
      overhead_us_per_node: round(((orch.wallMs - bareWallMs) * 1000) / total, 1),
      overhead_cpu_us_per_node: round(((orch.cpuMs - bareCpuMs) * 1000) / total, 1),
      canvas_writes: {
        writes,
        bytes_written: bytesWritten,
        writes_per_result: round(writes / total, 4),
        results_per_write: round(total / Math.max(1, writes), 2),
        bytes_written_per_result: Math.round(bytesWritten / total),
      },
      canvases_on_disk: { ...onDisk, expected_nodes: total * 2, expected_edges: total },
      /** agent.completed + batch.started rows of warm-up and (a), after the detached listeners drained. */
      memory_outbox_rows: {
        actual: outbox.pending + outbox.delivered,
        expected: WARMUP_NODES + total + 1 + A_CANVASES,
      },
    };
  } finally {
    await drainDetachedListeners();
    await app.close();
  }
}

async function benchMakespan(root: string) {
  const vault = path.join(root, 'vault-b');
  const dataDir = path.join(root, 'data-b');
  mkdirSync(vault, { recursive: true });
  const canvas = writeCanvas(vault, 'latency/latency.canvas', 42, B_NODES);
  const app = await createContext({
    vaultRoot: vault,
    dataDir,
    globalMaxConcurrent: CONCURRENCY,
    agentLatencyMs: B_LATENCY_MS,
  });
  try {
    const orchestrator = app.get(BatchOrchestrator);
    const t0 = performance.now();
    const [task] = await orchestrate(orchestrator, [canvas]);
    const makespanMs = performance.now() - t0;
    checkTasks([task], '(b)');
    const idealMs = Math.ceil(B_NODES / CONCURRENCY) * B_LATENCY_MS;
    return {
      nodes: B_NODES,
      agent_latency_ms: B_LATENCY_MS,
      max_concurrent: CONCURRENCY,
      global_max_concurrent: CONCURRENCY,
      makespan_ms: round(makespanMs, 1),
      ideal_ms: idealMs,
      makespan_to_ideal: round(makespanMs / idealMs, 4),
      status: task.status,
      performance_metrics: task.metrics,
    };
  } finally {
    await drainDetachedListeners();
    await app.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// (d) Canvas size: a 1,000-node batch on a 5,000-node canvas against the same batch on a canvas of just its nodes

const D_BATCH = 1_000;
const D_CANVAS = 5_000;

async function benchCanvasSize(root: string) {
  const vault = path.join(root, 'vault-d');
  mkdirSync(vault, { recursive: true });
  const big = writeCanvas(vault, 'size/big.canvas', 11, D_CANVAS);
  const small = writeCanvas(vault, 'size/small.canvas', 12, D_BATCH);
  const runner = new OfflineAgentRunner(0);
  const app = await createContext({
    vaultRoot: vault,
    dataDir: path.join(root, 'data-d'),
    globalMaxConcurrent: CONCURRENCY,
    agentRunner: runner,
  });
  try {
    const orchestrator = app.get(BatchOrchestrator);
    const canvasService = app.get(CanvasService);
    const one = async (canvas: GeneratedCanvas, nodeIds: string[]) => {
      const size = statSync(path.join(vault, canvas.relPath)).size;
      const before = canvasService.writeStats();
      const run = await measure(() => orchestrate(orchestrator, [{ ...canvas, nodeIds }]));
      checkTasks(run.value, '(d)');
      await canvasService.flush();
      const after = canvasService.writeStats();
      const writes = after.writes - before.writes;
      const bytes = after.bytesWritten - before.bytesWritten;
      return {
        canvas_nodes: canvas.nodeIds.length,
        canvas_bytes_before: size,
        batch_nodes: nodeIds.length,
        wall_ms: round(run.wallMs, 1),
        nodes_per_s: round(nodeIds.length / (run.wallMs / 1000), 1),
        canvas_writes: writes,
        bytes_written: bytes,
        bytes_written_per_canvas_size: round(bytes / size, 2),
        bytes_written_per_result: Math.round(bytes / nodeIds.length),
      };
    };
    const onSmall = await one(small, small.nodeIds);
    const onBig = await one(big, big.nodeIds.slice(0, D_BATCH));
    return {
      small_canvas: onSmall,
      big_canvas: onBig,
      nodes_per_s_big_to_small: round(onBig.nodes_per_s / onSmall.nodes_per_s, 3),
    };
  } finally {
    await drainDetachedListeners();
    await app.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// (c) Resume after a restart: a 10,000-node task with half of its nodes done

const C_NODES = 10_000;

/** Waits (polling on setImmediate) until `condition` holds. */
async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > end) throw new Error('bench: condition not met in time');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

async function benchResume(root: string) {
  const vault = path.join(root, 'vault-c');
  const dataDir = path.join(root, 'data-c');
  const emptyDataDir = path.join(root, 'data-c-empty');
  mkdirSync(vault, { recursive: true });
  const canvas = writeCanvas(vault, 'resume/resume.canvas', 7, C_NODES);
  // agents that take a minute: nothing completes while we measure, and shutdown does not wait for them
  const options = {
    vaultRoot: vault,
    globalMaxConcurrent: CONCURRENCY,
    agentLatencyMs: 60_000,
    shutdownGraceMs: 0,
  };

  // The state a crash leaves: a running task, half of its nodes with a stored result and event.
  const seed = await createContext({ ...options, dataDir });
  const taskId = '00000000-0000-4000-8000-00000000c0de';
  try {
    const store = seed.get(TaskStore);
    const now = new Date();
    await store.createTask({
      taskId,
      canvasPath: canvas.relPath,
      maxConcurrent: CONCURRENCY,
      timeoutMs: 3_600_000,
      groups: [{ groupId: 1, agentType: AGENT, nodeIds: canvas.nodeIds }],
      createdAt: now.toISOString(),
    });
    await store.transition(taskId, 'running', {
      startedAt: now.toISOString(),
      deadlineAt: new Date(now.getTime() + 3_600_000).toISOString(),
    });
    const done = canvas.nodeIds.slice(0, C_NODES / 2);
    await store.recordNodeResults(
      taskId,
      done.map((nodeId) => ({
        groupIndex: 0,
        nodeId,
        outcome: 'completed' as const,
        filePath: `resume/resume-explanations/${nodeId}.md`,
        fileSize: 100,
        durationMs: 5,
        inputTokens: 0,
        outputTokens: 0,
        finishedAt: now.toISOString(),
      })),
      done.map((nodeId) => ({
        type: 'task_completed',
        timestamp: now.toISOString(),
        data: { node_id: nodeId },
      })),
    );
  } finally {
    await seed.close();
  }

  // baseline: the same start-up with nothing to resume
  const empty = await measure(async () => {
    const app = await createContext({ ...options, dataDir: emptyDataDir });
    return app;
  });
  await empty.value.close();

  // resume: from the start of the process's application until the first remaining node runs again
  const resumed = await measure(async () => {
    const app = await createContext({ ...options, dataDir });
    const orchestrator = app.get(BatchOrchestrator);
    await until(async () => ((await orchestrator.live(taskId))?.runningNodes ?? 0) > 0);
    return app;
  });
  const events = await resumed.value.get(EventLog).after(taskId, C_NODES / 2 - 1, 10);
  const resumedEvent = events.find((e) => e.type === 'resumed');
  await resumed.value.close();
  if (!resumedEvent) throw new Error('bench (c): no resumed event');
  return {
    nodes: C_NODES,
    nodes_done_before_restart: C_NODES / 2,
    startup_ms_nothing_to_resume: round(empty.wallMs, 1),
    startup_to_first_resumed_node_ms: round(resumed.wallMs, 1),
    resume_cost_ms: round(resumed.wallMs - empty.wallMs, 1),
    resumed_event: resumedEvent.data,
  };
}

// ---------------------------------------------------------------------------------------------------------------

function environment() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    os: `${os.type()} ${os.release()} (${os.platform()}/${os.arch()})`,
    cpu_count: cpus.length,
    cpu_model: cpus[0]?.model ?? 'unknown',
    total_memory_gb: round(os.totalmem() / 1024 ** 3, 1),
    loadavg_at_start: os.loadavg().map((l) => round(l, 2)),
  };
}

/** Sections of `npm run bench -- <name or prefix> …`, in run order; with no argument every one runs. */
const SECTIONS = [
  'overhead',
  'makespan',
  'canvas-size',
  'resume',
  'llm-provider',
  'local-model',
  'canvas-view',
  'result-cache',
  'output-deltas',
  'makespan-uniform',
  'makespan-hetero',
  'fairness',
  'rss-100k',
  'rss-batches',
  'sse-fanout',
  'status-load',
  'memory-drain',
  'distributed',
  'planning',
];

async function main(): Promise<void> {
  const want = sectionFilter(process.argv.slice(2), SECTIONS);
  const env = environment();
  const root = mkdtempSync(path.join(os.tmpdir(), 'canvas-batch-bench-'));
  const started = performance.now();
  const results: Record<string, unknown> = {
    benchmark: 'canvas-batch',
    environment: env,
    total_bench_s: 0,
    sections: SECTIONS.filter(want),
  };
  try {
    out(`canvas-batch benchmark — ${env.date}, Node ${env.node}, ${env.cpu_count} CPU(s), ${env.os}`);
    if (want('overhead')) {
      out(
        `(a) ${A_CANVASES} × ${A_NODES_PER_CANVAS} nodes, zero-latency agent, warm-up ${WARMUP_NODES} nodes …`,
      );
      const a = await benchOverhead(root);
      results.a_overhead = a;
      printOverhead(a);
      Object.assign(results, overheadFigures(a));
    }
    if (want('memory-drain')) {
      out(`(f) drain ${E_EVENTS.toLocaleString('en')} pending learning-memory events …`);
      const f = await benchMemoryDrain(root);
      results.f_memory_drain = f;
      printMemoryDrain(f);
    }
    if (want('makespan')) {
      out(`(b) ${B_NODES} nodes at ${B_LATENCY_MS} ms agent latency …`);
      const b = await benchMakespan(root);
      results.b_makespan = b;
      printMakespan(b);
    }
    if (want('canvas-size')) {
      out(`(d) a ${D_BATCH}-node batch on a ${D_CANVAS}-node canvas and on a ${D_BATCH}-node canvas …`);
      const d = await benchCanvasSize(root);
      results.d_canvas_size = d;
      printCanvasSize(d);
    }
    if (want('resume')) {
      out(`(c) resume a ${C_NODES.toLocaleString('en')}-node task with half of its nodes done …`);
      const c = await benchResume(root);
      results.c_resume = c;
      printResume(c);
    }
    if (want('llm-provider')) {
      out(
        `(e) ${E_NODES} nodes against a provider of capacity ${E_CAPACITY}, ${E_LATENCY.min}–${E_LATENCY.max} ms, adaptive on / off …`,
      );
      const e = await benchProvider(root);
      results.e_rate_limited_provider = {
        nodes: E_NODES,
        provider_capacity: E_CAPACITY,
        latency_ms: E_LATENCY,
        retry_after_s: E_RETRY_AFTER_S,
        global_max_concurrent: E_GLOBAL,
        ...e,
      };
      printProvider(e);
    }
    if (want('local-model')) {
      out('(g) the local provider on SmolLM2-135M-Instruct at 1, 2 and 4 parallel sequences …');
      results.g_local_model = await runLocalModelBench();
    }
    if (want('canvas-view')) {
      out('(h) the canvas view panning a 5,000-node canvas in headless Chromium …');
      results.h_canvas_view = await runCanvasViewBench();
    }
    if (want('result-cache')) results.i_result_cache = await runResultCacheBench();
    if (want('output-deltas')) {
      out('streaming text: a batch with 0 and with 100 delta subscribers that read nothing …');
      results.output_deltas = await runOutputDeltasBench();
    }
    if (want('makespan-uniform')) Object.assign(results, await benchMakespanUniform(root));
    if (want('makespan-hetero')) Object.assign(results, await benchMakespanHetero(root));
    if (want('fairness')) Object.assign(results, await benchFairness(root));
    if (want('rss-100k')) Object.assign(results, await benchRss100k(root));
    if (want('rss-batches')) Object.assign(results, await benchRssBatches(root));
    if (want('sse-fanout')) Object.assign(results, await benchSseFanout(root));
    if (want('status-load')) Object.assign(results, await benchStatusLoad(root));
    if (want('distributed')) Object.assign(results, await benchDistributed(root));
    if (want('planning')) results.planning = await runPlanningBench();

    results.environment = { ...env, loadavg_at_end: os.loadavg().map((l) => round(l, 2)) };
    results.total_bench_s = round((performance.now() - started) / 1000, 1);
    out();
    printFigures(results);
    const written = writeResults(path.join(__dirname, 'results'), results, SECTIONS);
    out();
    out(`wrote ${written.join(' and ')} (${String(results.total_bench_s)} s in total)`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function printOverhead(a: Awaited<ReturnType<typeof benchOverhead>>): void {
  out();
  out('(a) overhead, 10,000 nodes, zero-latency agent, concurrency 12');
  out(
    table([
      ['path', 'wall ms', 'nodes/s', 'µs/node', 'CPU ms', 'CPU µs/node'],
      [
        'bare Sema(12) loop (mean of 2)',
        fmt(a.bare_loop.wall_ms, 1),
        fmt(a.bare_loop.nodes_per_s, 0),
        fmt(a.bare_loop.us_per_node, 1),
        fmt(a.bare_loop.cpu_ms, 0),
        fmt((a.bare_loop.cpu_ms * 1000) / a.nodes, 1),
      ],
      [
        'orchestrator (10 batches)',
        fmt(a.orchestrator.wall_ms, 1),
        fmt(a.orchestrator.nodes_per_s, 0),
        fmt(a.orchestrator.us_per_node, 1),
        fmt(a.orchestrator.cpu_ms, 0),
        fmt(a.orchestrator.cpu_us_per_node, 1),
      ],
    ]),
  );
  out();
  out(
    table([
      ['figure', 'value'],
      ['orchestrator / bare (wall time)', `${fmt(a.ratio_orchestrator_to_bare_time, 1)}×`],
      ['overhead µs per node (wall)', fmt(a.overhead_us_per_node, 1)],
      ['overhead µs per node (CPU)', fmt(a.overhead_cpu_us_per_node, 1)],
      ['canvas writes (replacements)', fmt(a.canvas_writes.writes, 0)],
      ['results per canvas write', fmt(a.canvas_writes.results_per_write, 2)],
      ['canvas bytes written per result', fmt(a.canvas_writes.bytes_written_per_result, 0)],
      ['canvas bytes written in total (MB)', fmt(a.canvas_writes.bytes_written / 1e6, 1)],
      [
        'event-loop delay p99 / max (ms)',
        `${fmt(a.orchestrator.event_loop_delay_ms.p99, 1)} / ${fmt(a.orchestrator.event_loop_delay_ms.max, 1)}`,
      ],
      ['tasks completed', `${a.orchestrator.tasks_completed} / ${a.canvases}`],
      ['nodes / edges on disk', `${a.canvases_on_disk.nodes} / ${a.canvases_on_disk.edges}`],
      [
        'memory outbox rows (actual / expected)',
        `${a.memory_outbox_rows.actual} / ${a.memory_outbox_rows.expected}`,
      ],
    ]),
  );
}

function printMakespan(b: Awaited<ReturnType<typeof benchMakespan>>): void {
  out();
  out('(b) makespan, 100 nodes × 1,000 ms, maxConcurrent 12, globalMaxConcurrent 12');
  out(
    table([
      ['figure', 'value'],
      ['makespan ms', fmt(b.makespan_ms, 1)],
      ['ideal ms = ceil(100/12) × 1 s', fmt(b.ideal_ms, 0)],
      ['makespan / ideal', fmt(b.makespan_to_ideal, 3)],
      ['parallel_efficiency (task metrics)', String(b.performance_metrics?.parallel_efficiency ?? 'n/a')],
      ['peak_concurrent (task metrics)', String(b.performance_metrics?.peak_concurrent ?? 'n/a')],
      [
        'total_duration_seconds (task metrics)',
        String(b.performance_metrics?.total_duration_seconds ?? 'n/a'),
      ],
    ]),
  );
}

function printResume(c: Awaited<ReturnType<typeof benchResume>>): void {
  out();
  out('(c) resume after a restart, 10,000-node task, 5,000 done');
  out(
    table([
      ['figure', 'value'],
      ['start-up with nothing to resume (ms)', fmt(c.startup_ms_nothing_to_resume, 1)],
      ['start-up until the first remaining node runs (ms)', fmt(c.startup_to_first_resumed_node_ms, 1)],
      ['resume cost (ms)', fmt(c.resume_cost_ms, 1)],
    ]),
  );
}

function printCanvasSize(d: Awaited<ReturnType<typeof benchCanvasSize>>): void {
  out();
  out(`(d) canvas size: ${D_BATCH}-node batch, zero-latency agent`);
  out(
    table([
      ['canvas', 'nodes/s', 'canvas writes', 'bytes written / canvas size', 'bytes per result'],
      [
        `${D_BATCH} nodes (just the batch)`,
        fmt(d.small_canvas.nodes_per_s, 0),
        String(d.small_canvas.canvas_writes),
        fmt(d.small_canvas.bytes_written_per_canvas_size, 2),
        fmt(d.small_canvas.bytes_written_per_result, 0),
      ],
      [
        `${D_CANVAS} nodes`,
        fmt(d.big_canvas.nodes_per_s, 0),
        String(d.big_canvas.canvas_writes),
        fmt(d.big_canvas.bytes_written_per_canvas_size, 2),
        fmt(d.big_canvas.bytes_written_per_result, 0),
      ],
    ]),
  );
  out(`nodes/s on the 5,000-node canvas / on the 1,000-node canvas: ${fmt(d.nodes_per_s_big_to_small, 3)}`);
}

function printProvider(e: Awaited<ReturnType<typeof benchProvider>>): void {
  out();
  out(
    `(e) rate-limited provider: ${E_NODES} nodes, capacity ${E_CAPACITY}, ${E_LATENCY.min}–${E_LATENCY.max} ms, Retry-After ${E_RETRY_AFTER_S} s, GLOBAL_MAX_CONCURRENT ${E_GLOBAL}`,
  );
  out(
    table([
      [
        'adaptive concurrency',
        'status',
        'failed',
        'makespan s',
        'of capacity',
        '429s',
        'calls/node',
        'min limit',
      ],
      ...[e.adaptive, e.fixed].map((r) => [
        r.adaptive ? 'on (AIMD)' : 'off',
        r.status,
        String(r.failed_nodes),
        fmt(r.makespan_ms / 1000, 1),
        fmt(r.fraction_of_capacity, 3),
        String(r.rate_limited_429),
        fmt(r.attempts_per_node, 2),
        String(r.min_limit),
      ]),
    ]),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
