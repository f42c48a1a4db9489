import { AgentRunError, type AgentNodeInput, type CanvasNodeKind } from './agent-runner';
import { AGENT_CATALOGUE } from './agent-catalogue';
import { describeUrl, OfflineAgentRunner } from './offline-agent-runner';

const EN =
  '## Photosynthesis\nPhotosynthesis converts light energy into chemical energy. It happens in chloroplasts. ' +
  'Chlorophyll absorbs light. Plants release oxygen as a by-product.';
const ZH =
  '## 光合作用\n光合作用是植物利用光能把二氧化碳和水转化为葡萄糖的过程。它发生在叶绿体中。叶绿素吸收光能。';
const SPARSE = 'Entropy';
const FORMULA = 'F = m × a';

const HEADINGS: Record<string, { en: string[]; zh: string[] }> = {
  'basic-decomposition': { en: ['Questions', 'How to use them'], zh: ['问题', '使用方法'] },
  'deep-decomposition': { en: ['Questions', 'How to use them'], zh: ['问题', '使用方法'] },
  'question-decomposition': { en: ['Questions', 'How to use them'], zh: ['问题', '使用方法'] },
  'verification-question-agent': { en: ['Questions', 'How to use them'], zh: ['问题', '使用方法'] },
  'four-level-explanation': {
    en: ['Beginner', 'Intermediate', 'Expert', 'Innovative'],
    zh: ['入门', '进阶', '专家', '创新'],
  },
  'oral-explanation': {
    en: ['Introduction', 'Core idea', 'Why it matters', 'Summary'],
    zh: ['引入', '核心思想', '为什么重要', '总结'],
  },
  'example-teaching': {
    en: ['Problem', 'Approach', 'Steps', 'Common pitfalls', 'Variants', 'Answer hints'],
    zh: ['题目', '思路', '步骤', '常见错误', '变式', '答案提示'],
  },
  'clarification-path': {
    en: [
      'Step 1 — What exactly is unclear',
      'Step 2 — Break it down',
      'Step 3 — Connect the pieces',
      'Step 4 — Check yourself',
    ],
    zh: ['第一步：到底哪里不清楚', '第二步：拆解', '第三步：建立联系', '第四步：自我检验'],
  },
  'comparison-table': { en: ['Comparison'], zh: ['对比'] },
  'memory-anchor': { en: ['Analogy', 'Story', 'Mnemonic'], zh: ['类比', '故事', '口诀'] },
  'scoring-agent': { en: ['Score', 'Breakdown', 'Feedback'], zh: ['评分', '分项', '反馈'] },
  'hint-generation': { en: ['Hint', 'Hint level'], zh: ['提示', '提示等级'] },
};

/** [agent, min, max, count for the rich English text] */
const QUESTION_AGENTS: [string, number, number][] = [
  ['basic-decomposition', 3, 7],
  ['deep-decomposition', 3, 10],
  ['question-decomposition', 2, 5],
  ['verification-question-agent', 3, 5],
];

const node = (content: string, nodeType: CanvasNodeKind = 'text'): AgentNodeInput => ({
  canvasPath: 'Biology/cells.canvas',
  nodeId: 'n1',
  nodeType,
  content,
});

const runner = new OfflineAgentRunner();
const run = async (agentType: string, content: string, nodeType: CanvasNodeKind = 'text'): Promise<string> =>
  (await runner.run({ agentType, node: node(content, nodeType), signal: new AbortController().signal }))
    .markdown;

const headings = (markdown: string): string[] => [...markdown.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
const questionsIn = (markdown: string): string[] => {
  const section = markdown.split(/^## /m).find((s) => /^(Questions|问题)\n/.test(s)) ?? '';
  return section.split('\n').filter((l) => /^\d+\. /.test(l));
};

describe('OfflineAgentRunner', () => {
  describe.each(Object.keys(HEADINGS))('%s', (agent) => {
    it('writes its sections in English for English content, deterministically, without a top heading', async () => {
      const markdown = await run(agent, EN);
      expect(headings(markdown)).toEqual(HEADINGS[agent].en);
      expect(markdown).not.toMatch(/^# /m);
      expect(markdown).not.toMatch(/[\u4e00-\u9fff]/);
      expect(await run(agent, EN)).toBe(markdown);
    });

    it('writes its sections in Chinese for Chinese content', async () => {
      const markdown = await run(agent, ZH);
      expect(headings(markdown)).toEqual(HEADINGS[agent].zh);
      expect(await run(agent, ZH)).toBe(markdown);
    });

    it('still produces every section for one-word content', async () => {
      expect(headings(await run(agent, SPARSE))).toEqual(HEADINGS[agent].en);
    });

    it('falls back to the concept itself for a formula with no sentences or key terms', async () => {
      const markdown = await run(agent, FORMULA);
      expect(headings(markdown)).toEqual(HEADINGS[agent].en);
      expect(markdown).toContain('F = m × a');
      expect(markdown).not.toContain('undefined');
    });
  });

  it.each(QUESTION_AGENTS)('%s asks between %i and %i questions', async (agent, min, max) => {
    for (const content of [EN, ZH, SPARSE, `${EN} ${EN.replace(/Photosynthesis/g, 'Respiration')}`]) {
      const questions = questionsIn(await run(agent, content));
      expect(questions.length).toBeGreaterThanOrEqual(min);
      expect(questions.length).toBeLessThanOrEqual(max);
      expect(questions.map((q) => q.split('. ')[0])).toEqual(questions.map((_, i) => String(i + 1)));
      expect(new Set(questions.map((q) => q.slice(q.indexOf(' ')))).size).toBe(questions.length);
    }
    // Little content → the minimum; rich content → more than the minimum.
    expect(questionsIn(await run(agent, SPARSE))).toHaveLength(min);
    expect(questionsIn(await run(agent, EN)).length).toBeGreaterThan(min);
  });

  it('asks about the content itself', async () => {
    const markdown = await run('basic-decomposition', EN);
    expect(markdown).toContain('Photosynthesis');
    expect(await run('basic-decomposition', ZH)).toContain('光合作用');
  });

  it('scores with four parts of 0–25 that add up to the total, and a verdict that matches it', async () => {
    const contents = [
      EN,
      ZH,
      SPARSE,
      'Short note.',
      'Another text about cells and energy. It has two sentences.',
    ];
    for (let i = 0; i < 40; i++) contents.push(`Variant ${i}: ${EN.slice(0, 40 + i)}`);
    for (const content of contents) {
      const markdown = await run('scoring-agent', content);
      const parts = [
        ...markdown.matchAll(/^\| (accuracy|imagery|completeness|originality) \| (-?\d+) \/ 25 \|$/gm),
      ];
      expect(parts.map((m) => m[1])).toEqual(['accuracy', 'imagery', 'completeness', 'originality']);
      const values = parts.map((m) => Number(m[2]));
      for (const v of values) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(25);
      }
      const total = Number(/\*\*(\d+) \/ 100\*\*/.exec(markdown)?.[1]);
      expect(total).toBe(values.reduce((a, b) => a + b, 0));
      const verdict = /\*\* — (.+)$/m.exec(markdown)?.[1];
      const zh = content === ZH;
      expect(verdict).toBe(total >= 60 ? (zh ? '通过' : 'pass') : zh ? '尚未通过' : 'not yet');
    }
  });

  it('gives a hint level between 1 and 3', async () => {
    for (const content of [EN, ZH, SPARSE, 'abc def ghi']) {
      const level = Number(
        /^## (?:Hint level|提示等级)\n\n(\d) \/ 3$/m.exec(await run('hint-generation', content))?.[1],
      );
      expect([1, 2, 3]).toContain(level);
    }
  });

  it('builds a comparison table of five dimensions', async () => {
    const rows = (await run('comparison-table', EN))
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| Dimension'));
    expect(rows.map((r) => r.split(' | ')[0].slice(2))).toEqual([
      'Definition',
      'Key elements',
      'Typical example',
      'Common mistake',
      'Related to',
    ]);
  });

  it('works on a link node from its URL described as words', async () => {
    const markdown = await run('memory-anchor', 'https://en.wikipedia.org/wiki/Cell_(biology)', 'link');
    expect(markdown).toContain('Cell (biology) — en.wikipedia.org is like a workshop');
    expect(markdown).not.toContain('https://');
  });

  it('reports token usage as zeros', async () => {
    const result = await runner.run({
      agentType: 'hint-generation',
      node: node(EN),
      signal: new AbortController().signal,
    });
    expect(result.usage).toEqual({ inputTokens: 0, outputTokens: 0 });
  });

  it('refuses empty content with AgentRunError', async () => {
    const err: unknown = await run('oral-explanation', ' \n\t ').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentRunError);
    expect((err as AgentRunError).errorType).toBe('AGENT_ERROR');
    expect((err as Error).message).toBe('node n1 (text) has no content for oral-explanation to work on');
  });

  it.each([['no-such-agent'], ['canvas-orchestrator'], ['four-level']])(
    'refuses agent "%s", which has no template, with AgentRunError',
    async (agent) => {
      const err: unknown = await run(agent, EN).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AgentRunError);
      expect((err as Error).message).toBe(`the offline provider has no template for agent "${agent}"`);
    },
  );

  it('rejects at once when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      runner.run({ agentType: 'hint-generation', node: node(EN), signal: controller.signal }),
    ).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('takes its simulated latency', async () => {
    const slow = new OfflineAgentRunner(80);
    const started = performance.now();
    await slow.run({ agentType: 'hint-generation', node: node(EN), signal: new AbortController().signal });
    expect(performance.now() - started).toBeGreaterThanOrEqual(70);
  });

  it('stops promptly when aborted during its latency', async () => {
    const slow = new OfflineAgentRunner(10_000);
    const controller = new AbortController();
    const started = performance.now();
    const pending = slow.run({ agentType: 'hint-generation', node: node(EN), signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('honours an abort reason such as a timeout', async () => {
    const slow = new OfflineAgentRunner(10_000);
    const started = performance.now();
    await expect(
      slow.run({ agentType: 'hint-generation', node: node(EN), signal: AbortSignal.timeout(30) }),
    ).rejects.toMatchObject({ name: 'AbortError', cause: expect.objectContaining({ name: 'TimeoutError' }) });
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('describeUrl', () => {
  it('describes a URL by its last path segment and its host', () => {
    expect(describeUrl('https://en.wikipedia.org/wiki/Cell_(biology)')).toBe(
      'Cell (biology) — en.wikipedia.org',
    );
    expect(describeUrl('https://example.org/articles/krebs-cycle/')).toBe('krebs cycle — example.org');
  });

  it('decodes percent-encoded segments', () => {
    expect(describeUrl('https://zh.wikipedia.org/wiki/%E5%AF%BC%E6%95%B0')).toBe('导数 — zh.wikipedia.org');
  });

  it('gives just the host when there is no path', () => {
    expect(describeUrl('https://example.org')).toBe('example.org');
    expect(describeUrl('https://example.org/___/')).toBe('example.org');
  });

  it('returns text that is not a URL, or not decodable, unchanged', () => {
    expect(describeUrl('not a url')).toBe('not a url');
    expect(describeUrl('https://example.org/%E0%A4%A')).toBe('https://example.org/%E0%A4%A');
  });
});

describe('AgentRunError', () => {
  it('defaults to AGENT_ERROR and keeps a given type', () => {
    expect(new AgentRunError('x')).toMatchObject({
      name: 'AgentRunError',
      errorType: 'AGENT_ERROR',
      message: 'x',
    });
    expect(new AgentRunError('slow', 'AGENT_TIMEOUT').errorType).toBe('AGENT_TIMEOUT');
  });
});

describe('OfflineAgentRunner structured output', () => {
  const runner = new OfflineAgentRunner();
  const run = (agentType: string, content: string) =>
    runner.run({
      agentType,
      node: { canvasPath: 'c.canvas', nodeId: 'n1', nodeType: 'text', content },
      signal: new AbortController().signal,
    });

  it.each(AGENT_CATALOGUE.filter((a) => a.runnable).map((a) => [a.name, a.outputKind] as const))(
    '%s returns structure of its catalogue output kind (%s)',
    async (agentType, outputKind) => {
      for (const content of [EN, ZH, SPARSE]) {
        const out = await run(agentType, content);
        expect(out.structured?.kind ?? 'markdown').toBe(outputKind);
      }
    },
  );

  it('questions are the numbered list of the markdown, with rising difficulty', async () => {
    const out = await run('deep-decomposition', EN);
    if (out.structured?.kind !== 'questions') throw new Error('expected questions');
    const { questions } = out.structured;
    expect(questions.length).toBeGreaterThanOrEqual(3);
    questions.forEach((q, i) => expect(out.markdown).toContain(`${i + 1}. ${q.text}`));
    expect(questions[0].difficulty).toBe('easy');
    expect(questions.at(-1)?.difficulty).toBe('hard');
  });

  it('a score is the sum of its four 0–25 dimensions, passes at 60, and is rendered in the file', async () => {
    for (const content of [EN, ZH, SPARSE, FORMULA]) {
      const out = await run('scoring-agent', content);
      if (out.structured?.kind !== 'score') throw new Error('expected a score');
      const { totalScore, breakdown, pass, feedback } = out.structured.score;
      const parts = Object.values(breakdown);
      parts.forEach((p) => expect(p).toBeGreaterThanOrEqual(0));
      parts.forEach((p) => expect(p).toBeLessThanOrEqual(25));
      expect(totalScore).toBe(parts.reduce((a, b) => a + b, 0));
      expect(pass).toBe(totalScore >= 60);
      expect(out.markdown).toContain(`**${totalScore} / 100**`);
      expect(out.markdown).toContain(feedback);
    }
  });

  it('a hint has a level 1–3 and speaks the content language', async () => {
    const en = await run('hint-generation', EN);
    const zh = await run('hint-generation', ZH);
    for (const out of [en, zh]) {
      if (out.structured?.kind !== 'hint') throw new Error('expected a hint');
      expect([1, 2, 3]).toContain(out.structured.hint.level);
      expect(out.markdown).toContain(out.structured.hint.text);
    }
    expect(zh.structured?.kind === 'hint' && /[\u4e00-\u9fff]/.test(zh.structured.hint.text)).toBe(true);
  });
});
