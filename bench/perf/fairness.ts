/**
 * `fairness_small_batch_slowdown`: a 10-node batch submitted while a 2,000-node batch runs (50 ms per node for
 * both, global cap 12, each batch's own cap 12) — its completion time / its solo time — and what the big batch pays
 * for it (its makespan beside the small batches / its makespan alone), for every scheduling policy side by side
 * (`fair`, `least-work`, `fifo`). The figure is the default policy's slowdown; the issue's aim is ≤ 1.3 with the big
 * batch's makespan growing ≤ 5 %.
 *
 * Per policy, in its own application context and data dir: one unmeasured small batch (warm-up), then SMALL_REPS
 * small batches alone (the solo time is their median), then the big batch alone, to its end (its solo makespan),
 * then the big batch again on a fresh canvas and, once it holds its slots, SMALL_REPS small batches one after the
 * other while it runs (the loaded time is their median); the big batch then runs to its end (its loaded makespan).
 * The small batches add 70 nodes to the big batch's 2,000, so any policy that keeps every slot busy grows its
 * makespan by ≈ 3.5 % (`big_growth_beyond_added_work` takes that out).
 *
 * No policy can start a small batch before running agents end (there is no preemption): in this run the big
 * batch's 12 agents end about together every 50 ms, so even a small batch that gets every freed slot first waits
 * ~25 ms on median for them, against a ~60 ms solo time. The section measures that floor: at each loaded small
 * batch's submission, when the big batch's running agents (their starts recorded by the runner) leave enough slots
 * for its 10 nodes (`floor_wait_ms`); `floor_slowdown` = (median solo + median floor wait) / median solo is what a
 * policy that hands every freed slot to the small batch at once would get. `last_start_ms`: submission → its last
 * node's agent call, alone and beside the big batch (the slots' part of the slowdown).
 *
 * A second variant (`wide_slowdown`, not part of the figure): the same small batches beside a big batch whose own
 * cap is 24, twice the global cap, so it always has jobs waiting for a global slot (cancelled afterwards). There
 * `fifo` queues a small batch behind those waiters, which the first variant hides: with the big batch's cap equal
 * to the global cap, its next job only asks for a global slot after one of its own has freed one, so under `fifo`
 * the small batch's waiters are first in line anyway.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OPTION_DEFAULTS } from '../../src/config/canvas-batch-options';
import { BatchOrchestrator } from '../../src/orchestrator/batch-orchestrator.service';
import {
  checkCompleted,
  closeContext,
  createContext,
  type Figure,
  figure,
  fmt,
  median,
  out,
  round,
  runBatch,
  SleepingRunner,
  table,
  writeCanvas,
} from './common';

const AGENT = 'oral-explanation';
const CONCURRENCY = 12;
const NODE_MS = 50;
const BIG_NODES = 2_000;
const SMALL_NODES = 10;
const SMALL_REPS = 7;
/** The big batch runs this long before the first small batch arrives. */
const SETTLE_MS = 500;
/** Second variant: the big batch's own cap is twice the global cap, so it always has jobs waiting for a slot. */
const WIDE_CAP = 2 * CONCURRENCY;

const MODES = ['fair', 'least-work', 'fifo'] as const;
type Mode = (typeof MODES)[number];
/** The figure's value is the default configuration's. */
const DEFAULT_MODE: Mode = OPTION_DEFAULTS.scheduling;

interface ModeResult {
  solo_ms: number[];
  loaded_ms: number[];
  slowdown: number;
  big_solo_ms: number;
  big_loaded_ms: number;
  /** big loaded / big solo − 1. */
  big_growth: number;
  /** big loaded / (big solo × (big + small nodes) / big) − 1: the growth beyond the work the small batches add. */
  big_growth_beyond_added_work: number;
  big_still_running_throughout: boolean;
  /** Submission → the small batch's last agent call, alone and beside the big batch. */
  solo_last_start_ms: number[];
  loaded_last_start_ms: number[];
  /** At each loaded submission: how long until running big agents leave slots for every small node. */
  floor_wait_ms: number[];
  floor_slowdown: number;
  /** The same beside a big batch whose own cap is WIDE_CAP (cancelled afterwards, its makespan is not measured). */
  wide_loaded_ms: number[];
  wide_slowdown: number;
  wide_still_running_throughout: boolean;
}

/** When enough of the big batch's agents running at `t` (started at `starts`) have ended to free `need` slots. */
function floorWait(starts: readonly number[], t: number, need: number): number {
  const ends = starts
    .filter((s) => s <= t && s + NODE_MS > t)
    .map((s) => s + NODE_MS - t)
    .sort((a, b) => a - b);
  const free = CONCURRENCY - ends.length;
  return need <= free ? 0 : ends[need - free - 1];
}

async function measureMode(root: string, vault: string, mode: Mode): Promise<ModeResult> {
  // every agent call's start, per canvas
  const starts = new Map<string, number[]>();
  const runner = new SleepingRunner((request) => {
    const at = performance.now();
    const list = starts.get(request.node.canvasPath);
    if (list) list.push(at);
    else starts.set(request.node.canvasPath, [at]);
    return NODE_MS;
  });
  const lastStart = (relPath: string, t0: number) => Math.max(...(starts.get(relPath) ?? [Number.NaN])) - t0;
  const app = await createContext({
    vaultRoot: vault,
    dataDir: path.join(root, `data-fairness-${mode}`),
    globalMaxConcurrent: CONCURRENCY,
    scheduling: mode,
    agentRunner: runner,
  });
  const small = (name: string) => {
    const c = writeCanvas(vault, `fairness/${mode}-${name}.canvas`, SMALL_NODES);
    return { relPath: c.relPath, groups: [{ groupId: 1, agentType: AGENT, nodeIds: c.nodeIds }] };
  };
  const big = (name: string) => {
    const c = writeCanvas(vault, `fairness/${mode}-${name}.canvas`, BIG_NODES);
    return { relPath: c.relPath, groups: [{ groupId: 1, agentType: AGENT, nodeIds: c.nodeIds }] };
  };
  try {
    const orchestrator = app.get(BatchOrchestrator);
    const warm = small('warmup');
    checkCompleted([(await runBatch(orchestrator, warm.relPath, warm.groups)).task], 'fairness warm-up');

    const solo: number[] = [];
    const soloLastStart: number[] = [];
    for (let i = 0; i < SMALL_REPS; i++) {
      const s = small(`solo-${i + 1}`);
      const t = performance.now();
      const run = await runBatch(orchestrator, s.relPath, s.groups);
      checkCompleted([run.task], `fairness solo (${mode})`);
      solo.push(run.ms);
      soloLastStart.push(lastStart(s.relPath, t));
    }

    const bigSolo = big('big-solo');
    const soloRun = await runBatch(orchestrator, bigSolo.relPath, bigSolo.groups);
    checkCompleted([soloRun.task], `fairness big batch alone (${mode})`);

    /** Submits a big batch, then SMALL_REPS small batches one after the other while it runs. */
    const beside = async (name: string, bigCap: number) => {
      const b = big(name);
      const t0 = performance.now();
      const { task } = await orchestrator.submit({
        canvasPath: b.relPath,
        groups: b.groups,
        maxConcurrent: bigCap,
        timeoutMs: 3_600_000,
      });
      const done = orchestrator.waitForCompletion(task.taskId);
      await sleep(SETTLE_MS);
      let stillRunning = (await orchestrator.live(task.taskId)) !== undefined;
      const loaded: number[] = [];
      const lastStarts: number[] = [];
      const floor: number[] = [];
      for (let i = 0; i < SMALL_REPS; i++) {
        const s = small(`${name}-small-${i + 1}`);
        const t = performance.now();
        floor.push(floorWait(starts.get(b.relPath) ?? [], t, SMALL_NODES));
        const run = await runBatch(orchestrator, s.relPath, s.groups);
        checkCompleted([run.task], `fairness loaded (${mode}, ${name})`);
        loaded.push(run.ms);
        lastStarts.push(lastStart(s.relPath, t));
        stillRunning &&= (await orchestrator.live(task.taskId)) !== undefined;
      }
      return { taskId: task.taskId, t0, done, loaded, lastStarts, floor, stillRunning };
    };

    const main = await beside('big-loaded', CONCURRENCY);
    const bigTaskDone = await main.done;
    const bigLoadedMs = performance.now() - main.t0;
    checkCompleted([bigTaskDone], `fairness big batch beside the small ones (${mode})`);
    const { loaded, floor, stillRunning } = main;
    const loadedLastStart = main.lastStarts;

    // the big batch's own cap above the global one: it always has jobs waiting for a global slot
    const wide = await beside('big-wide', WIDE_CAP);
    if (await orchestrator.live(wide.taskId)) await orchestrator.cancel(wide.taskId);
    await wide.done;

    const added = (BIG_NODES + SMALL_REPS * SMALL_NODES) / BIG_NODES;
    return {
      solo_ms: solo.map((x) => round(x, 1)),
      loaded_ms: loaded.map((x) => round(x, 1)),
      slowdown: median(loaded) / median(solo),
      big_solo_ms: round(soloRun.ms, 1),
      big_loaded_ms: round(bigLoadedMs, 1),
      big_growth: bigLoadedMs / soloRun.ms - 1,
      big_growth_beyond_added_work: bigLoadedMs / (soloRun.ms * added) - 1,
      big_still_running_throughout: stillRunning,
      solo_last_start_ms: soloLastStart.map((x) => round(x, 1)),
      loaded_last_start_ms: loadedLastStart.map((x) => round(x, 1)),
      floor_wait_ms: floor.map((x) => round(x, 1)),
      floor_slowdown: (median(solo) + median(floor)) / median(solo),
      wide_loaded_ms: wide.loaded.map((x) => round(x, 1)),
      wide_slowdown: median(wide.loaded) / median(solo),
      wide_still_running_throughout: wide.stillRunning,
    };
  } finally {
    await closeContext(app);
  }
}

export async function benchFairness(root: string): Promise<Record<string, Figure>> {
  out(
    `fairness: a ${SMALL_NODES}-node batch while a ${BIG_NODES.toLocaleString('en')}-node batch runs, ${NODE_MS} ms per node, ${MODES.join(', ')} …`,
  );
  const vault = path.join(root, 'vault-fairness');
  mkdirSync(vault, { recursive: true });
  const results = {} as Record<Mode, ModeResult>;
  for (const mode of MODES) results[mode] = await measureMode(root, vault, mode);
  const pct = (x: number) => `${fmt(100 * x, 1)} %`;
  out(
    table([
      [
        'scheduling',
        'small solo ms (median)',
        'small beside the big batch ms (median)',
        'slowdown',
        'big alone ms',
        'big beside ms',
        'big growth',
        'beyond added work',
        'big ran throughout',
        'last node started ms alone / beside',
        'floor wait ms',
        'floor slowdown',
        `slowdown, big batch's cap ${WIDE_CAP}`,
      ],
      ...MODES.map((m) => [
        m === DEFAULT_MODE ? `${m} (default)` : m,
        fmt(median(results[m].solo_ms), 0),
        fmt(median(results[m].loaded_ms), 0),
        fmt(results[m].slowdown, 2),
        fmt(results[m].big_solo_ms, 0),
        fmt(results[m].big_loaded_ms, 0),
        pct(results[m].big_growth),
        pct(results[m].big_growth_beyond_added_work),
        results[m].big_still_running_throughout ? 'yes' : 'NO',
        `${fmt(median(results[m].solo_last_start_ms), 0)} / ${fmt(median(results[m].loaded_last_start_ms), 0)}`,
        fmt(median(results[m].floor_wait_ms), 0),
        fmt(results[m].floor_slowdown, 2),
        results[m].wide_still_running_throughout ? fmt(results[m].wide_slowdown, 2) : 'n/a (big ended)',
      ]),
    ]),
  );
  const valid = MODES.every((m) => results[m].big_still_running_throughout);
  const others = MODES.filter((m) => m !== DEFAULT_MODE);
  return {
    fairness_small_batch_slowdown: figure(
      'fairness',
      round(results[DEFAULT_MODE].slowdown, 3),
      'ratio',
      { max: 1.3 },
      {
        pass: valid,
        beside: {
          ...Object.fromEntries(others.map((m) => [m, round(results[m].slowdown, 3)])),
          ...Object.fromEntries(MODES.map((m) => [`big_growth_${m}`, round(results[m].big_growth, 3)])),
        },
        note: valid
          ? undefined
          : 'the big batch finished before the small batches did: not a loaded measurement',
        details: {
          policy: DEFAULT_MODE,
          node_ms: NODE_MS,
          big_nodes: BIG_NODES,
          small_nodes: SMALL_NODES,
          reps: SMALL_REPS,
          global_max_concurrent: CONCURRENCY,
          max_concurrent_each: CONCURRENCY,
          definition:
            'median(small batch submit→done beside the big batch) / median(small batch alone); big growth = big ' +
            'batch makespan beside the small batches / alone − 1',
          aim: { slowdown_max: 1.3, big_growth_max: 0.05 },
          ...Object.fromEntries(
            MODES.map((m) => [
              m,
              {
                ...results[m],
                slowdown: round(results[m].slowdown, 3),
                big_growth: round(results[m].big_growth, 4),
                big_growth_beyond_added_work: round(results[m].big_growth_beyond_added_work, 4),
                floor_slowdown: round(results[m].floor_slowdown, 3),
                wide_slowdown: round(results[m].wide_slowdown, 3),
              },
            ]),
          ),
        },
      },
    ),
  };
}
