/**
 * The result cache's hit path per node (issue 17, "never pay twice"): one node's run (`NodeExecution.runJob`: content
 * read, key, lookup, agent or cached output, caps, store on a miss) against the offline agent at 0 latency, three
 * ways side by side in each round — a miss (lookup + agent + store), a hit (lookup, no agent), and the cache off
 * (the agent alone) — on the real SQLite adapter in a Nest application context, and on Redis when REDIS_URL is set.
 * The result file and card are the owner's part, the same for all three, and not in the figures.
 *
 * `npm run bench -- result-cache`, or alone: `node -r @swc-node/register bench/result-cache.ts`. Writes
 * bench/results/result-cache.json.
 */
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AgentRunner } from '../src/agent/agent-runner';
import { AgentRouter } from '../src/agent/agent-router.service';
import { OfflineAgentRunner } from '../src/agent/offline-agent-runner';
import { CanvasService } from '../src/canvas/canvas.service';
import { RESOLVED_OPTIONS, type ResolvedCanvasBatchOptions } from '../src/config';
import { DurationEstimates } from '../src/orchestrator/concurrency/duration-estimates';
import type { JobContext, NodeJob } from '../src/orchestrator/dispatch/dispatcher';
import { OrchestratorModule } from '../src/orchestrator/orchestrator.module';
import type { CanvasBatchOptions } from '../src/orchestrator/orchestrator.module-definition';
import { NodeExecution } from '../src/orchestrator/run/node-execution';
import { OutcomeRecorder } from '../src/orchestrator/run/outcome-recorder';
import { CostEstimator } from '../src/orchestrator/cost/cost-estimator';
import { OutputDeltas } from '../src/orchestrator/deltas/output-deltas';
import { BudgetLedger } from '../src/session/budget-ledger';
import { GeneratedNodes } from '../src/session/generated-nodes';
import { RedisEventLog } from '../src/session/redis-event-log';
import { RedisResultCache } from '../src/session/redis-result-cache';
import { ResultCache } from '../src/session/result-cache';
import { RESULT_CACHE_DEFAULTS } from '../src/session/session.module-definition';
import { fmt, out, round, table, runWhenMain, writeBenchResult } from './perf/common';

export const RC_NODES = 2_000;
export const RC_ROUNDS = 5;
const AGENT = 'oral-explanation';

@Module({})
class CacheBenchModule {
  static with(options: CanvasBatchOptions): DynamicModule {
    return {
      module: CacheBenchModule,
      imports: [EventEmitterModule.forRoot(), OrchestratorModule.forRoot(options)],
    };
  }
}

/** A canvas of `n` text nodes of a few sentences each (distinct content: each node its own key). */
function writeCanvas(vault: string, rel: string, n: number): string[] {
  const ids = Array.from({ length: n }, (_, i) => `n${i}`);
  const nodes = ids.map((id, i) => ({
    id,
    type: 'text',
    text: `# Concept ${i}\nCells divide by mitosis into two identical cells (${i}). Each phase has its own checkpoints. Meiosis halves the chromosomes.`,
    x: (i % 50) * 300,
    y: Math.floor(i / 50) * 200,
    width: 250,
    height: 160,
  }));
  mkdirSync(path.dirname(path.join(vault, rel)), { recursive: true });
  writeFileSync(path.join(vault, rel), JSON.stringify({ nodes, edges: [] }));
  return ids;
}

const noop = (): void => undefined;
const ctx = (): JobContext => ({
  signal: new AbortController().signal,
  feedback: { rateLimited: noop, succeeded: noop },
  releaseAgentSlots: noop,
  releaseWriteSlot: noop,
});

interface Pass {
  us_per_node: number;
}

/** Runs every node one after the other; µs per node (wall). */
async function pass(nodes: NodeExecution, jobs: NodeJob[], expectCached: boolean): Promise<Pass> {
  const t0 = performance.now();
  for (const job of jobs) {
    const r = await nodes.runJob(job, ctx());
    if (r.kind !== 'completed' || Boolean(r.cached) !== expectCached)
      throw new Error(
        `node ${job.nodeId}: expected a ${expectCached ? 'hit' : 'miss'}, got ${JSON.stringify(r).slice(0, 200)}`,
      );
  }
  return { us_per_node: ((performance.now() - t0) * 1000) / jobs.length };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Rounds of miss / hit / off, side by side, on `cache`. */
async function measure(nodes: NodeExecution, cache: ResultCache, jobs: NodeJob[]) {
  const off = jobs.map((j) => ({ ...j, cache: false }));
  // warm-up: JIT, statements, the canvas read once
  await cache.clear();
  await pass(nodes, jobs.slice(0, 200), false);
  await pass(nodes, jobs.slice(0, 200), true);
  await pass(nodes, off.slice(0, 200), false);
  const rounds: { miss: number; hit: number; off: number }[] = [];
  for (let r = 0; r < RC_ROUNDS; r++) {
    await cache.clear();
    const miss = await pass(nodes, jobs, false);
    const hit = await pass(nodes, jobs, true);
    const none = await pass(nodes, off, false);
    rounds.push({ miss: miss.us_per_node, hit: hit.us_per_node, off: none.us_per_node });
  }
  const m = (k: 'miss' | 'hit' | 'off'): number => median(rounds.map((x) => x[k]));
  return {
    nodes: jobs.length,
    rounds: rounds.map((x) => ({ miss: round(x.miss, 1), hit: round(x.hit, 1), off: round(x.off, 1) })),
    miss_us_per_node: round(m('miss'), 1),
    hit_us_per_node: round(m('hit'), 1),
    off_us_per_node: round(m('off'), 1),
    hit_over_miss: round(median(rounds.map((x) => x.hit / x.miss)), 3),
    hit_over_off: round(median(rounds.map((x) => x.hit / x.off)), 3),
    miss_over_off: round(median(rounds.map((x) => x.miss / x.off)), 3),
  };
}

export async function benchResultCache(root: string) {
  const vault = path.join(root, 'vault-rc');
  mkdirSync(vault, { recursive: true });
  const ids = writeCanvas(vault, 'bench/cache.canvas', RC_NODES);
  const app = await NestFactory.createApplicationContext(
    CacheBenchModule.with({
      vaultRoot: vault,
      dataDir: path.join(root, 'data-rc'),
      agentRunner: new OfflineAgentRunner(0),
    }),
    { logger: ['error', 'warn'] },
  );
  await app.init();
  try {
    const canvas = await app.get(CanvasService).resolve('bench/cache.canvas');
    const jobs: NodeJob[] = ids.map((nodeId) => ({
      taskId: 'bench',
      groupIndex: 0,
      nodeId,
      agentType: AGENT,
      expectedMs: 0,
      canvasPath: canvas.relPath,
      deadlineAt: null,
    }));
    const results: Record<string, unknown> = {};
    results.sqlite = await measure(app.get(NodeExecution), app.get(ResultCache), jobs);
    const url = process.env.REDIS_URL;
    if (url) {
      const prefix = `cb-bench-rc-${process.pid}`;
      const events = new RedisEventLog({ url, prefix, name: prefix });
      const cache = new RedisResultCache(events, RESULT_CACHE_DEFAULTS);
      const nodes = new NodeExecution(
        app.get(CanvasService),
        app.get(AgentRunner),
        app.get(OutcomeRecorder),
        app.get(DurationEstimates),
        app.get<ResolvedCanvasBatchOptions>(RESOLVED_OPTIONS),
        cache,
        app.get(GeneratedNodes),
        app.get(AgentRouter),
        app.get(BudgetLedger),
        app.get(CostEstimator),
        app.get(OutputDeltas),
      );
      try {
        results.redis = await measure(nodes, cache, jobs);
      } finally {
        await cache.clear();
        await events.shutdown();
      }
    } else {
      results.redis = 'skipped: REDIS_URL not set';
    }
    return results;
  } finally {
    await app.close();
  }
}

export function printResultCache(r: Awaited<ReturnType<typeof benchResultCache>>): void {
  const rows: string[][] = [
    ['adapter', 'miss µs/node', 'hit µs/node', 'off µs/node', 'hit/miss', 'hit/off', 'miss/off'],
  ];
  for (const [name, v] of Object.entries(r)) {
    if (typeof v === 'string') {
      rows.push([name, v, '', '', '', '', '']);
      continue;
    }
    const f = v as Awaited<ReturnType<typeof measure>>;
    rows.push([
      name,
      fmt(f.miss_us_per_node, 1),
      fmt(f.hit_us_per_node, 1),
      fmt(f.off_us_per_node, 1),
      fmt(f.hit_over_miss, 3),
      fmt(f.hit_over_off, 3),
      fmt(f.miss_over_off, 3),
    ]);
  }
  out(table(rows));
}

/** Runs the section and writes bench/results/result-cache.json (with the machine it ran on). */
export async function runResultCacheBench(): Promise<Awaited<ReturnType<typeof benchResultCache>>> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'canvas-batch-bench-rc-'));
  const loadBefore = os.loadavg();
  try {
    out(
      `(h) result cache: ${RC_NODES} nodes × ${RC_ROUNDS} rounds of miss / hit / off, offline agent at 0 ms …`,
    );
    const r = await benchResultCache(root);
    printResultCache(r);
    writeBenchResult('result-cache', loadBefore, {
      agent: AGENT,
      path: 'NodeExecution.runJob (content, key, lookup, agent or cached output, caps, store on a miss)',
      ...r,
    });
    return r;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

runWhenMain(module, runResultCacheBench);
