import { type DynamicModule, Injectable, Logger, Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AgentRunner, type AgentRunResult, OfflineAgentRunner } from '../agent';
import { VaultService } from '../canvas';
import {
  InjectCanvasBatchOptions,
  type LlmSettings,
  OPTION_DEFAULTS,
  RESOLVED_OPTIONS,
  type ResolvedCanvasBatchOptions,
} from '../config';
import { SqliteDatabase } from '../database';
import { MemoryStore } from '../memory';
import { TaskStore } from '../session';
import {
  CANVAS_BATCH_ASYNC_OPTIONS_TYPE,
  CANVAS_BATCH_OPTIONS,
  CANVAS_BATCH_OPTIONS_TYPE,
  CanvasBatchOptionsModule,
  COMPOSED_OPTIONS,
  type ComposedOptions,
  composeOptions,
} from './orchestrator.module-definition';
import { OrchestratorModule } from './orchestrator.module';

class HostRunner extends AgentRunner {
  run(): Promise<AgentRunResult> {
    return Promise.resolve({ markdown: 'host', usage: { inputTokens: 0, outputTokens: 0 } });
  }
}

const llm: LlmSettings = {
  provider: 'anthropic',
  model: 'm',
  baseUrl: undefined,
  apiKey: 'k',
  stream: false,
  retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  contextTokens: 4000,
  maxOutputTokens: 256,
  prices: { inputPerMTok: 3, outputPerMTok: 15 },
};

describe('composeOptions', () => {
  it("maps the host's one options object onto the orchestrator's and each feature module's options", () => {
    const agentRunner = new HostRunner();
    const neo4j = { uri: 'bolt://127.0.0.1:7687', user: 'neo4j', password: 'pw' };
    const composed = composeOptions({
      vaultRoot: '/v',
      dataDir: '/d',
      cleanupIntervalMs: 1_000,
      agentLatencyMs: { min: 1, max: 2 },
      maxInputChars: 5_000,
      agentRunner,
      llm,
      neo4j,
      memoryDelivery: { batchSize: 10 },
    });
    expect(composed).toEqual({
      orchestrator: expect.objectContaining({ vaultRoot: '/v', dataDir: '/d', tokenPrices: llm.prices }),
      database: { dataDir: '/d' },
      canvas: { vaultRoot: '/v' },
      session: {
        cleanupIntervalMs: 1_000,
        resultCacheLimits: { maxEntries: 10_000, ttlMs: 720 * 3_600_000 },
      },
      agent: { agentRunner, llm, agentLatencyMs: { min: 1, max: 2 } },
      memory: {
        memoryStore: undefined,
        neo4j,
        memoryDelivery: { ...OPTION_DEFAULTS.memoryDelivery, batchSize: 10 },
        maxInputChars: 5_000,
      },
    });
    // the host's own objects reach their modules only, never the orchestrator's resolved options
    expect(Object.values(composed.orchestrator)).not.toContain(agentRunner);
    expect('neo4j' in composed.orchestrator).toBe(false);
  });
});

describe('CanvasBatchOptionsModule', () => {
  it('resolves the host factory once and provides the raw, composed and resolved options', async () => {
    const factory = jest.fn(() => Promise.resolve({ vaultRoot: '/async', dataDir: '/d' }));
    const moduleRef = await Test.createTestingModule({
      imports: [CanvasBatchOptionsModule.forRootAsync({ useFactory: factory })],
    }).compile();
    expect(moduleRef.get(CANVAS_BATCH_OPTIONS)).toEqual({ vaultRoot: '/async', dataDir: '/d' });
    const composed = moduleRef.get<ComposedOptions>(COMPOSED_OPTIONS);
    expect(composed.canvas).toEqual({ vaultRoot: '/async' });
    expect(moduleRef.get(RESOLVED_OPTIONS)).toBe(composed.orchestrator);
    expect(factory).toHaveBeenCalledTimes(1);
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

describe('OrchestratorModule composing the feature modules', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'orchestrator-module-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A module of the host that imports the same `forRoot(...)` object and uses what it exports. */
  @Injectable()
  class HostService {
    constructor(
      readonly store: TaskStore,
      readonly vault: VaultService,
      readonly runner: AgentRunner,
      readonly memory: MemoryStore,
      readonly db: SqliteDatabase,
      @InjectCanvasBatchOptions() readonly options: ResolvedCanvasBatchOptions,
    ) {}
  }
  const hostModule = (orchestrator: DynamicModule): DynamicModule => {
    @Module({})
    class HostModule {}
    return { module: HostModule, imports: [orchestrator], providers: [HostService] };
  };

  it.each([
    ['forRoot', (o: { vaultRoot: string; dataDir: string }) => OrchestratorModule.forRoot(o)],
    [
      'forRootAsync',
      (o: { vaultRoot: string; dataDir: string }) =>
        OrchestratorModule.forRootAsync({ useFactory: () => Promise.resolve(o) }),
    ],
  ])('%s: not global; a module that imports it gets every feature module it exports', async (_, make) => {
    const orchestrator = make({ vaultRoot: dir, dataDir: dir });
    expect(orchestrator.global).toBeUndefined();
    const moduleRef = await Test.createTestingModule({
      imports: [EventEmitterModule.forRoot(), orchestrator, hostModule(orchestrator)],
    }).compile();
    try {
      const host = moduleRef.get(HostService);
      expect(host.runner).toBeInstanceOf(OfflineAgentRunner);
      expect(host.db.file).toBe(path.join(dir, 'canvas-batch.sqlite'));
      // one SQLite handle for the whole graph: the session and memory modules share the one database module
      expect(moduleRef.get(SqliteDatabase, { strict: false })).toBe(host.db);
      expect(host.options.cleanupIntervalMs).toBe(OPTION_DEFAULTS.cleanupIntervalMs);
    } finally {
      await moduleRef.close();
    }
  });
});
