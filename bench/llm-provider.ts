/**
 * (e) Rate-limited provider: 200 nodes through the real LLM runner (the AI SDK over loopback) against the fake
 * provider with a capacity of 8 concurrent requests and 400–1200 ms latency, `GLOBAL_MAX_CONCURRENT=12`, with
 * adaptive concurrency on and off, side by side.
 */
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { LlmAgentRunner } from '../src/agent/llm/llm-agent-runner';
import type { LlmSettings } from '../src/config/llm-settings';
import type { CanvasBatchOptions } from '../src/orchestrator/orchestrator.module-definition';
import { BatchOrchestrator } from '../src/orchestrator/batch-orchestrator.service';
import { Dispatcher } from '../src/orchestrator/dispatch/dispatcher';
import { OrchestratorModule } from '../src/orchestrator/orchestrator.module';
import { startFakeLlm } from '../test/support/fake-llm-server';

export const E_NODES = 200;
export const E_CAPACITY = 8;
export const E_LATENCY = { min: 400, max: 1200 };
export const E_GLOBAL = 12;
/** What the fake provider answers over capacity: `Retry-After: 1` (seconds), as hosted APIs do. */
export const E_RETRY_AFTER_S = 1;

@Module({})
class LlmBenchModule {
  static with(options: CanvasBatchOptions): DynamicModule {
    return {
      module: LlmBenchModule,
      imports: [EventEmitterModule.forRoot(), OrchestratorModule.forRoot(options)],
    };
  }
}

export interface ProviderRun {
  adaptive: boolean;
  status: string;
  completed_nodes: number;
  failed_nodes: number;
  makespan_ms: number;
  /** Requests the provider answered 200 per second. */
  throughput_per_s: number;
  /** What the provider can serve: capacity / mean latency of the answered requests. */
  capacity_per_s: number;
  /** throughput / capacity (1.0 = every provider slot busy with useful work all the time). */
  fraction_of_capacity: number;
  requests: number;
  rate_limited_429: number;
  /** Provider calls per node (mean). */
  attempts_per_node: number;
  peak_in_flight_at_provider: number;
  /** The effective limit at the end, and its lowest value during the run (adaptive only). */
  final_limit: number;
  min_limit: number;
}

async function runOnce(root: string, adaptive: boolean, seed: number): Promise<ProviderRun> {
  const fake = await startFakeLlm({
    capacity: E_CAPACITY,
    latencyMs: E_LATENCY,
    retryAfterSeconds: E_RETRY_AFTER_S,
    apiKey: 'bench-key',
    seed,
  });
  const vault = path.join(root, `vault-e-${String(adaptive)}`);
  const rel = 'provider/provider.canvas';
  const nodes = Array.from({ length: E_NODES }, (_, i) => ({
    id: `e${i.toString(16).padStart(14, '0')}`,
    type: 'text',
    text: `Concept ${i}: how enzymes lower the activation energy of a reaction.`,
    x: (i % 20) * 480,
    y: Math.floor(i / 20) * 280,
    width: 400,
    height: 200,
  }));
  mkdirSync(path.join(vault, 'provider'), { recursive: true });
  writeFileSync(path.join(vault, rel), JSON.stringify({ nodes, edges: [] }));
  const settings: LlmSettings = {
    provider: 'openai-compatible',
    model: 'bench-model',
    baseUrl: fake.baseUrl('openai'),
    apiKey: 'bench-key',
    stream: false,
    retry: { maxAttempts: 8, baseDelayMs: 500, maxDelayMs: 30_000 },
    contextTokens: 4000,
    maxOutputTokens: 512,
    prices: undefined,
  };
  const app = await NestFactory.createApplicationContext(
    LlmBenchModule.with({
      vaultRoot: vault,
      dataDir: path.join(root, `data-e-${String(adaptive)}`),
      globalMaxConcurrent: E_GLOBAL,
      adaptiveConcurrency: adaptive,
      agentRunner: new LlmAgentRunner(settings),
    }),
    { logger: ['error', 'warn'] },
  );
  await app.init();
  try {
    const orchestrator = app.get(BatchOrchestrator);
    const dispatcher = app.get(Dispatcher);
    let minLimit = (await dispatcher.state()).limit;
    const watch = setInterval(
      () => void dispatcher.state().then((s) => (minLimit = Math.min(minLimit, s.limit))),
      5,
    );
    const t0 = performance.now();
    const { task } = await orchestrator.submit({
      canvasPath: rel,
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: nodes.map((n) => n.id) }],
      maxConcurrent: E_GLOBAL,
      timeoutMs: 600_000,
    });
    const done = await orchestrator.waitForCompletion(task.taskId);
    const makespanMs = performance.now() - t0;
    clearInterval(watch);
    await fake.idle();
    const ok = fake.log.filter((e) => e.status === 200);
    const meanLatencyS = ok.reduce((a, e) => a + (e.closedAt! - e.arrivedAt), 0) / ok.length / 1000;
    const throughput = ok.length / (makespanMs / 1000);
    const capacityPerS = E_CAPACITY / meanLatencyS;
    const failed = done.status === 'completed' ? 0 : E_NODES - ok.length;
    return {
      adaptive,
      status: done.status,
      completed_nodes: ok.length,
      failed_nodes: failed,
      makespan_ms: Math.round(makespanMs),
      throughput_per_s: round(throughput, 3),
      capacity_per_s: round(capacityPerS, 3),
      fraction_of_capacity: round(throughput / capacityPerS, 3),
      requests: fake.log.length,
      rate_limited_429: fake.log.filter((e) => e.status === 429).length,
      attempts_per_node: round(fake.log.length / E_NODES, 3),
      peak_in_flight_at_provider: fake.peakInFlight,
      final_limit: (await dispatcher.state()).limit,
      min_limit: minLimit,
    };
  } finally {
    for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    await app.close();
    await fake.close();
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Adaptive first, then fixed, on the same seeded latency draws. */
export async function benchProvider(root: string): Promise<{ adaptive: ProviderRun; fixed: ProviderRun }> {
  const adaptive = await runOnce(root, true, 7);
  const fixed = await runOnce(root, false, 7);
  return { adaptive, fixed };
}
