/**
 * Memory, each measured in a child process of its own (bench/perf/memory.child.ts), so the other sections' heaps
 * and caches do not count:
 * - `rss_mb_100k`: peak resident memory (the kernel's VmHWM) of a process running one 100,000-node batch
 *   (100 groups × 1,000 node ids on a 100,000-node canvas, zero-latency agent). The canvas is generated here, in
 *   the parent. The batch gets RSS_100K_BUDGET_S seconds (env BENCH_100K_BUDGET_S overrides); a batch still
 *   running then is cancelled (or, if the child no longer answers, it is killed KILL_GRACE_S later) and the figure
 *   is marked failed, with the nodes it finished; the parent tracks the child's VmHWM itself for that case.
 * - `rss_growth_mb_500_batches`: RSS after GC before and after 500 sequential 20-node batches, each on its own
 *   canvas, with a 300 ms session TTL and the cleanup loop running every 250 ms (after 20 warm-up batches).
 */
import { mkdirSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { type Figure, figure, fmt, out, procMemoryMb, round, spawnChild, table, writeCanvas } from './common';

const NODES_100K = 100_000;
const RSS_100K_BUDGET_S = Number(process.env.BENCH_100K_BUDGET_S ?? 120);
/** After the budget, how long a child that has not answered yet gets before it is killed. */
const KILL_GRACE_S = 20;
const BATCHES = 500;
const WARMUP_BATCHES = 20;
const NODES_PER_BATCH = 20;

const CHILD = path.join(__dirname, 'memory.child.ts');

interface Progress {
  type: 'progress';
  elapsed_ms: number;
  nodes_done: { completed: number; failed: number; skipped: number };
}

interface Rss100kResult {
  type: 'result';
  finished: boolean;
  status: string;
  nodes_done: { completed: number; failed: number; skipped: number };
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
  // The parent watches the child's VmHWM itself and keeps its last progress report: a child whose event loop is
  // blocked (e.g. by one long synchronous canvas write) cannot answer, and is killed after the budget + grace.
  const pid = child.process.pid!;
  let parentSeenHwm = 0;
  const watch = setInterval(() => {
    parentSeenHwm = Math.max(parentSeenHwm, procMemoryMb(pid)?.hwm ?? 0);
  }, 200);
  let lastProgress: Progress | undefined;
  let afterStartup: number | null = null;
  child.process.on('message', (m: { type: string; rss_after_init_mb?: number | null }) => {
    if (m.type === 'progress') lastProgress = m as Progress;
    if (m.type === 'started') afterStartup = m.rss_after_init_mb ?? null;
  });
  let r: Rss100kResult | undefined;
  let killed = false;
  try {
    r = await child.next<Rss100kResult>('result', (RSS_100K_BUDGET_S + KILL_GRACE_S) * 1000);
  } catch {
    parentSeenHwm = Math.max(parentSeenHwm, procMemoryMb(pid)?.hwm ?? 0);
    killed = child.process.kill('SIGKILL');
  }
  await child.exited;
  clearInterval(watch);
  const filesOnDisk = countFiles(vault, '.md');
  const counts = r?.nodes_done ?? lastProgress?.nodes_done;
  const done = counts ? counts.completed + counts.failed : null;
  const peak = r?.peak_rss_mb_vmhwm ?? (parentSeenHwm || r?.peak_rss_mb_sampled || null);
  const finished = r?.finished === true && r.status === 'completed';
  out(
    table([
      ['figure', 'value'],
      ['peak RSS (VmHWM) MB', fmt(peak, 1)],
      ['RSS after start-up MB', fmt(afterStartup, 1)],
      [
        'batch finished in the budget',
        finished
          ? 'yes'
          : `NO (${done ?? '?'} of ${NODES_100K} nodes recorded${killed ? '; child unresponsive, killed' : ''})`,
      ],
      ['result files on disk', String(filesOnDisk)],
      ['elapsed s', r ? fmt(r.elapsed_ms / 1000, 1) : `> ${RSS_100K_BUDGET_S + KILL_GRACE_S}`],
      ['submit (validation + store) ms', fmt(r?.submit_ms, 0)],
    ]),
  );
  const note = finished
    ? undefined
    : killed
      ? `the batch did not finish: after ${RSS_100K_BUDGET_S} s + ${KILL_GRACE_S} s grace the child had stopped answering (its event loop blocked; last progress at ${lastProgress ? `${fmt(lastProgress.elapsed_ms / 1000, 0)} s: ${done} nodes recorded` : 'none'}; ${filesOnDisk.toLocaleString('en')} result files on disk) and was killed; the peak is over that part only`
      : `the batch did not finish within ${RSS_100K_BUDGET_S} s (${(done ?? 0).toLocaleString('en')} of ${NODES_100K.toLocaleString('en')} nodes recorded, then cancelled): the peak is over that part only`;
  return {
    rss_mb_100k: figure(
      'rss-100k',
      peak === null ? null : round(peak, 1),
      'MB',
      { max: 400 },
      {
        pass: finished,
        beside: { rss_after_startup_mb: afterStartup },
        note,
        details: {
          nodes: NODES_100K,
          groups: NODES_100K / 1_000,
          budget_s: RSS_100K_BUDGET_S,
          killed_after_budget: killed,
          last_progress: lastProgress ?? null,
          result_files_on_disk: filesOnDisk,
          child: r ? { ...r, type: undefined } : null,
        },
      },
    ),
  };
}

function countFiles(dir: string, ext: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += countFiles(path.join(dir, e.name), ext);
    else if (e.name.endsWith(ext)) n++;
  }
  return n;
}

interface RssBatchesResult {
  type: 'result';
  rss_growth_mb: number;
  heap_growth_mb: number;
  rss_before_mb: number;
  rss_after_mb: number;
  tasks_left_at_end: number;
  run_ms: number;
  canvas_cache_entries: number | null;
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
      ['parsed canvases still cached (diagnostic)', String(r.canvas_cache_entries ?? 'n/a')],
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
        beside: { heap_used_growth_mb: r.heap_growth_mb, canvases_cached: r.canvas_cache_entries },
        note: r.tasks_left_at_end === 0 ? undefined : `${r.tasks_left_at_end} task(s) were not cleaned up`,
        details: { ...r, type: undefined },
      },
    ),
  };
}
