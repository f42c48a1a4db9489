/**
 * Shared helpers of the performance benchmarks (bench/perf/*): output, statistics, generated canvases, Nest
 * contexts and a real HTTP server, a sleeping agent runner, child processes, figures with targets, and the
 * section filter of `npm run bench -- <section> …`.
 */
import { type DynamicModule, type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from 'nestjs-pino';
import { AgentRunner, type AgentRunRequest, type AgentRunResult } from '../../src/agent/agent-runner';
import { OfflineAgentRunner } from '../../src/agent/offline-agent-runner';
import { AppModule } from '../../src/app.module';
import { configureApp } from '../../src/bootstrap';
import { loadAppConfig } from '../../src/config/app.config';
import type { CanvasBatchOptions } from '../../src/orchestrator/orchestrator.module-definition';
import type { BatchOrchestrator } from '../../src/orchestrator/batch-orchestrator.service';
import { OrchestratorModule } from '../../src/orchestrator/orchestrator.module';
import type { GroupSpec, TaskRecord } from '../../src/session/task.types';

// ---------------------------------------------------------------------------------------------------------------
// Output (lint forbids console.*)

export const out = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function fmt(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return 'n/a';
  return round(n, digits).toLocaleString('en-US', { maximumFractionDigits: digits });
}

/** A plain-text table; the first row is the header, the first column is left-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]): string =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0]), sep, ...rows.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics

/** Nearest-rank percentile of unsorted values (`p` in 0..100); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return percentileSorted(sorted, p);
}

export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Small seeded PRNG (mulberry32), shared with the tests: the same seed gives the same sequence everywhere. */
export { prng } from '../../test/support/prng';

/** A lognormal sampler with the given arithmetic mean and log-space σ: μ = ln(mean) − σ²/2 (Box–Muller). */
export function lognormal(random: () => number, mean: number, sigma: number): () => number {
  const mu = Math.log(mean) - (sigma * sigma) / 2;
  return () => {
    const u1 = Math.max(random(), Number.EPSILON);
    const u2 = random();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    return Math.exp(mu + sigma * z);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Generated canvases (Obsidian-like: tab-indented, text nodes on a grid, 16-hex ids)

const GRID_COLUMNS = 40;
const TOPICS = [
  ['Photosynthesis', 'Plants turn light energy into chemical energy in their chloroplasts.'],
  ['Newton’s second law', 'Force equals mass times acceleration, along the net force.'],
  ['Supply and demand', 'Prices move towards the point where supply meets demand.'],
  ['Mitochondria', 'Mitochondria produce most of the cell’s ATP and have their own DNA.'],
  ['Entropy', 'In an isolated system entropy never decreases; heat flows from hot to cold.'],
  ['导数', '导数描述函数在某一点的变化率，它是切线的斜率。'],
] as const;

export interface GeneratedCanvas {
  relPath: string;
  nodeIds: string[];
}

export function obsidianId(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);
}

/** Writes a valid JSON Canvas of `count` text nodes and returns its path and node ids. */
export function writeCanvas(vault: string, relPath: string, count: number): GeneratedCanvas {
  const nodes = Array.from({ length: count }, (_, i) => {
    const [title, sentence] = TOPICS[i % TOPICS.length];
    return {
      id: obsidianId(relPath, i),
      type: 'text',
      text: `# ${title} ${i + 1}\n${sentence}`,
      x: (i % GRID_COLUMNS) * 480,
      y: Math.floor(i / GRID_COLUMNS) * 280,
      width: 400,
      height: 200,
    };
  });
  const abs = path.join(vault, relPath);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, `${JSON.stringify({ nodes, edges: [] }, null, '\t')}\n`);
  return { relPath, nodeIds: nodes.map((n) => n.id) };
}

/** Splits node ids into groups of at most `size`, all with the same agent. */
export function groupsOf(nodeIds: readonly string[], agentType: string, size = 10_000): GroupSpec[] {
  const groups: GroupSpec[] = [];
  for (let i = 0; i < nodeIds.length; i += size) {
    groups.push({ groupId: groups.length + 1, agentType, nodeIds: nodeIds.slice(i, i + size) });
  }
  return groups;
}

// ---------------------------------------------------------------------------------------------------------------
// Agent runner: sleeps a predetermined time per node, optionally behind a gate

/**
 * Sleeps the node's predetermined duration (abortable through the request's signal), then returns the offline
 * provider's real output for the node. While the gate is closed, every call waits for it first (the nodes hold
 * their slots), so a batch can be submitted and watched before it really starts.
 */
export class SleepingRunner extends AgentRunner {
  private readonly offline = new OfflineAgentRunner(0);
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;
  calls = 0;

  constructor(private readonly durationMs: (request: AgentRunRequest) => number) {
    super();
  }

  closeGate(): void {
    this.gate = new Promise<void>((resolve) => (this.openGate = resolve));
  }

  open(): void {
    this.openGate();
  }

  async run(request: AgentRunRequest): Promise<AgentRunResult> {
    this.calls++;
    const { signal } = request;
    await Promise.race([
      this.gate,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason as Error);
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      }),
    ]);
    const ms = this.durationMs(request);
    if (ms > 0) await sleep(ms, undefined, { signal });
    return this.offline.run(request);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Nest: an application context (in-process orchestrator) and a real HTTP server

@Module({})
class PerfModule {
  static with(options: CanvasBatchOptions): DynamicModule {
    return {
      module: PerfModule,
      imports: [EventEmitterModule.forRoot(), OrchestratorModule.forRoot(options)],
    };
  }
}

/** Lets detached (`async: true`) listeners run before a context closes (see bench/README.md). */
export async function drainDetachedListeners(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export async function createContext(options: CanvasBatchOptions): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(PerfModule.with(options), {
    logger: ['error', 'warn'],
  });
  await app.init();
  return app;
}

export async function closeContext(app: INestApplicationContext): Promise<void> {
  await drainDetachedListeners();
  await app.close();
}

export interface HttpServer {
  app: NestExpressApplication;
  url: string;
  close(): Promise<void>;
}

/**
 * The production composition (`AppModule.forConfig` + `configureApp`, exactly as `createApp` in src/bootstrap.ts
 * builds it: validation pipe, problem+json filter, token guard, pino logging), listening on a free port, with one
 * difference: the `AgentRunner` is `runner` (the environment cannot inject one).
 */
export async function startHttpServer(
  vault: string,
  dataDir: string,
  runner: AgentRunner,
  env: Record<string, string> = {},
): Promise<HttpServer> {
  const config = loadAppConfig({
    PORT: '0',
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    VAULT_ROOT: vault,
    DATA_DIR: dataDir,
    ...env,
  });
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forConfig(config)] })
    .overrideProvider(AgentRunner)
    .useValue(runner)
    .compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({
    bufferLogs: true,
    bodyParser: false,
    forceCloseConnections: true,
  });
  app.useLogger(app.get(Logger));
  configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await drainDetachedListeners();
      await app.close();
    },
  };
}

/** POST /parallel/execute over real HTTP; returns the task id. */
export async function submitHttp(
  url: string,
  body: { canvas_path: string; groups: { group_id: number; agent_type: string; node_ids: string[] }[] },
): Promise<string> {
  const res = await fetch(`${url}/parallel/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ max_concurrent: 12, timeout: 3600, ...body }),
  });
  const json = (await res.json()) as { task_id?: string };
  if (res.status !== 202 || !json.task_id) {
    throw new Error(`bench: POST /parallel/execute answered ${res.status}: ${JSON.stringify(json)}`);
  }
  return json.task_id;
}

export function checkCompleted(tasks: readonly TaskRecord[], label: string): void {
  const bad = tasks.filter((t) => t.status !== 'completed');
  if (bad.length) {
    throw new Error(
      `${label}: ${bad.length} task(s) did not complete: ${bad.map((t) => `${t.taskId} ${t.status} ${t.errorMessage ?? ''}`).join('; ')}`,
    );
  }
}

/** Submits one batch in-process and returns its time from `submit` to completion (ms) and the final task. */
export async function runBatch(
  orchestrator: BatchOrchestrator,
  canvasPath: string,
  groups: GroupSpec[],
  maxConcurrent = 12,
): Promise<{ ms: number; task: TaskRecord }> {
  const t0 = performance.now();
  const { task } = await orchestrator.submit({ canvasPath, groups, maxConcurrent, timeoutMs: 3_600_000 });
  const done = await orchestrator.waitForCompletion(task.taskId);
  return { ms: performance.now() - t0, task: done };
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes (so memory or client load does not share the measured process)

export interface ChildMessage {
  type: string;
}

export interface Child {
  process: ChildProcess;
  /** Resolves with the next message of this type (rejects when the child exits first). */
  next<T extends ChildMessage>(type: string, timeoutMs?: number): Promise<T>;
  send(message: ChildMessage & Record<string, unknown>): void;
  exited: Promise<number | null>;
}

/** Starts `node -r @swc-node/register [--expose-gc] <script> …args` with an IPC channel. */
export function spawnChild(script: string, args: string[], options: { exposeGc?: boolean } = {}): Child {
  const child = spawn(
    process.execPath,
    [
      ...(options.exposeGc ? ['--expose-gc'] : []),
      // e.g. BENCH_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the child processes
      ...(process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean),
      '-r',
      '@swc-node/register',
      script,
      ...args,
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: path.join(__dirname, '..', '..') },
  );
  const inbox: ChildMessage[] = [];
  const waiters: { type: string; resolve: (m: ChildMessage) => void; reject: (e: Error) => void }[] = [];
  child.on('message', (m: ChildMessage) => {
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else inbox.push(m);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  void exited.then((code) => {
    for (const w of waiters.splice(0)) {
      w.reject(
        new Error(`bench: child ${path.basename(script)} exited (${code}) before sending "${w.type}"`),
      );
    }
  });
  return {
    process: child,
    exited,
    send: (m) => {
      child.send(m);
    },
    next<T extends ChildMessage>(type: string, timeoutMs = 600_000): Promise<T> {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as T);
      if (child.exitCode !== null) {
        return Promise.reject(new Error(`bench: child ${path.basename(script)} already exited`));
      }
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`bench: no "${type}" from ${path.basename(script)} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    },
  };
}

/** In a child: sends a message to the parent (no-op without an IPC channel). */
export function tellParent(message: ChildMessage & Record<string, unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });
}

/** In a child: resolves with the next parent message of this type. */
export function fromParent<T extends ChildMessage>(type: string): Promise<T> {
  return new Promise<T>((resolve) => {
    const on = (m: ChildMessage): void => {
      if (m.type !== type) return;
      process.off('message', on);
      resolve(m as T);
    };
    process.on('message', on);
  });
}

/** Peak (VmHWM) and current (VmRSS) resident set of a process (default: this one) in MB; undefined off Linux. */
export function procMemoryMb(pid: number | 'self' = 'self'): { hwm: number; rss: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    const hwm = kb('VmHWM');
    const rss = kb('VmRSS');
    return Number.isFinite(hwm) && Number.isFinite(rss) ? { hwm: hwm / 1024, rss: rss / 1024 } : undefined;
  } catch {
    return undefined;
  }
}

export const mb = (bytes: number): number => bytes / (1024 * 1024);

// ---------------------------------------------------------------------------------------------------------------
// Figures: the issue's named results, each with its target and a pass flag

export type Target = { max: number } | { min: number };

export interface Figure {
  /** The measured value (`null` when it could not be measured; then `pass` is false and `note` says why). */
  value: number | null;
  unit: string;
  target: Target;
  pass: boolean;
  /** What the value is compared with, measured in the same run (FIFO order, bare loop, no load …). */
  beside?: Record<string, number | null>;
  note?: string;
  section: string;
  measured_at: string;
  details?: Record<string, unknown>;
}

export function meets(value: number | null, target: Target): boolean {
  if (value === null || !Number.isFinite(value)) return false;
  return 'max' in target ? value <= target.max : value >= target.min;
}

export function figure(
  section: string,
  value: number | null,
  unit: string,
  target: Target,
  extra: Pick<Figure, 'beside' | 'note' | 'details'> & { pass?: boolean } = {},
): Figure {
  const { pass, ...rest } = extra;
  return {
    value,
    unit,
    target,
    pass: (pass ?? true) && meets(value, target),
    ...rest,
    section,
    measured_at: new Date().toISOString(),
  };
}

export function targetText(t: Target): string {
  return 'max' in t ? `≤ ${t.max}` : `≥ ${t.min}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Section filter: `npm run bench -- makespan fairness` runs the sections whose name starts with an argument

export function sectionFilter(argv: readonly string[], names: readonly string[]): (name: string) => boolean {
  const wanted = argv.filter((a) => !a.startsWith('-'));
  if (!wanted.length) return () => true;
  const unknown = wanted.filter((w) => !names.some((n) => n.startsWith(w)));
  if (unknown.length) {
    throw new Error(
      `bench: no section matches ${unknown.map((u) => `"${u}"`).join(', ')}; sections: ${names.join(', ')}`,
    );
  }
  return (name) => wanted.some((w) => name.startsWith(w));
}

/**
 * Writes `bench/results/<name>.json`: the section's figures (`fields`, after its own top-level facts) with when and
 * on which machine they were measured — Node, cores, CPU and the load average before (`loadBefore`) and after.
 * `environment` adds to the machine's facts (e.g. the browser).
 */
export function writeBenchResult(
  name: string,
  loadBefore: readonly number[],
  fields: object,
  environment: Record<string, unknown> = {},
): void {
  const file = path.join(__dirname, '..', 'results', `${name}.json`);
  const report = {
    benchmark: name,
    measured_at: new Date().toISOString(),
    environment: {
      node: process.version,
      cpu_count: os.availableParallelism(),
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      loadavg_start: loadBefore.map((n) => round(n, 2)),
      loadavg_end: os.loadavg().map((n) => round(n, 2)),
      ...environment,
    },
    ...fields,
  };
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  out(`written ${path.relative(process.cwd(), file)}`);
}

/** Runs a section's `main` when its file is run on its own (`node -r @swc-node/register bench/<x>.ts`); exit 1 on error. */
export function runWhenMain(module: NodeJS.Module, main: () => Promise<unknown>): void {
  if (require.main !== module) return;
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
