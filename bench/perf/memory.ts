/**
 * Memory, each measured in a child process of its own (bench/perf/memory.child.ts), so the other sections' heaps
 * and caches do not count:
 * - `rss_mb_100k`: peak resident memory (the kernel's VmHWM) of a process running one 100,000-node batch
 *   (100 groups × 1,000 node ids on a 100,000-node canvas, zero-latency agent). The canvas is generated here, in
 *   the parent. The batch gets RSS_100K_BUDGET_S seconds (env BENCH_100K_BUDGET_S overrides); a batch still
 *   running then is cancelled and the figure is marked failed, with the nodes it finished.
 * - `rss_growth_mb_500_batches`: RSS after GC before and after 500 sequential 20-node batches, each on its own
 *   canvas, with a 300 ms session TTL and the cleanup loop running every 250 ms (after 20 warm-up batches).
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { type Figure, figure, fmt, out, round, spawnChild, table, writeCanvas } from './common';

const NODES_100K = 100_000;
const RSS_100K_BUDGET_S = Number(process.env.BENCH_100K_BUDGET_S ?? 150);
const BATCHES = 500;
const WARMUP_BATCHES = 20;
const NODES_PER_BATCH = 20;

const CHILD = path.join(__dirname, 'memory.child.ts');

interface Rss100kResult {
  type: 'result';
  finished: boolean;
  status: string;
  nodes_done: { completed: number; failed: number; skipped?: number } & Record<string, number>;
  elapsed_ms: number;
  submit_ms: number;
  peak_rss_mb_vmhwm: number | null;
  peak_rss_mb_sampled: number;
  rss_after_init_mb: number | null;
  [key: string]: unknown;
}

export async function benchRss100k(root: string): Promise<Record<string, Figure>> {
  out(
    `rss-100k: one ${NODES_100K.toLocaleString('en')}-node batch in a child process (budget ${RSS_100K_BUDGET_S} s) …`,
  );
  const vault = path.join(root, 'vault-100k');
  mkdirSync(vault, { recursive: true });
  const canvas = writeCanvas(vault, 'big/hundred-thousand.canvas', NODES_100K);
  const child = spawnChild(CHILD, [
    'rss-100k',
    vault,
    path.join(root, 'data-100k'),
    canvas.relPath,
    String(RSS_100K_BUDGET_S),
  ]);
  const r = await child.next<Rss100kResult>('result', (RSS_100K_BUDGET_S + 300) * 1000);
  await child.exited;
  const peak = r.peak_rss_mb_vmhwm ?? r.peak_rss_mb_sampled;
  const done = r.nodes_done.completed + r.nodes_done.failed;
  out(
    table([
      ['figure', 'value'],
      ['peak RSS (VmHWM) MB', fmt(r.peak_rss_mb_vmhwm, 1)],
      ['peak RSS (sampled every 50 ms) MB', fmt(r.peak_rss_mb_sampled, 1)],
      ['RSS after start-up MB', fmt(r.rss_after_init_mb, 1)],
      ['batch finished in the budget', r.finished ? 'yes' : `NO (${done} of ${NODES_100K} nodes done)`],
      ['elapsed s', fmt(r.elapsed_ms / 1000, 1)],
      ['submit (validation + store) ms', fmt(r.submit_ms, 0)],
    ]),
  );
  return {
    rss_mb_100k: figure(
      'rss-100k',
      round(peak, 1),
      'MB',
      { max: 400 },
      {
        pass: r.finished && r.status === 'completed',
        beside: { rss_after_startup_mb: r.rss_after_init_mb },
        note: r.finished
          ? undefined
          : `the batch did not finish within ${RSS_100K_BUDGET_S} s (${done.toLocaleString('en')} of ${NODES_100K.toLocaleString('en')} nodes done, then cancelled): the peak is over that part only`,
        details: { ...r, type: undefined },
      },
    ),
  };
}

interface RssBatchesResult {
  type: 'result';
  rss_growth_mb: number;
  heap_growth_mb: number;
  rss_before_mb: number;
  rss_after_mb: number;
  tasks_left_at_end: number;
  run_ms: number;
  [key: string]: unknown;
}

export async function benchRssBatches(root: string): Promise<Record<string, Figure>> {
  out(
    `rss-batches: ${BATCHES} sequential ${NODES_PER_BATCH}-node batches with cleanup running, in a child process …`,
  );
  const vault = path.join(root, 'vault-many');
  mkdirSync(vault, { recursive: true });
  for (let i = 0; i < WARMUP_BATCHES + BATCHES; i++) {
    writeCanvas(vault, `many/canvas-${i}.canvas`, NODES_PER_BATCH);
  }
  const child = spawnChild(
    CHILD,
    ['rss-batches', vault, path.join(root, 'data-many'), String(WARMUP_BATCHES), String(BATCHES)],
    { exposeGc: true },
  );
  const r = await child.next<RssBatchesResult>('result');
  await child.exited;
  out(
    table([
      ['figure', 'value'],
      ['RSS before / after (after GC) MB', `${fmt(r.rss_before_mb, 1)} / ${fmt(r.rss_after_mb, 1)}`],
      ['RSS growth MB', fmt(r.rss_growth_mb, 1)],
      ['heap used growth MB', fmt(r.heap_growth_mb, 1)],
      ['tasks left after cleanup', String(r.tasks_left_at_end)],
      ['500 batches took s', fmt(r.run_ms / 1000, 1)],
    ]),
  );
  return {
    rss_growth_mb_500_batches: figure(
      'rss-batches',
      r.rss_growth_mb,
      'MB',
      { max: 20 },
      {
        pass: r.tasks_left_at_end === 0,
        beside: { heap_used_growth_mb: r.heap_growth_mb },
        note: r.tasks_left_at_end === 0 ? undefined : `${r.tasks_left_at_end} task(s) were not cleaned up`,
        details: { ...r, type: undefined },
      },
    ),
  };
}
