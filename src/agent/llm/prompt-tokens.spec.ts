import { buildPrompt, loadPromptTemplates } from './prompt-templates';
import { estimateTokens, PromptTokens } from './prompt-tokens';
import type { AgentNodeInput } from '../agent-runner';

const node = (content: string, extra: Partial<AgentNodeInput> = {}): AgentNodeInput => ({
  canvasPath: 'c.canvas',
  nodeId: 'n',
  nodeType: 'text',
  content,
  ...extra,
});

describe('estimateTokens', () => {
  it('counts Latin text at about 4 characters a token, rounded up', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcd')).toBe(1);
    expect(estimateTokens('abcde')).toBe(2);
    expect(estimateTokens('The cell is the basic unit of life.')).toBe(9);
  });

  it('counts Han, kana, Hangul and full-width forms as 1 token a character', () => {
    expect(estimateTokens('导数描述变化率')).toBe(7);
    expect(estimateTokens('ひらがなカタカナ')).toBe(8);
    expect(estimateTokens('한국어')).toBe(3);
    expect(estimateTokens('，。！')).toBe(3);
    expect(estimateTokens('豈')).toBe(1); // a compatibility ideograph
  });

  it('counts other scripts at about 2 characters a token, a surrogate pair once', () => {
    expect(estimateTokens('Привет')).toBe(3);
    expect(estimateTokens('😀😀')).toBe(1);
  });

  it('adds the scripts of mixed text', () => {
    // 8 Latin characters (2) + 2 Han (2)
    expect(estimateTokens('derivate导数')).toBe(4);
  });
});

describe('PromptTokens', () => {
  const templates = loadPromptTemplates();
  const tokens = new PromptTokens(4000, templates);

  it('counts the prompt the LLM runner builds: the template filled with the node', () => {
    const input = node('# Mitosis\nCells divide.', {
      context: { neighbours: ['Cells grow.'], groupLabel: 'Biology' },
    });
    const template = templates.get('oral-explanation');
    if (!template) throw new Error('no template');
    const built = buildPrompt(template, input, 4000);
    expect(tokens.inputTokens('oral-explanation', input)).toBe(
      estimateTokens(built.system) + estimateTokens(built.prompt),
    );
    // the system prompt is counted once per agent and language, whatever the node
    expect(tokens.inputTokens('oral-explanation', input)).toBe(
      estimateTokens(built.system) + estimateTokens(built.prompt),
    );
  });

  it('takes aliases, counts a structured agent with its schema, and a node without content as 0', () => {
    expect(tokens.inputTokens('four-level', node('Cells'))).toBeGreaterThan(0);
    expect(tokens.inputTokens('basic-decomposition', node('Cells'))).toBeGreaterThan(
      tokens.inputTokens('oral-explanation', node('Cells')),
    );
    expect(tokens.inputTokens('oral-explanation', node('  \n'))).toBe(0);
  });

  it('cuts the content to the context budget as the runner does', () => {
    const small = new PromptTokens(100, templates);
    const long = 'x'.repeat(10_000);
    expect(small.inputTokens('oral-explanation', node(long))).toBeLessThan(
      tokens.inputTokens('oral-explanation', node(long)),
    );
  });

  it('refuses an agent without a template', () => {
    expect(() => tokens.inputTokens('canvas-orchestrator', node('x'))).toThrow(RangeError);
    expect(() => tokens.inputTokens('nope', node('x'))).toThrow(/no prompt template/);
  });

  it('loads the bundled templates when given none', () => {
    expect(new PromptTokens(4000).inputTokens('oral-explanation', node('Cells'))).toBeGreaterThan(0);
  });
});
