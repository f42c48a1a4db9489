/**
 * Makespan against the physical limit max(longest node, total node time / c), fair and FIFO scheduling side by side:
 * - `makespan_ratio_uniform`: 240 nodes × 200 ms at concurrency 12 (ideal 4 s);
 * - `makespan_ratio_hetero`: 600 nodes over 6 agent types with per-type lognormal latencies (means 20–100 ms,
 *   σ 0.5, seeded) at concurrency 12, after a warm-up batch that lets the fair scheduler learn per-type estimates.
 */
import type { INestApplicationContext } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { AgentRunRequest } from '../../src/agent/agent-runner';
import { BatchOrchestrator } from '../../src/orchestrator/batch-orchestrator.service';
import type { GroupSpec, TaskRecord } from '../../src/session/task.types';
import {
  checkCompleted,
  closeContext,
  createContext,
  type Figure,
  figure,
  fmt,
  lognormal,
  median,
  out,
  prng,
  round,
  runBatch,
  SleepingRunner,
  table,
  writeCanvas,
} from './common';

const CONCURRENCY = 12;
const MODES = ['fair', 'fifo'] as const;
type Mode = (typeof MODES)[number];

/** Six agents whose output is a markdown file (no structured part needed from the runner). */
const AGENT_TYPES = [
  'four-level-explanation',
  'oral-explanation',
  'example-teaching',
  'clarification-path',
  'comparison-table',
  'memory-anchor',
] as const;
/** Per-type mean latency in ms, 20 → 100 (type i: 20 + 16 i). */
const TYPE_MEANS_MS = AGENT_TYPES.map((_, i) => 20 + 16 * i);
const SIGMA = 0.5;
const HETERO_NODES_PER_TYPE = 100;
const HETERO_WARMUP_PER_TYPE = 10;
/** Measured runs per scheduling mode (alternating fair / fifo); the figure is their median (a shared machine). */
const REPS = 3;

const UNIFORM_NODES = 240;
const UNIFORM_MS = 200;

interface ModeContext {
  mode: Mode;
  app: INestApplicationContext;
  orchestrator: BatchOrchestrator;
  runner: SleepingRunner;
}

/** When each node's agent call started (performance.now()), for the dispatch-order diagnostic. */
const startedAt = new Map<string, number>();

/** `durations` by node id: the runner sleeps exactly the planned time of each node. */
async function openModes(root: string, label: string, vault: string, durations: Map<string, number>) {
  const durationOf = (r: AgentRunRequest): number => {
    startedAt.set(r.node.nodeId, performance.now());
    return durations.get(r.node.nodeId) ?? 0;
  };
  const contexts: ModeContext[] = [];
  for (const mode of MODES) {
    const runner = new SleepingRunner(durationOf);
    const app = await createContext({
      vaultRoot: vault,
      dataDir: path.join(root, `data-${label}-${mode}`),
      globalMaxConcurrent: CONCURRENCY,
      scheduling: mode,
      agentRunner: runner,
    });
    contexts.push({ mode, app, orchestrator: app.get(BatchOrchestrator), runner });
  }
  return contexts;
}

function taskSummary(task: TaskRecord) {
  return {
    status: task.status,
    peak_concurrent: task.metrics?.peak_concurrent ?? null,
    parallel_efficiency: task.metrics?.parallel_efficiency ?? null,
  };
}

// ---------------------------------------------------------------------------------------------------------------

export async function benchMakespanUniform(root: string): Promise<Record<string, Figure>> {
  out(
    `makespan-uniform: ${UNIFORM_NODES} nodes × ${UNIFORM_MS} ms at concurrency ${CONCURRENCY}, fair and fifo, ${REPS} runs each …`,
  );
  const vault = path.join(root, 'vault-uniform');
  mkdirSync(vault, { recursive: true });
  const durations = new Map<string, number>();
  const warm = writeCanvas(vault, 'uniform/warmup.canvas', 24);
  for (const id of warm.nodeIds) durations.set(id, 10);
  // every run gets its own canvas (results grow the canvas)
  const runs: { mode: Mode; canvas: { relPath: string; nodeIds: string[] } }[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    for (const mode of MODES) {
      const c = writeCanvas(vault, `uniform/${mode}-${rep + 1}.canvas`, UNIFORM_NODES);
      for (const id of c.nodeIds) durations.set(id, UNIFORM_MS);
      runs.push({ mode, canvas: c });
    }
  }
  const ideal = Math.max(UNIFORM_MS, (UNIFORM_NODES * UNIFORM_MS) / CONCURRENCY);
  const contexts = await openModes(root, 'uniform', vault, durations);
  const measured: Record<Mode, { ms: number; task: ReturnType<typeof taskSummary> }[]> = {
    fair: [],
    fifo: [],
  };
  try {
    for (const ctx of contexts) {
      checkCompleted(
        [(await runBatch(ctx.orchestrator, warm.relPath, [group(1, AGENT_TYPES[1], warm.nodeIds)])).task],
        'uniform warm-up',
      );
    }
    for (const r of runs) {
      const ctx = contexts.find((c) => c.mode === r.mode)!;
      const run = await runBatch(ctx.orchestrator, r.canvas.relPath, [
        group(1, AGENT_TYPES[1], r.canvas.nodeIds),
      ]);
      checkCompleted([run.task], `makespan-uniform (${r.mode})`);
      measured[r.mode].push({ ms: run.ms, task: taskSummary(run.task) });
    }
  } finally {
    for (const ctx of contexts) await closeContext(ctx.app);
  }
  const ratio = (m: Mode) => median(measured[m].map((x) => x.ms)) / ideal;
  out(
    table([
      ['scheduling', 'makespans ms', 'median ms', 'ideal ms', 'makespan / ideal', 'peak concurrent'],
      ...MODES.map((m) => [
        m,
        measured[m].map((x) => fmt(x.ms, 0)).join(' / '),
        fmt(median(measured[m].map((x) => x.ms)), 0),
        fmt(ideal, 0),
        fmt(ratio(m), 3),
        String(Math.max(...measured[m].map((x) => x.task.peak_concurrent ?? 0))),
      ]),
    ]),
  );
  return {
    makespan_ratio_uniform: figure(
      'makespan-uniform',
      round(ratio('fair'), 4),
      'ratio',
      { max: 1.02 },
      {
        beside: { fifo: round(ratio('fifo'), 4) },
        details: {
          nodes: UNIFORM_NODES,
          node_ms: UNIFORM_MS,
          concurrency: CONCURRENCY,
          ideal_ms: ideal,
          runs_per_mode: REPS,
          definition: 'median makespan of the runs / ideal',
          fair: {
            makespans_ms: measured.fair.map((x) => round(x.ms, 1)),
            tasks: measured.fair.map((x) => x.task),
          },
          fifo: {
            makespans_ms: measured.fifo.map((x) => round(x.ms, 1)),
            tasks: measured.fifo.map((x) => x.task),
          },
          measured_from: 'submit() until waitForCompletion() resolves (in-process BatchOrchestrator)',
        },
      },
    ),
  };
}

function group(groupId: number, agentType: string, nodeIds: string[]): GroupSpec {
  return { groupId, agentType, nodeIds };
}

// ---------------------------------------------------------------------------------------------------------------

/** Node durations of one heterogeneous canvas: type t's nodes are indexes [t·perType, (t+1)·perType). */
function heteroDurations(seed: number, perType: number): number[] {
  const durations: number[] = [];
  AGENT_TYPES.forEach((_, t) => {
    const sample = lognormal(prng(seed * 100 + t), TYPE_MEANS_MS[t], SIGMA);
    for (let i = 0; i < perType; i++) durations.push(Math.max(1, Math.round(sample())));
  });
  return durations;
}

/**
 * Diagnostic: per agent type (in submission order, means 20 → 100 ms), the mean time its nodes' agent calls started,
 * in ms after the batch's first call. Longest-expected-first shows as decreasing values.
 */
function startOrder(nodeIds: string[]): Record<string, number> {
  const starts = nodeIds.map((id) => startedAt.get(id) ?? Number.NaN);
  const first = Math.min(...starts);
  const byType: Record<string, number> = {};
  AGENT_TYPES.forEach((type, t) => {
    const mine = starts.slice(t * HETERO_NODES_PER_TYPE, (t + 1) * HETERO_NODES_PER_TYPE);
    byType[type] = round(mine.reduce((a, b) => a + b - first, 0) / mine.length, 0);
  });
  return byType;
}

function heteroGroups(nodeIds: string[], perType: number): GroupSpec[] {
  return AGENT_TYPES.map((agentType, t) =>
    group(t + 1, agentType, nodeIds.slice(t * perType, (t + 1) * perType)),
  );
}

export async function benchMakespanHetero(root: string): Promise<Record<string, Figure>> {
  const total = AGENT_TYPES.length * HETERO_NODES_PER_TYPE;
  out(
    `makespan-hetero: ${total} nodes over ${AGENT_TYPES.length} agent types, lognormal means ${TYPE_MEANS_MS.join('/')} ms, σ ${SIGMA}, fair and fifo …`,
  );
  const vault = path.join(root, 'vault-hetero');
  mkdirSync(vault, { recursive: true });
  const durations = new Map<string, number>();
  const planned = heteroDurations(7, HETERO_NODES_PER_TYPE);
  const warmPlanned = heteroDurations(8, HETERO_WARMUP_PER_TYPE);
  const totalMs = planned.reduce((a, b) => a + b, 0);
  const longest = Math.max(...planned);
  const ideal = Math.max(longest, totalMs / CONCURRENCY);

  // every run gets its own canvas (results grow the canvas); node i has the same duration on every canvas
  const canvasFor = (name: string, plan: number[]) => {
    const c = writeCanvas(vault, `hetero/${name}.canvas`, plan.length);
    c.nodeIds.forEach((id, i) => durations.set(id, plan[i]));
    return c;
  };
  const warmups = new Map(MODES.map((m) => [m, canvasFor(`warmup-${m}`, warmPlanned)]));
  const runs: { mode: Mode; rep: number; canvas: ReturnType<typeof canvasFor> }[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    for (const mode of MODES) runs.push({ mode, rep, canvas: canvasFor(`${mode}-${rep + 1}`, planned) });
  }

  const contexts = await openModes(root, 'hetero', vault, durations);
  const measured: Record<
    Mode,
    { ms: number; task: ReturnType<typeof taskSummary> & { mean_start_ms_by_type: Record<string, number> } }[]
  > = {
    fair: [],
    fifo: [],
  };
  try {
    // warm-up in the same data dir: the fair scheduler learns (and persists) per-type duration estimates
    for (const ctx of contexts) {
      const w = warmups.get(ctx.mode)!;
      const run = await runBatch(
        ctx.orchestrator,
        w.relPath,
        heteroGroups(w.nodeIds, HETERO_WARMUP_PER_TYPE),
      );
      checkCompleted([run.task], `makespan-hetero warm-up (${ctx.mode})`);
    }
    for (const r of runs) {
      const ctx = contexts.find((c) => c.mode === r.mode)!;
      const run = await runBatch(
        ctx.orchestrator,
        r.canvas.relPath,
        heteroGroups(r.canvas.nodeIds, HETERO_NODES_PER_TYPE),
      );
      checkCompleted([run.task], `makespan-hetero (${r.mode})`);
      measured[r.mode].push({
        ms: run.ms,
        task: { ...taskSummary(run.task), mean_start_ms_by_type: startOrder(r.canvas.nodeIds) },
      });
    }
  } finally {
    for (const ctx of contexts) await closeContext(ctx.app);
  }
  const medianMs = (m: Mode) => median(measured[m].map((x) => x.ms));
  const ratio = (m: Mode) => medianMs(m) / ideal;
  out(
    table([
      ['scheduling', 'makespans ms', 'median ms', 'ideal ms', 'makespan / ideal'],
      ...MODES.map((m) => [
        m,
        measured[m].map((x) => fmt(x.ms, 0)).join(' / '),
        fmt(medianMs(m), 0),
        fmt(ideal, 0),
        fmt(ratio(m), 3),
      ]),
    ]),
  );
  return {
    makespan_ratio_hetero: figure(
      'makespan-hetero',
      round(ratio('fair'), 4),
      'ratio',
      { max: 1.05 },
      {
        beside: { fifo: round(ratio('fifo'), 4) },
        details: {
          nodes: total,
          agent_types: AGENT_TYPES,
          type_mean_ms: TYPE_MEANS_MS,
          sigma: SIGMA,
          seed: 7,
          concurrency: CONCURRENCY,
          planned_total_ms: totalMs,
          longest_node_ms: longest,
          ideal_ms: round(ideal, 1),
          warmup_nodes: AGENT_TYPES.length * HETERO_WARMUP_PER_TYPE,
          reps_per_mode: REPS,
          fair: {
            makespans_ms: measured.fair.map((x) => round(x.ms, 1)),
            tasks: measured.fair.map((x) => x.task),
          },
          fifo: {
            makespans_ms: measured.fifo.map((x) => round(x.ms, 1)),
            tasks: measured.fifo.map((x) => x.task),
          },
          measured_from: 'submit() until waitForCompletion() resolves (in-process BatchOrchestrator)',
        },
      },
    ),
  };
}
