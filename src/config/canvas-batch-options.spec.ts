import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  MEMORY_DELIVERY_DEFAULTS,
  CANVAS_BATCH_ASYNC_OPTIONS_TYPE,
  CANVAS_BATCH_OPTIONS,
  CANVAS_BATCH_OPTIONS_TYPE,
  CanvasBatchConfigurableModule,
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
      shutdownGraceMs: 30_000,
      maxInputChars: 262_144,
      maxResultBytes: 1_048_576,
      scheduling: 'fair',
      adaptiveConcurrency: true,
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
    expect(resolved.memoryDelivery).toEqual({ ...MEMORY_DELIVERY_DEFAULTS, batchSize: 10 });
    expect('neo4j' in resolved).toBe(false);
  });

  it('keeps given values and ignores explicit undefined (so a default is not erased)', () => {
    const resolved = resolveOptions({
      vaultRoot: '/v',
      dataDir: '/d',
      globalMaxConcurrent: 3,
      agentLatencyMs: 0,
      sessionTtlMinutes: undefined,
      agentRunner: undefined,
    });
    expect(resolved.globalMaxConcurrent).toBe(3);
    expect(resolved.agentLatencyMs).toBe(0);
    expect(resolved.sessionTtlMinutes).toBe(30);
    expect('agentRunner' in resolved).toBe(false);
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

describe('CanvasBatchConfigurableModule', () => {
  it('provides forRoot, registering the raw options under CANVAS_BATCH_OPTIONS', async () => {
    const dynamic = CanvasBatchConfigurableModule.forRoot({ vaultRoot: '/v', dataDir: '/d' });
    const moduleRef = await Test.createTestingModule({ imports: [dynamic] }).compile();
    expect(moduleRef.get(CANVAS_BATCH_OPTIONS)).toEqual({ vaultRoot: '/v', dataDir: '/d' });
    await moduleRef.close();
  });

  it('provides forRootAsync with a factory', async () => {
    const dynamic = CanvasBatchConfigurableModule.forRootAsync({
      useFactory: () => ({ vaultRoot: '/async', dataDir: '/d' }),
    });
    const moduleRef = await Test.createTestingModule({ imports: [dynamic] }).compile();
    expect(moduleRef.get(CANVAS_BATCH_OPTIONS)).toEqual({ vaultRoot: '/async', dataDir: '/d' });
    await moduleRef.close();
  });

  it('exposes the options types for typing only, not as values', () => {
    expect(() => CANVAS_BATCH_OPTIONS_TYPE.vaultRoot).toThrow(
      '"OPTIONS_TYPE" is not supposed to be used as a value.',
    );
    expect(() => CANVAS_BATCH_ASYNC_OPTIONS_TYPE.useFactory).toThrow(
      '"ASYNC_OPTIONS_TYPE" is not supposed to be used as a value.',
    );
  });
});
