/**
 * `fairness_small_batch_slowdown`: a 10-node batch submitted while a 2,000-node batch runs (50 ms per node for
 * both, global cap 12, each batch's own cap 12) — its completion time / its solo time, fair and FIFO side by side.
 *
 * Per scheduling mode, in its own application context and data dir: one unmeasured small batch (warm-up), then
 * SMALL_REPS small batches alone (the solo time is their median), then the big batch is started and, once it holds
 * its slots, SMALL_REPS small batches are submitted one after the other while it runs (the loaded time is their
 * median). The big batch is then cancelled (abort): it only has to be running, not to finish.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

const MODES = ['fair', 'fifo'] as const;
type Mode = (typeof MODES)[number];

interface ModeResult {
  solo_ms: number[];
  loaded_ms: number[];
  slowdown: number;
  big_completed_when_cancelled: number;
  big_still_running_throughout: boolean;
}

async function measureMode(root: string, vault: string, mode: Mode): Promise<ModeResult> {
  const runner = new SleepingRunner(() => NODE_MS);
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
  const big = writeCanvas(vault, `fairness/${mode}-big.canvas`, BIG_NODES);
  try {
    const orchestrator = app.get(BatchOrchestrator);
    const warm = small('warmup');
    checkCompleted([(await runBatch(orchestrator, warm.relPath, warm.groups)).task], 'fairness warm-up');

    const solo: number[] = [];
    for (let i = 0; i < SMALL_REPS; i++) {
      const s = small(`solo-${i + 1}`);
      const run = await runBatch(orchestrator, s.relPath, s.groups);
      checkCompleted([run.task], `fairness solo (${mode})`);
      solo.push(run.ms);
    }

    const { task: bigTask } = await orchestrator.submit({
      canvasPath: big.relPath,
      groups: [{ groupId: 1, agentType: AGENT, nodeIds: big.nodeIds }],
      maxConcurrent: CONCURRENCY,
      timeoutMs: 3_600_000,
    });
    const bigDone = orchestrator.waitForCompletion(bigTask.taskId);
    await sleep(SETTLE_MS);
    let stillRunning = (await orchestrator.live(bigTask.taskId)) !== undefined;
    const loaded: number[] = [];
    for (let i = 0; i < SMALL_REPS; i++) {
      const s = small(`loaded-${i + 1}`);
      const run = await runBatch(orchestrator, s.relPath, s.groups);
      checkCompleted([run.task], `fairness loaded (${mode})`);
      loaded.push(run.ms);
      stillRunning &&= (await orchestrator.live(bigTask.taskId)) !== undefined;
    }
    const completedBig = (await app.get(BatchOrchestrator).live(bigTask.taskId))
      ? (await orchestrator.cancel(bigTask.taskId, 'abort')).completed_count
      : BIG_NODES;
    await bigDone;
    return {
      solo_ms: solo.map((x) => round(x, 1)),
      loaded_ms: loaded.map((x) => round(x, 1)),
      slowdown: median(loaded) / median(solo),
      big_completed_when_cancelled: completedBig,
      big_still_running_throughout: stillRunning,
    };
  } finally {
    await closeContext(app);
  }
}

export async function benchFairness(root: string): Promise<Record<string, Figure>> {
  out(
    `fairness: a ${SMALL_NODES}-node batch while a ${BIG_NODES.toLocaleString('en')}-node batch runs, ${NODE_MS} ms per node, fair and fifo …`,
  );
  const vault = path.join(root, 'vault-fairness');
  mkdirSync(vault, { recursive: true });
  const results = {} as Record<Mode, ModeResult>;
  for (const mode of MODES) results[mode] = await measureMode(root, vault, mode);
  out(
    table([
      [
        'scheduling',
        'solo ms (median)',
        'beside the big batch ms (median)',
        'slowdown',
        'big batch ran throughout',
      ],
      ...MODES.map((m) => [
        m,
        fmt(median(results[m].solo_ms), 0),
        fmt(median(results[m].loaded_ms), 0),
        fmt(results[m].slowdown, 2),
        results[m].big_still_running_throughout ? 'yes' : 'NO',
      ]),
    ]),
  );
  const valid = MODES.every((m) => results[m].big_still_running_throughout);
  return {
    fairness_small_batch_slowdown: figure(
      'fairness',
      round(results.fair.slowdown, 3),
      'ratio',
      { max: 2.5 },
      {
        pass: valid,
        beside: { fifo: round(results.fifo.slowdown, 3) },
        note: valid
          ? undefined
          : 'the big batch finished before the small batches did: not a loaded measurement',
        details: {
          node_ms: NODE_MS,
          big_nodes: BIG_NODES,
          small_nodes: SMALL_NODES,
          reps: SMALL_REPS,
          global_max_concurrent: CONCURRENCY,
          max_concurrent_each: CONCURRENCY,
          definition: 'median(small batch submit→done beside the big batch) / median(small batch alone)',
          fair: { ...results.fair, slowdown: round(results.fair.slowdown, 3) },
          fifo: { ...results.fifo, slowdown: round(results.fifo.slowdown, 3) },
        },
      },
    ),
  };
}
