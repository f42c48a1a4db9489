import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AGENT_CATALOGUE } from '../agent-catalogue';
import { buildPrompt, loadPromptTemplates, parseTemplate, type PromptTemplate } from './prompt-templates';

const node = (content: string, extra: object = {}) => ({
  canvasPath: 'a.canvas',
  nodeId: 'n1',
  nodeType: 'text' as const,
  content,
  ...extra,
});

describe('prompt templates', () => {
  it('the bundled templates cover every runnable agent with its catalogue output kind', () => {
    const templates = loadPromptTemplates();
    const runnable = AGENT_CATALOGUE.filter((d) => d.runnable);
    expect([...templates.keys()].sort()).toEqual(runnable.map((d) => d.name).sort());
    for (const def of runnable) expect(templates.get(def.name)?.output).toBe(def.outputKind);
    expect(templates.get('basic-decomposition')?.questions).toEqual({ min: 3, max: 7 });
  });

  it('parseTemplate explains what is wrong', () => {
    expect(parseTemplate('no front matter')).toBe('missing front-matter (--- … ---)');
    expect(parseTemplate('---\noutput: markdown\n---\nx')).toBe('front-matter needs `agent`');
    expect(parseTemplate('---\nagent: a\noutput: poem\n---\nx')).toMatch(/`output` must be/);
    expect(parseTemplate('---\nagent: a\noutput: questions\nquestions: 5-2\n---\nx')).toMatch(/MIN-MAX/);
    expect(parseTemplate('---\nagent: a\noutput: markdown\n---\n  \n')).toBe('the system prompt is empty');
    expect(parseTemplate('---\r\nagent: a\r\noutput: hint\r\n---\r\nBe kind.')).toEqual({
      agent: 'a',
      output: 'hint',
      questions: undefined,
      body: 'Be kind.',
    });
  });

  it('refuses a directory with a missing, mismatched or malformed template, or no directory at all', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'prompts-'));
    try {
      writeFileSync(
        path.join(dir, 'scoring-agent.md'),
        '---\nagent: scoring-agent\noutput: markdown\n---\nx',
      );
      writeFileSync(path.join(dir, 'broken.md'), 'nothing');
      writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
      const message = (() => {
        try {
          loadPromptTemplates(dir);
          return '';
        } catch (err) {
          return (err as Error).message;
        }
      })();
      expect(message).toContain('broken.md: missing front-matter');
      expect(message).toContain(
        'scoring-agent: template output "markdown" differs from the catalogue\'s "score"',
      );
      expect(message).toContain('no prompt template for agent "hint-generation"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => loadPromptTemplates(path.join(tmpdir(), 'does-not-exist-prompts'))).toThrow(
      /prompt templates not found/,
    );
  });
});

describe('buildPrompt', () => {
  const t = (output: PromptTemplate['output']): PromptTemplate => ({
    agent: 'x',
    output,
    questions: output === 'questions' ? { min: 2, max: 4 } : undefined,
    body: 'You are a tutor.',
  });

  it('asks for the content language and states the output contract with its schema', () => {
    const zh = buildPrompt(t('questions'), node('细胞是生命的基本单位。'), 1000);
    expect(zh.lang).toBe('zh');
    expect(zh.system).toContain('Chinese');
    expect(zh.system).toContain('OUTPUT CONTRACT: questions');
    expect(zh.system).toContain('"minItems":2');
    expect(zh.prompt).toContain('<node>\n细胞是生命的基本单位。\n</node>');
    const en = buildPrompt(t('markdown'), node('The cell is the unit of life.', { nodeType: 'link' }), 1000);
    expect(en.system).toContain('OUTPUT CONTRACT: markdown');
    expect(en.system).toContain('English');
    expect(en.prompt).toContain('(Link on a canvas');
    expect(buildPrompt(t('markdown'), node('x', { nodeType: 'group' }), 100).prompt).toContain(
      '(Group of notes on a canvas',
    );
  });

  it('adds the group label and neighbours, nearest first, within the token budget', () => {
    const p = buildPrompt(
      t('markdown'),
      node('Mitosis.', {
        context: { groupLabel: 'Cell cycle', neighbours: ['Meiosis\nsplits twice.', '  ', 'x'.repeat(5000)] },
      }),
      200, // 800 characters
    );
    expect(p.prompt).toContain('Group: Cell cycle');
    expect(p.prompt).toContain('- Meiosis splits twice.');
    const ctx = p.prompt.slice(p.prompt.indexOf('<context>'));
    expect(ctx.length).toBeLessThan(900);
    expect(ctx).toContain('…');
  });

  it('cuts an oversized node to three quarters of the budget and always keeps a quarter for the surroundings', () => {
    const p = buildPrompt(
      t('markdown'),
      node('y'.repeat(10_000), { context: { neighbours: ['n'], groupLabel: 'g' } }),
      100,
    );
    expect(p.prompt).toContain(`${'y'.repeat(299)}…`);
    expect(p.prompt).toContain('Group: g');
    const full = buildPrompt(t('markdown'), node('z', { context: { neighbours: ['n'.repeat(10)] } }), 1);
    expect(full.prompt).toContain('<context>');
    const tiny = buildPrompt(
      t('markdown'),
      node('zz', { context: { neighbours: ['n'.repeat(10), 'm'] } }),
      1,
    );
    expect(tiny.prompt).not.toContain('m\n');
  });
});
