import { AgentRouter } from './agent-router.service';
import { agentNamedIn, confidenceLevel, FALLBACK_AGENT, routeByRules, routingPrompt } from './agent-router';
import { LlmAgentRunner, type ModelCall } from './llm/llm-agent-runner';
import { OfflineAgentRunner } from './offline-agent-runner';
import type { LlmSettings } from '../config';

const settings: LlmSettings = {
  provider: 'anthropic',
  model: 'm',
  baseUrl: 'http://127.0.0.1:1/v1',
  apiKey: 'sk-unit-SECRET',
  stream: false,
  retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
  contextTokens: 1000,
  maxOutputTokens: 100,
  prices: undefined,
};

describe('routeByRules', () => {
  it.each([
    ['Prokaryotes vs. eukaryotes: compare their cells', 'comparison-table', 0.95],
    ['导数与微分的区别', 'comparison-table', 0.75],
    ['A worked example: calculate the net force', 'example-teaching', 0.97],
    ['链式法则 例：(sin x²)′ = 2x cos x²', 'example-teaching', 0.75],
    ["I don't understand why the sky is blue", 'clarification-path', 0.85],
    ['Mnemonic to remember the planets', 'memory-anchor', 0.95],
    ['证明 微积分基本定理', 'deep-decomposition', 0.85],
    ['Here is my explanation of osmosis, please grade it', 'scoring-agent', 0.95],
    ['I am stuck, give me a hint', 'hint-generation', 0.95],
    ['导数的定义是什么', 'four-level-explanation', 0.95],
    ['Break down the steps of mitosis', 'basic-decomposition', 0.95],
    ['A quiz on the application of Ohm', 'question-decomposition', 0.95],
    ['Self-test: verify the result', 'verification-question-agent', 0.95],
  ])('%s → %s (%d)', (content, agent, confidence) => {
    expect(routeByRules(content)).toMatchObject({ agentType: agent, confidence, routedBy: 'rules' });
  });

  it('falls back to oral-explanation at 0.50 when nothing matches, and is unsure of a tie', () => {
    expect(routeByRules('Mitochondria')).toEqual({
      agentType: FALLBACK_AGENT,
      confidence: 0.5,
      reason: 'no content pattern matched: oral-explanation is the fallback',
      routedBy: 'rules',
    });
    const tie = routeByRules('compare and calculate');
    expect(tie.confidence).toBe(0.6);
    expect(tie.reason).toMatch(/also example-teaching/);
    expect(routeByRules('Why?').confidence).toBe(0.65);
  });

  it('says high, medium or low', () => {
    expect([0.85, 0.7, 0.69].map(confidenceLevel)).toEqual(['high', 'medium', 'low']);
  });
});

describe('agentNamedIn / routingPrompt', () => {
  it('finds the longest agent name in an answer; none in a free answer', () => {
    expect(agentNamedIn('Answer: Four-Level-Explanation.')).toBe('four-level-explanation');
    expect(agentNamedIn('I think an explanation')).toBeUndefined();
  });

  it('lists only runnable agents', () => {
    const { system, prompt } = routingPrompt('Note text');
    expect(system).toContain('- comparison-table:');
    expect(system).not.toContain('canvas-orchestrator');
    expect(prompt).toContain('Note text');
  });
});

describe('AgentRouter', () => {
  const scripted = (answer: string | Error) => {
    const calls: Parameters<ModelCall>[0][] = [];
    const call: ModelCall = (args) => {
      calls.push(args);
      return answer instanceof Error
        ? Promise.reject(answer)
        : Promise.resolve({ text: answer, usage: { inputTokens: 30, outputTokens: 2 } });
    };
    return { calls, call };
  };

  it('keeps to the patterns without a model, or when they are sure', async () => {
    const offline = new AgentRouter(new OfflineAgentRunner(0));
    expect(offline.usesModel).toBe(false);
    await expect(offline.route('Mitochondria')).resolves.toMatchObject({
      agentType: FALLBACK_AGENT,
      routedBy: 'rules',
    });
    const { calls, call } = scripted('comparison-table');
    const llm = new AgentRouter(new LlmAgentRunner(settings, { call }));
    expect(llm.usesModel).toBe(true);
    await expect(llm.route('A vs. B compared')).resolves.toMatchObject({ routedBy: 'rules' });
    await expect(llm.route('Mitochondria', { model: false })).resolves.toMatchObject({ routedBy: 'rules' });
    expect(calls).toHaveLength(0);
  });

  it('asks the model below 0.70 and says so', async () => {
    const { calls, call } = scripted('memory-anchor');
    const r = await new AgentRouter(new LlmAgentRunner(settings, { call })).route('Mitochondria', {
      nodeId: 'n1',
    });
    expect(r).toEqual({
      agentType: 'memory-anchor',
      confidence: 0.8,
      reason: 'patterns unsure (oral-explanation at 0.5); the model chose memory-anchor',
      routedBy: 'model',
      usage: { inputTokens: 30, outputTokens: 2 },
    });
    expect(calls[0].headers['x-canvas-batch-routing']).toBe('n1');
  });

  it("keeps the patterns' routing when the model names no agent or fails", async () => {
    const vague = scripted('hmm, hard to say');
    await expect(
      new AgentRouter(new LlmAgentRunner(settings, { call: vague.call })).route('Mitochondria'),
    ).resolves.toMatchObject({ agentType: FALLBACK_AGENT, routedBy: 'rules', reason: /named no agent/ });
    const broken = scripted(Object.assign(new Error('bad key'), { statusCode: 401 }));
    await expect(
      new AgentRouter(new LlmAgentRunner(settings, { call: broken.call })).route('Mitochondria'),
    ).resolves.toMatchObject({ agentType: FALLBACK_AGENT, routedBy: 'rules', reason: /could not be asked/ });
  });

  it('rethrows when the caller aborted', async () => {
    const controller = new AbortController();
    const call: ModelCall = () => {
      controller.abort(new Error('stop'));
      return Promise.reject(new Error('aborted'));
    };
    await expect(
      new AgentRouter(new LlmAgentRunner(settings, { call })).route('Mitochondria', {
        signal: controller.signal,
      }),
    ).rejects.toThrow('stop');
  });
});
