import type { AgentNodeInput, RunnerIdentity } from './agent-runner';
import { RUNNABLE_AGENT_NAMES, findAgent } from './agent-catalogue';
import { LlmAgentRunner } from './llm/llm-agent-runner';
import { loadPromptTemplates, PROMPT_TEMPLATE_VERSIONS } from './llm/prompt-templates';
import { OfflineAgentRunner } from './offline-agent-runner';
import { OFFLINE_TEMPLATE_VERSIONS, OFFLINE_TEMPLATES } from './offline-templates';
import { resultCacheKey } from './result-cache-key';
import { offlinePin, promptPin } from './template-pins';
import type { LlmSettings } from '../config';

const identity: RunnerIdentity = { provider: 'anthropic', model: 'claude-x', template: 'v1/ctx4000/out1024' };
const node: AgentNodeInput = {
  canvasPath: 'Biology/cells.canvas',
  nodeId: 'n1',
  nodeType: 'text',
  content: 'Mitosis has four phases.',
  context: { neighbours: ['Meiosis', 'Cell cycle'], groupLabel: 'Cells', neighbourIds: ['a', 'b'] },
};

describe('resultCacheKey', () => {
  const key = resultCacheKey('oral-explanation', identity, node);

  it('is a sha256, the same for the same inputs (another node id or canvas included)', () => {
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(resultCacheKey('oral-explanation', { ...identity }, structuredClone(node))).toBe(key);
    expect(
      resultCacheKey('oral-explanation', identity, { ...node, nodeId: 'other', canvasPath: 'x.canvas' }),
    ).toBe(key);
    // the ids only tell the service's own cards apart; what the agent sees is the text
    expect(
      resultCacheKey('oral-explanation', identity, {
        ...node,
        context: { ...node.context!, neighbourIds: ['z'] },
      }),
    ).toBe(key);
  });

  it('changes with every component', () => {
    const variants: [string, string][] = [
      ['agent', resultCacheKey('memory-anchor', identity, node)],
      [
        'template version',
        resultCacheKey('oral-explanation', { ...identity, template: 'v2/ctx4000/out1024' }, node),
      ],
      [
        'prompt setting',
        resultCacheKey('oral-explanation', { ...identity, template: 'v1/ctx8000/out1024' }, node),
      ],
      ['provider', resultCacheKey('oral-explanation', { ...identity, provider: 'google' }, node)],
      ['model', resultCacheKey('oral-explanation', { ...identity, model: 'claude-y' }, node)],
      [
        'content',
        resultCacheKey('oral-explanation', identity, { ...node, content: 'Mitosis has five phases.' }),
      ],
      ['node kind', resultCacheKey('oral-explanation', identity, { ...node, nodeType: 'link' })],
      [
        'a neighbour',
        resultCacheKey('oral-explanation', identity, {
          ...node,
          context: { neighbours: ['Meiosis'], groupLabel: 'Cells' },
        }),
      ],
      [
        'neighbour order',
        resultCacheKey('oral-explanation', identity, {
          ...node,
          context: { neighbours: ['Cell cycle', 'Meiosis'], groupLabel: 'Cells' },
        }),
      ],
      [
        'group label',
        resultCacheKey('oral-explanation', identity, {
          ...node,
          context: { neighbours: ['Meiosis', 'Cell cycle'] },
        }),
      ],
      ['no context', resultCacheKey('oral-explanation', identity, { ...node, context: undefined })],
    ];
    for (const [what, other] of variants)
      expect({ what, differs: other !== key }).toEqual({ what, differs: true });
    expect(new Set(variants.map(([, k]) => k)).size).toBe(variants.length);
  });

  it('cannot be confused by moving text between components', () => {
    const a = resultCacheKey('oral-explanation', { ...identity, model: 'm', provider: 'p,q' }, node);
    const b = resultCacheKey('oral-explanation', { ...identity, model: 'q,m', provider: 'p' }, node);
    expect(a).not.toBe(b);
  });
});

/**
 * The pins: a hash of what each template makes of fixed nodes, for the version it has now. A template (or the prompt
 * around it) that changes without its version bumped fails here; bump the agent's version in
 * PROMPT_TEMPLATE_VERSIONS / OFFLINE_TEMPLATE_VERSIONS and pin the new hash with it.
 */
const PROMPT_PINS: Record<string, [version: number, pin: string]> = {
  'basic-decomposition': [1, '681d500f0e74e5d3'],
  'clarification-path': [1, '9dc0d06184967e26'],
  'comparison-table': [1, 'd8bd661091bfc157'],
  'deep-decomposition': [1, '080a687f303facb6'],
  'example-teaching': [1, '6aa48a22f2d333ff'],
  'four-level-explanation': [1, 'aa8d9d7311e58d5f'],
  'hint-generation': [1, '3b71f4412b78b5dc'],
  'memory-anchor': [1, 'ae35c343e4cc743d'],
  'oral-explanation': [1, 'abde2422aeff5fcd'],
  'question-decomposition': [1, 'ff64a7195e9ef6af'],
  'scoring-agent': [1, 'c6f47986e33cb8b2'],
  'verification-question-agent': [1, 'c5dd33629b2cb890'],
};
const OFFLINE_PINS: Record<string, [version: number, pin: string]> = {
  'basic-decomposition': [1, '130618114b3afaef'],
  'clarification-path': [1, '9f1ce657886eb153'],
  'comparison-table': [1, '690d6729e4fef19b'],
  'deep-decomposition': [1, '034f26a9ba59a838'],
  'example-teaching': [1, '0dd648b057f4c1ec'],
  'four-level-explanation': [1, 'df785dcc5b1c32c2'],
  'hint-generation': [1, '08aa95506f34cbf2'],
  'memory-anchor': [1, '9904e502f2a99dc0'],
  'oral-explanation': [1, '2a2d22b9bd5440fa'],
  'question-decomposition': [1, 'b7440700b2184425'],
  'scoring-agent': [1, '272e6cc50f821954'],
  'verification-question-agent': [1, '55011cf531ba7bda'],
};

describe('template versions', () => {
  it('every runnable agent has a versioned LLM template and offline template', () => {
    const agents = [...RUNNABLE_AGENT_NAMES].filter((n) => findAgent(n)?.name === n).sort();
    expect(Object.keys(PROMPT_TEMPLATE_VERSIONS).sort()).toEqual(agents);
    expect(Object.keys(OFFLINE_TEMPLATE_VERSIONS).sort()).toEqual(Object.keys(OFFLINE_TEMPLATES).sort());
  });

  it.each(Object.keys(PROMPT_PINS))('LLM template %s: changed only with its version bumped', (agent) => {
    const template = loadPromptTemplates().get(agent)!;
    expect({ agent, version: PROMPT_TEMPLATE_VERSIONS[agent], pin: promptPin(template) }).toEqual({
      agent,
      version: PROMPT_PINS[agent][0],
      pin: PROMPT_PINS[agent][1],
    });
  });

  it.each(Object.keys(OFFLINE_PINS))('offline template %s: changed only with its version bumped', (agent) => {
    expect({ agent, version: OFFLINE_TEMPLATE_VERSIONS[agent], pin: offlinePin(agent) }).toEqual({
      agent,
      version: OFFLINE_PINS[agent][0],
      pin: OFFLINE_PINS[agent][1],
    });
  });
});

describe('runner identities', () => {
  it('offline: the agent template version; none for an agent without a template', () => {
    const runner = new OfflineAgentRunner();
    expect(runner.identity('oral-explanation')).toEqual({
      provider: 'offline',
      model: 'offline',
      template: 'v1',
    });
    expect(runner.identity('no-such-agent')).toBeUndefined();
  });

  it('LLM: provider (with its endpoint), model, template version and the prompt-shaping settings', () => {
    const settings = {
      provider: 'openai-compatible',
      model: 'llama3.2',
      baseUrl: 'http://127.0.0.1:11434/v1',
      apiKey: 'k',
      stream: false,
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      contextTokens: 4000,
      maxOutputTokens: 256,
      prices: undefined,
    } as unknown as LlmSettings;
    const call = () => Promise.resolve({ text: '', usage: { inputTokens: 0, outputTokens: 0 } });
    const runner = new LlmAgentRunner(settings, { call });
    expect(runner.identity('oral-explanation')).toEqual({
      provider: 'openai-compatible@http://127.0.0.1:11434/v1',
      model: 'llama3.2',
      template: 'v1/ctx4000/out256',
    });
    // an alias names the same template
    const alias = RUNNABLE_AGENT_NAMES.find((n) => findAgent(n)?.name !== n);
    if (alias) expect(runner.identity(alias)?.template).toMatch(/^v\d+\/ctx4000\/out256$/);
    expect(runner.identity('no-such-agent')).toBeUndefined();
    const hosted = new LlmAgentRunner({ ...settings, baseUrl: undefined }, { call });
    expect(hosted.identity('oral-explanation')?.provider).toBe('openai-compatible');
  });
});
