/**
 * Local model (issue 16): nodes per second and per-node latency with the real local provider at 1, 2 and 4 parallel
 * sequences — `LlmAgentRunner` on SmolLM2-135M-Instruct (Q4_1 GGUF, `.ci/fetch-model` or LOCAL_MODEL_PATH) loaded
 * once per setting, the same nodes through the real prompt templates, at most `sequences` nodes at once (what the
 * dispatcher allows). Reported, not asserted. Writes bench/results/local-model.json.
 *
 * `npm run bench -- local-model`, or on its own: `node -r @swc-node/register bench/local-model.ts`.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { LlmAgentRunner } from '../src/agent/llm/llm-agent-runner';
import type { AgentNodeInput } from '../src/agent/agent-runner';
import { loadAppConfig } from '../src/config/app.config';
import { localModelPath } from '../test/support/local-model';
import { fmt, out, percentile, round, table, runWhenMain, writeBenchResult } from './perf/common';

export const LOCAL_SEQUENCES = [1, 2, 4];
/** Nodes per setting: 6 short notes, the same for every setting. */
const NODES = 6;
/** A short answer (the figure is about throughput, not prose). */
const MAX_OUTPUT_TOKENS = 64;

const TOPICS = [
  'Osmosis moves water across a semi-permeable membrane toward the higher solute concentration.',
  'Newton’s second law: the net force on a body equals its mass times its acceleration.',
  'The mitochondrion makes ATP by oxidative phosphorylation across its inner membrane.',
  'A derivative measures how fast a function changes at a point: the slope of its tangent.',
  'The steam engine turned heat into work and powered the first factories and railways.',
  'Ribosomes translate messenger RNA into a chain of amino acids.',
  'Momentum is conserved in a collision when no external force acts on the bodies.',
  'Photosynthesis stores the energy of light in glucose, releasing oxygen.',
];

export interface LocalModelRun {
  sequences: number;
  nodes: number;
  completed: number;
  failed: number;
  load_ms: number;
  makespan_ms: number;
  nodes_per_s: number;
  latency_ms: { mean: number; p50: number; p95: number; max: number };
  output_tokens: number;
  output_tokens_per_s: number;
}

async function runOnce(model: string, sequences: number): Promise<LocalModelRun> {
  const config = loadAppConfig({
    AGENT_PROVIDER: 'local',
    AGENT_MODEL: model,
    AGENT_LOCAL_SEQUENCES: String(sequences),
    AGENT_MAX_OUTPUT_TOKENS: String(MAX_OUTPUT_TOKENS),
    LOG_LEVEL: 'silent',
  });
  const loadStarted = performance.now();
  const runner = await LlmAgentRunner.create(config.llm!);
  const loadMs = performance.now() - loadStarted;
  const nodes: AgentNodeInput[] = Array.from({ length: NODES }, (_, i) => ({
    canvasPath: 'bench.canvas',
    nodeId: `n${i}`,
    nodeType: 'text',
    content: TOPICS[i % TOPICS.length],
  }));
  const latencies: number[] = [];
  let failed = 0;
  let outputTokens = 0;
  const queue = [...nodes];
  const started = performance.now();
  // at most `sequences` nodes at once, as the dispatcher caps it
  await Promise.all(
    Array.from({ length: sequences }, async () => {
      for (let node = queue.shift(); node; node = queue.shift()) {
        const t0 = performance.now();
        try {
          const r = await runner.run({
            agentType: 'memory-anchor',
            node,
            signal: new AbortController().signal,
          });
          outputTokens += r.usage.outputTokens;
          latencies.push(performance.now() - t0);
        } catch {
          failed++;
        }
      }
    }),
  );
  const makespan = performance.now() - started;
  await runner.onApplicationShutdown();
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
  return {
    sequences,
    nodes: NODES,
    completed: latencies.length,
    failed,
    load_ms: round(loadMs, 0),
    makespan_ms: round(makespan, 0),
    nodes_per_s: round((latencies.length / makespan) * 1000, 3),
    latency_ms: {
      mean: round(mean, 0),
      p50: round(percentile(latencies, 50), 0),
      p95: round(percentile(latencies, 95), 0),
      max: round(Math.max(...latencies), 0),
    },
    output_tokens: outputTokens,
    output_tokens_per_s: round((outputTokens / makespan) * 1000, 1),
  };
}

export async function benchLocalModel(): Promise<
  { model: string; runs: LocalModelRun[] } | { skipped: string }
> {
  const model = localModelPath();
  if (!model) return { skipped: 'no local model (run .ci/fetch-model or set LOCAL_MODEL_PATH)' };
  const runs: LocalModelRun[] = [];
  for (const sequences of LOCAL_SEQUENCES) runs.push(await runOnce(model, sequences));
  return { model: path.basename(model), runs };
}

export function printLocalModel(r: Awaited<ReturnType<typeof benchLocalModel>>): void {
  if ('skipped' in r) {
    out(`local model: skipped, ${r.skipped}`);
    return;
  }
  out(
    table([
      ['sequences', 'nodes/s', 'latency mean ms', 'p50', 'p95', 'tokens/s', 'failed', 'load ms'],
      ...r.runs.map((x) => [
        String(x.sequences),
        fmt(x.nodes_per_s, 3),
        fmt(x.latency_ms.mean, 0),
        fmt(x.latency_ms.p50, 0),
        fmt(x.latency_ms.p95, 0),
        fmt(x.output_tokens_per_s, 1),
        String(x.failed),
        fmt(x.load_ms, 0),
      ]),
    ]),
  );
}

/** Runs the section and writes bench/results/local-model.json (with the machine it ran on). */
export async function runLocalModelBench(): Promise<Awaited<ReturnType<typeof benchLocalModel>>> {
  const loadBefore = os.loadavg();
  const r = await benchLocalModel();
  printLocalModel(r);
  writeBenchResult('local-model', loadBefore, {
    agent: 'memory-anchor',
    max_output_tokens: MAX_OUTPUT_TOKENS,
    ...r,
  });
  return r;
}

runWhenMain(module, runLocalModelBench);
