import { Test } from '@nestjs/testing';
import type { LlmSettings } from '../config';
import { AGENT_CATALOGUE } from './agent-catalogue';
import { AgentController } from './agent.controller';
import type { AgentModuleOptions } from './agent.module-definition';
import { AgentModule } from './agent.module';
import { AgentRunner, type AgentRunRequest, type AgentRunResult } from './agent-runner';
import { LlmAgentRunner } from './llm/llm-agent-runner';
import { OfflineAgentRunner } from './offline-agent-runner';

describe('AgentController', () => {
  it('lists every agent with its snake_case fields', () => {
    const { agents } = new AgentController().list();
    expect(agents).toHaveLength(15);
    expect(agents.find((a) => a.name === 'scoring-agent')).toEqual({
      name: 'scoring-agent',
      memory_event_type: 'scoring_completed',
      output_kind: 'score',
      runnable: true,
      description: expect.stringContaining('Scores'),
      aliases: ['scoring'],
    });
    expect(agents.find((a) => a.name === 'canvas-orchestrator')).toMatchObject({
      runnable: false,
      aliases: [],
    });
    for (const a of agents) {
      expect(Object.keys(a).sort()).toEqual([
        'aliases',
        'description',
        'memory_event_type',
        'name',
        'output_kind',
        'runnable',
      ]);
    }
  });

  it('hands out copies: changing a response does not change the catalogue', () => {
    const first = new AgentController().list();
    first.agents.find((a) => a.name === 'scoring-agent')!.aliases.push('hacked');
    expect(AGENT_CATALOGUE.find((a) => a.name === 'scoring-agent')!.aliases).toEqual(['scoring']);
    expect(new AgentController().list().agents.find((a) => a.name === 'scoring-agent')!.aliases).toEqual([
      'scoring',
    ]);
  });
});

describe('AgentModule', () => {
  async function runnerFor(options: AgentModuleOptions): Promise<AgentRunner> {
    const moduleRef = await Test.createTestingModule({ imports: [AgentModule.forRoot(options)] }).compile();
    const runner = moduleRef.get(AgentRunner);
    await moduleRef.close();
    return runner;
  }

  it('binds the offline runner by default', async () => {
    expect(await runnerFor({})).toBeInstanceOf(OfflineAgentRunner);
  });

  it('binds the LLM runner when LLM settings are given', async () => {
    const llm: LlmSettings = {
      provider: 'openai-compatible',
      model: 'llama3.2',
      baseUrl: 'http://127.0.0.1:11434/v1',
      apiKey: undefined,
      stream: false,
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      contextTokens: 4000,
      maxOutputTokens: 256,
      prices: undefined,
    };
    expect(await runnerFor({ llm })).toBeInstanceOf(LlmAgentRunner);
  });

  it("binds the host's own runner when one is given, before LLM settings", async () => {
    class HostRunner extends AgentRunner {
      run(_request: AgentRunRequest): Promise<AgentRunResult> {
        return Promise.resolve({ markdown: 'host', usage: { inputTokens: 1, outputTokens: 2 } });
      }
    }
    const host = new HostRunner();
    expect(await runnerFor({ agentRunner: host })).toBe(host);
  });

  it('is configured asynchronously too', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [AgentModule.forRootAsync({ useFactory: () => Promise.resolve({ agentLatencyMs: 5 }) })],
    }).compile();
    expect(moduleRef.get(AgentRunner)).toBeInstanceOf(OfflineAgentRunner);
    await moduleRef.close();
  });
});
