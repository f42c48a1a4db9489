import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { loadAppConfig } from './app.config';
import {
  OPTION_DEFAULTS,
  InjectCanvasBatchOptions,
  RESOLVED_OPTIONS,
  resolveOptions,
  type ResolvedCanvasBatchOptions,
} from './canvas-batch-options';

describe('resolveOptions', () => {
  it('fills in the defaults around the two required paths', () => {
    expect(resolveOptions({ vaultRoot: '/v', dataDir: '/d' })).toEqual({
      vaultRoot: '/v',
      dataDir: '/d',
      globalMaxConcurrent: 12,
      sessionTtlMinutes: 30,
      cleanupIntervalMs: 60_000,
      progressIntervalMs: 500,
      keepAliveIntervalMs: 15_000,
      agentTimeoutMs: 120_000,
      agentLatencyMs: 0,
      agentStream: false,
      shutdownGraceMs: 30_000,
      maxInputChars: 262_144,
      maxResultBytes: 1_048_576,
      scheduling: 'least-work',
      adaptiveConcurrency: true,
      resultCache: true,
      resultCacheMaxEntries: 10_000,
      resultCacheTtlHours: 720,
      memoryDelivery: {
        batchSize: 500,
        retryBaseMs: 500,
        retryMaxMs: 30_000,
        idlePollMs: 2_000,
        lingerMs: 50,
        attemptTimeoutMs: 30_000,
        shutdownAttemptMs: 5_000,
      },
    });
  });

  it('merges memory delivery tuning over its defaults, member by member', () => {
    const resolved = resolveOptions({
      vaultRoot: '/v',
      dataDir: '/d',
      memoryDelivery: { batchSize: 10, retryMaxMs: undefined },
    });
    expect(resolved.memoryDelivery).toEqual({ ...OPTION_DEFAULTS.memoryDelivery, batchSize: 10 });
    expect('neo4j' in resolved).toBe(false);
  });

  it('keeps given values and ignores explicit undefined (so a default is not erased)', () => {
    const resolved = resolveOptions({
      vaultRoot: '/v',
      dataDir: '/d',
      globalMaxConcurrent: 3,
      agentLatencyMs: 0,
      sessionTtlMinutes: undefined,
      llm: undefined,
    });
    expect(resolved.globalMaxConcurrent).toBe(3);
    expect(resolved.agentLatencyMs).toBe(0);
    expect(resolved.sessionTtlMinutes).toBe(30);
    expect('llm' in resolved).toBe(false);
  });

  it('takes only the settings: a host object given along is not copied', () => {
    const hostObjects = { agentRunner: {}, memoryStore: {}, neo4j: { uri: 'bolt://h' } };
    const resolved = resolveOptions({ vaultRoot: '/v', dataDir: '/d', ...hostObjects });
    for (const key of Object.keys(hostObjects)) expect(key in resolved).toBe(false);
  });

  it("prices usage with the LLM settings' prices unless tokenPrices are given", () => {
    const llm = loadAppConfig({
      AGENT_PROVIDER: 'anthropic',
      AGENT_API_KEY: 'k',
      AGENT_PRICE_PER_MTOK: '3,15',
    }).llm;
    expect(resolveOptions({ vaultRoot: '/v', dataDir: '/d', llm })).toMatchObject({
      llm,
      tokenPrices: { inputPerMTok: 3, outputPerMTok: 15 },
    });
    const tokenPrices = { inputPerMTok: 1, outputPerMTok: 2 };
    expect(resolveOptions({ vaultRoot: '/v', dataDir: '/d', llm, tokenPrices }).tokenPrices).toBe(
      tokenPrices,
    );
  });
});

describe('OPTION_DEFAULTS', () => {
  it('is the one source of the defaults: resolveOptions and the environment loader agree', () => {
    const resolved = resolveOptions({ vaultRoot: '/v', dataDir: '/d' });
    const { vaultRoot: _v, dataDir: _d, ...defaults } = resolved;
    expect(defaults).toEqual(OPTION_DEFAULTS);
    const env = loadAppConfig({});
    expect({
      globalMaxConcurrent: env.globalMaxConcurrent,
      sessionTtlMinutes: env.sessionTtlMinutes,
      agentTimeoutMs: env.agentTimeoutMs,
      agentLatencyMs: env.agentLatencyMs,
      agentStream: env.agentStream,
      shutdownGraceMs: env.shutdownGraceMs,
      maxInputChars: env.agentMaxInputChars,
      maxResultBytes: env.resultMaxBytes,
      adaptiveConcurrency: env.adaptiveConcurrency,
      memoryBatchSize: env.memoryBatchSize,
      memoryRetryMaxMs: env.memoryRetryMaxMs,
      memoryAttemptTimeoutMs: env.memoryAttemptTimeoutMs,
      memoryShutdownMs: env.memoryShutdownMs,
    }).toEqual({
      globalMaxConcurrent: resolved.globalMaxConcurrent,
      sessionTtlMinutes: resolved.sessionTtlMinutes,
      agentTimeoutMs: resolved.agentTimeoutMs,
      agentLatencyMs: { min: resolved.agentLatencyMs, max: resolved.agentLatencyMs },
      agentStream: resolved.agentStream,
      shutdownGraceMs: resolved.shutdownGraceMs,
      maxInputChars: resolved.maxInputChars,
      maxResultBytes: resolved.maxResultBytes,
      adaptiveConcurrency: resolved.adaptiveConcurrency,
      memoryBatchSize: resolved.memoryDelivery.batchSize,
      memoryRetryMaxMs: resolved.memoryDelivery.retryMaxMs,
      memoryAttemptTimeoutMs: resolved.memoryDelivery.attemptTimeoutMs,
      memoryShutdownMs: resolved.memoryDelivery.shutdownAttemptMs,
    });
  });
});

describe('InjectCanvasBatchOptions', () => {
  it('injects the resolved options token', async () => {
    @Injectable()
    class NeedsOptions {
      constructor(@InjectCanvasBatchOptions() readonly options: ResolvedCanvasBatchOptions) {}
    }
    const options = resolveOptions({ vaultRoot: '/v', dataDir: '/d' });
    @Module({ providers: [{ provide: RESOLVED_OPTIONS, useValue: options }, NeedsOptions] })
    class TestModule {}
    const moduleRef = await Test.createTestingModule({ imports: [TestModule] }).compile();
    expect(moduleRef.get(NeedsOptions).options).toBe(options);
    await moduleRef.close();
  });
});
