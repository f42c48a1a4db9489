/**
 * Child process of bench/perf/memory.ts — runs alone so nothing else shares its heap:
 *
 *   rss-100k <vault> <dataDir> <canvasRelPath> <budgetSeconds>
 *     one 100,000-node batch (100 groups × 1,000 ids, zero-latency agent); reports peak RSS (VmHWM, and sampled
 *     rss every 50 ms), how many nodes finished and whether the batch completed within the budget (if not, it is
 *     cancelled with abort so the process can end).
 *   rss-batches <vault> <dataDir> <warmups> <batches>   (needs --expose-gc)
 *     `warmups` then `batches` sequential 20-node batches, each on its own canvas `many/canvas-<i>.canvas`, with a
 *     300 ms session TTL and the cleanup loop every 250 ms; RSS after GC before and after the measured batches.
 *
 * Sends `{ type: 'result', … }` to the parent over IPC.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CanvasService } from '../../src/canvas/canvas.service';
import { BatchOrchestrator } from '../../src/orchestrator/batch-orchestrator.service';
import { TaskStore } from '../../src/session/task-store';
import {
  checkCompleted,
  closeContext,
  createContext,
  groupsOf,
  mb,
  procMemoryMb,
  round,
  runBatch,
  tellParent,
} from './common';

const AGENT = 'oral-explanation';

async function rss100k(vault: string, dataDir: string, canvasPath: string, budgetS: number): Promise<void> {
  const atStart = procMemoryMb();
  let sampledPeak = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss());
  }, 50);
  const app = await createContext({ vaultRoot: vault, dataDir, globalMaxConcurrent: 12, shutdownGraceMs: 0 });
  try {
    const afterInit = procMemoryMb();
    await tellParent({ type: 'started', rss_after_init_mb: afterInit ? round(afterInit.rss, 1) : null });
    const orchestrator = app.get(BatchOrchestrator);
    const store = app.get(TaskStore);
    // the ids are read from the canvas the parent wrote; the parsed copy is dropped before the batch starts
    const nodeIds = (
      JSON.parse(readFileSync(path.join(vault, canvasPath), 'utf8')) as { nodes: { id: string }[] }
    ).nodes.map((n) => n.id);
    const t0 = performance.now();
    const { task } = await orchestrator.submit({
      canvasPath,
      groups: groupsOf(nodeIds, AGENT, 1_000),
      maxConcurrent: 12,
      timeoutMs: 3_600_000,
    });
    const submitMs = performance.now() - t0;
    // progress for the parent, which keeps the last one in case this process stops answering (a blocked loop)
    const progress = setInterval(() => {
      void tellParent({
        type: 'progress',
        elapsed_ms: round(performance.now() - t0, 0),
        nodes_done: store.nodeCounts(task.taskId),
      });
    }, 1_000);
    const finished = await Promise.race([
      orchestrator.waitForCompletion(task.taskId).then(() => true),
      sleep(budgetS * 1000).then(() => false),
    ]);
    const elapsedMs = performance.now() - t0;
    clearInterval(progress);
    const counts = await store.nodeCounts(task.taskId);
    if (!finished) await orchestrator.cancel(task.taskId, 'abort');
    const final = await store.findTask(task.taskId);
    clearInterval(sampler);
    const end = procMemoryMb();
    await tellParent({
      type: 'result',
      total_nodes: task.totalNodes,
      groups: task.groups.length,
      finished,
      status: final?.status ?? 'unknown',
      nodes_done: counts,
      submit_ms: round(submitMs, 1),
      elapsed_ms: round(elapsedMs, 1),
      budget_s: budgetS,
      rss_at_start_mb: atStart ? round(atStart.rss, 1) : null,
      rss_after_init_mb: afterInit ? round(afterInit.rss, 1) : null,
      peak_rss_mb_vmhwm: end ? round(end.hwm, 1) : null,
      peak_rss_mb_sampled: round(mb(sampledPeak), 1),
      rss_at_end_mb: end ? round(end.rss, 1) : null,
    });
  } finally {
    clearInterval(sampler);
    await closeContext(app);
  }
}

async function settle(): Promise<{ rss: number; heapUsed: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('rss-batches needs node --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  const m = process.memoryUsage();
  return { rss: mb(m.rss), heapUsed: mb(m.heapUsed) };
}

async function rssBatches(vault: string, dataDir: string, warmups: number, batches: number): Promise<void> {
  const ttlMs = 300;
  const app = await createContext({
    vaultRoot: vault,
    dataDir,
    globalMaxConcurrent: 12,
    sessionTtlMinutes: ttlMs / 60_000,
    cleanupIntervalMs: 250,
  });
  try {
    const orchestrator = app.get(BatchOrchestrator);
    const store = app.get(TaskStore);
    const canvas = (i: number) => `many/canvas-${i}.canvas`;
    const ids = (i: number): string[] =>
      (
        JSON.parse(readFileSync(path.join(vault, canvas(i)), 'utf8')) as { nodes: { id: string }[] }
      ).nodes.map((n) => n.id);
    const one = async (i: number) => {
      const run = await runBatch(orchestrator, canvas(i), groupsOf(ids(i), AGENT));
      checkCompleted([run.task], 'rss-batches');
    };
    /** Waits until the cleanup loop has removed every finished task (at most 10 s). */
    const swept = async (): Promise<number> => {
      const end = Date.now() + 10_000;
      let left = (await store.listTasks({ limit: 10_000 })).length;
      while (left > 0 && Date.now() < end) {
        await sleep(100);
        left = (await store.listTasks({ limit: 10_000 })).length;
      }
      return left;
    };
    for (let i = 0; i < warmups; i++) await one(i);
    const leftAfterWarmup = await swept();
    const before = await settle();
    const t0 = performance.now();
    for (let i = warmups; i < warmups + batches; i++) await one(i);
    const runMs = performance.now() - t0;
    const left = await swept();
    const after = await settle();
    await tellParent({
      type: 'result',
      warmup_batches: warmups,
      batches,
      nodes_per_batch: ids(0).length,
      session_ttl_ms: ttlMs,
      cleanup_interval_ms: 250,
      tasks_left_after_warmup: leftAfterWarmup,
      tasks_left_at_end: left,
      run_ms: round(runMs, 1),
      rss_before_mb: round(before.rss, 1),
      rss_after_mb: round(after.rss, 1),
      heap_used_before_mb: round(before.heapUsed, 1),
      heap_used_after_mb: round(after.heapUsed, 1),
      rss_growth_mb: round(after.rss - before.rss, 1),
      heap_growth_mb: round(after.heapUsed - before.heapUsed, 1),
      // diagnostic only: how many parsed canvases the canvas service still holds (its private read cache)
      canvas_cache_entries: cachedCanvases(app.get<CanvasService>(CanvasService)),
    });
  } finally {
    await closeContext(app);
  }
}

/** Diagnostic only: how many parsed canvases the canvas service holds (its private read cache), if it has one. */
function cachedCanvases(service: CanvasService): number | null {
  const cache: unknown = Reflect.get(service, 'cache');
  return cache instanceof Map ? cache.size : null;
}

async function main(): Promise<void> {
  const [mode, vault, dataDir, a, b] = process.argv.slice(2);
  if (mode === 'rss-100k') await rss100k(vault, dataDir, a, Number(b));
  else if (mode === 'rss-batches') await rssBatches(vault, dataDir, Number(a), Number(b));
  else throw new Error(`memory.child: unknown mode "${mode}"`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `memory.child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
