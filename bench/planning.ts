/**
 * Plan latency (`POST /parallel/plan`'s work, `PlannerService.plan`) on canvases of 1,000 and 10,000 text nodes:
 * canvas parse, tokenising (Intl.Segmenter), routing, BM25 vectors, K-Means over K = 3..10 with the silhouette, the
 * groups. Notes are drawn from 20 topics of 40 words each (deterministic), English and Chinese mixed. Each size is
 * planned 3 times (the first also warms up); the median is reported, and the 10,000/1,000 ratio beside it. Writes
 * bench/results/planning.json; also on its own: `node -r @swc-node/register bench/planning.ts`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AgentRouter } from '../src/agent/agent-router.service';
import { OfflineAgentRunner } from '../src/agent/offline-agent-runner';
import type { CanvasService } from '../src/canvas/canvas.service';
import type { VaultService } from '../src/canvas/vault.service';
import { PlannerService } from '../src/planning/planner.service';
import { runWhenMain, writeBenchResult } from './perf/common';

const SIZES = [1000, 10_000];
const RUNS = 3;

const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

/** A canvas of `n` text notes, each 12–30 words of one topic (some with a cue word an agent pattern knows). */
function canvasOf(n: number): string {
  let seed = 7;
  const rnd = (): number => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const topics = Array.from({ length: 20 }, (_, t) =>
    Array.from({ length: 40 }, (_, w) =>
      t % 4 === 3
        ? `${'主题领域概念'[t % 6]}${'甲乙丙丁戊己庚辛壬癸'[w % 10]}${'子丑寅卯辰巳午未申酉'[Math.floor(w / 10)]}`
        : `${String.fromCharCode(97 + t)}${String.fromCharCode(97 + (w % 26))}${String.fromCharCode(97 + Math.floor(w / 26))}term`,
    ),
  );
  const cues = ['', '', '', 'compare', 'for example', 'why', 'remember', 'exam review', 'mistake'];
  const nodes = Array.from({ length: n }, (_, i) => {
    const topic = topics[Math.floor(rnd() * topics.length)];
    const words = Array.from({ length: 12 + Math.floor(rnd() * 18) }, () => topic[Math.floor(rnd() * 40)]);
    const text = `${cues[Math.floor(rnd() * cues.length)]} ${words.join(' ')}`.trim();
    return {
      id: `n${i}`,
      type: 'text',
      text,
      x: (i % 100) * 300,
      y: Math.floor(i / 100) * 200,
      width: 250,
      height: 150,
    };
  });
  return JSON.stringify({ nodes, edges: [] });
}

export interface PlanningBench {
  sizes: { nodes: number; median_ms: number; runs_ms: number[]; k: number; silhouette: number | null }[];
  ratio_10k_to_1k: number;
}

export async function benchPlanning(): Promise<PlanningBench> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'canvas-batch-bench-plan-'));
  try {
    const sizes: PlanningBench['sizes'] = [];
    for (const n of SIZES) {
      const file = path.join(root, `plan-${n}.canvas`);
      writeFileSync(file, canvasOf(n));
      // the vault's two calls a plan of text nodes makes (no file nodes: no CanvasService call)
      const vault = {
        resolveCanvas: (rel: string) => Promise.resolve({ relPath: rel, absPath: file }),
        files: { readFile: (abs: string) => readFile(abs) },
      } as unknown as VaultService;
      const planner = new PlannerService(
        vault,
        {} as CanvasService,
        new AgentRouter(new OfflineAgentRunner(0)),
      );
      const runs: number[] = [];
      let last: Awaited<ReturnType<PlannerService['plan']>> | undefined;
      for (let r = 0; r < RUNS; r++) {
        const t0 = performance.now();
        last = await planner.plan({ canvas_path: `plan-${n}.canvas` });
        runs.push(round(performance.now() - t0));
      }
      const median = [...runs].sort((a, b) => a - b)[Math.floor(RUNS / 2)];
      sizes.push({
        nodes: n,
        median_ms: median,
        runs_ms: runs,
        k: last!.clustering.k,
        silhouette: last!.clustering.silhouette,
      });
      out(`plan of ${n} nodes: median ${median} ms (runs ${runs.join(', ')} ms), k=${last!.clustering.k}`);
    }
    const ratio = round(sizes[1].median_ms / sizes[0].median_ms, 2);
    out(`10,000 / 1,000 nodes: ${ratio}×`);
    return { sizes, ratio_10k_to_1k: ratio };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Runs the section and writes bench/results/planning.json (with the machine it ran on). */
export async function runPlanningBench(): Promise<PlanningBench> {
  const loadBefore = os.loadavg();
  const r = await benchPlanning();
  writeBenchResult('planning', loadBefore, { ...r });
  return r;
}

runWhenMain(module, runPlanningBench);
