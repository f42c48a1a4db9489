import type { AgentQuestion, AgentScore, AgentStructuredOutput } from './agent-runner';
import { conceptOf, type ContentLanguage, keyTerms, sentencesOf, stableHash } from './content-analysis';

/** What the offline generator knows about one node's content. */
export interface ContentFacts {
  lang: ContentLanguage;
  concept: string;
  sentences: string[];
  terms: string[];
  hash: number;
}

export function factsOf(content: string, lang: ContentLanguage): ContentFacts {
  const concept = conceptOf(content);
  const sentences = sentencesOf(content).filter((s) => s !== concept);
  return { lang, concept, sentences, terms: keyTerms(content), hash: stableHash(content) };
}

type Template = (f: ContentFacts) => string;

/** What the offline generator returns for one node: the file's markdown and, by output kind, its structure. */
export interface OfflineOutput {
  markdown: string;
  structured?: AgentStructuredOutput;
}
const L = (f: ContentFacts, en: string, zh: string): string => (f.lang === 'zh' ? zh : en);
const first = (f: ContentFacts, i: number): string =>
  f.sentences[i % Math.max(1, f.sentences.length)] ?? f.concept;
const term = (f: ContentFacts, i: number): string => f.terms[i % Math.max(1, f.terms.length)] ?? f.concept;
const section = (title: string, body: string): string => `## ${title}\n\n${body.trim()}\n`;
const list = (items: string[]): string => items.map((s) => `- ${s}`).join('\n');
const numbered = (items: string[]): string => items.map((s, i) => `${i + 1}. ${s}`).join('\n');

/** n questions between min and max, chosen deterministically from the content. */
function questions(f: ContentFacts, min: number, max: number, en: Template[], zh: Template[]): string[] {
  const pool = f.lang === 'zh' ? zh : en;
  const n = Math.min(max, Math.max(min, Math.min(pool.length, f.sentences.length + f.terms.length)));
  return Array.from({ length: n }, (_, i) => pool[(i + f.hash) % pool.length](f));
}

const GUIDING_EN: Template[] = [
  (f) => `What is ${f.concept}, in one sentence of your own?`,
  (f) => `Which role does "${term(f, 0)}" play in ${f.concept}?`,
  (f) => `How would you explain "${first(f, 0)}" to a classmate?`,
  (f) => `What would change if "${term(f, 1)}" were missing?`,
  (f) => `How is ${f.concept} related to "${term(f, 2)}"?`,
  (f) => `Which example best shows ${f.concept} at work?`,
  (f) => `What is a common misunderstanding about ${f.concept}?`,
];
const GUIDING_ZH: Template[] = [
  (f) => `用你自己的一句话说明：什么是${f.concept}？`,
  (f) => `"${term(f, 0)}"在${f.concept}中起什么作用？`,
  (f) => `你会如何向同学解释"${first(f, 0)}"？`,
  (f) => `如果没有"${term(f, 1)}"，会发生什么变化？`,
  (f) => `${f.concept}与"${term(f, 2)}"有什么联系？`,
  (f) => `哪个例子最能体现${f.concept}？`,
  (f) => `关于${f.concept}，常见的误解是什么？`,
];
const DEEP_EN: Template[] = [
  (f) => `Why does "${first(f, 0)}" hold, and under which conditions would it fail?`,
  (f) => `Derive or justify the key claim about ${f.concept} from first principles.`,
  (f) => `Contrast ${f.concept} with the closest concept you know: where exactly do they differ?`,
  (f) => `What evidence would convince a sceptic that "${first(f, 1)}"?`,
  (f) => `Which assumption behind "${term(f, 0)}" is easiest to overlook?`,
  (f) => `How would ${f.concept} behave in an extreme or boundary case?`,
  (f) => `Explain the causal chain linking "${term(f, 1)}" and "${term(f, 2)}".`,
  (f) => `Where does ${f.concept} appear in a field other than this one?`,
];
const DEEP_ZH: Template[] = [
  (f) => `为什么"${first(f, 0)}"成立？在什么条件下会不成立？`,
  (f) => `请从基本原理出发，论证关于${f.concept}的核心结论。`,
  (f) => `把${f.concept}与最相近的概念比较：它们到底区别在哪里？`,
  (f) => `什么证据能说服怀疑者相信"${first(f, 1)}"？`,
  (f) => `"${term(f, 0)}"背后最容易被忽视的假设是什么？`,
  (f) => `在极端或边界情况下，${f.concept}会怎样表现？`,
  (f) => `解释"${term(f, 1)}"与"${term(f, 2)}"之间的因果链条。`,
  (f) => `${f.concept}在其他学科中出现在哪里？`,
];
const TEST_EN: Template[] = [
  (f) => `Apply ${f.concept} to a new situation and predict the outcome.`,
  (f) => `True or false, with a reason: "${first(f, 0)}"`,
  (f) => `Solve a short problem that needs "${term(f, 0)}".`,
  (f) => `Spot the error: a student claims ${f.concept} works without "${term(f, 1)}".`,
  (f) => `Design a small experiment or example that tests ${f.concept}.`,
];
const TEST_ZH: Template[] = [
  (f) => `把${f.concept}应用到一个新情境中，并预测结果。`,
  (f) => `判断对错并说明理由："${first(f, 0)}"`,
  (f) => `解一道需要用到"${term(f, 0)}"的小题。`,
  (f) => `找错误：有同学认为没有"${term(f, 1)}"，${f.concept}也能成立。`,
  (f) => `设计一个小实验或例子来检验${f.concept}。`,
];

const DIFFICULTIES: readonly NonNullable<AgentQuestion['difficulty']>[] = ['easy', 'medium', 'hard'];

/** Question agents: one question per item (difficulty rising through the list), and the same list as markdown. */
const questionOutput = (f: ContentFacts, items: string[], type: string): OfflineOutput => ({
  markdown: questionSection(f, items),
  structured: {
    kind: 'questions',
    questions: items.map((text, i) => ({
      text,
      type,
      difficulty: DIFFICULTIES[Math.min(2, Math.floor((i * 3) / items.length))],
    })),
  },
});

const questionSection = (f: ContentFacts, items: string[]): string =>
  section(L(f, 'Questions', '问题'), numbered(items)) +
  '\n' +
  section(
    L(f, 'How to use them', '使用方法'),
    L(
      f,
      'Answer each question in your own words before checking your notes.',
      '先用自己的话回答每个问题，再对照笔记检查。',
    ),
  );

/**
 * Offline output per agent: a heading-less markdown body with the sections that agent's kind calls for, and the
 * structured output of question, score and hint agents.
 */
/**
 * Each offline template's version, part of the result cache's key: bump an agent's number whenever its template (or
 * anything it uses) changes what it writes, so cached outputs of the old one are not reused.
 * `offline-templates.spec.ts` pins a hash of each template's output and fails on a change without a bump.
 */
export const OFFLINE_TEMPLATE_VERSIONS: Readonly<Record<string, number>> = {
  'basic-decomposition': 1,
  'deep-decomposition': 1,
  'question-decomposition': 1,
  'verification-question-agent': 1,
  'four-level-explanation': 1,
  'oral-explanation': 1,
  'clarification-path': 1,
  'comparison-table': 1,
  'example-teaching': 1,
  'memory-anchor': 1,
  'scoring-agent': 1,
  'hint-generation': 1,
};

export const OFFLINE_TEMPLATES: Readonly<Record<string, (f: ContentFacts) => OfflineOutput>> = {
  'basic-decomposition': (f) => questionOutput(f, questions(f, 3, 7, GUIDING_EN, GUIDING_ZH), 'guiding'),
  'deep-decomposition': (f) => questionOutput(f, questions(f, 3, 10, DEEP_EN, DEEP_ZH), 'deep'),
  'question-decomposition': (f) => questionOutput(f, questions(f, 2, 5, TEST_EN, TEST_ZH), 'application'),
  'verification-question-agent': (f) =>
    questionOutput(
      f,
      questions(
        f,
        3,
        5,
        [...TEST_EN.slice(0, 2), ...DEEP_EN.slice(0, 3)],
        [...TEST_ZH.slice(0, 2), ...DEEP_ZH.slice(0, 3)],
      ),
      'verification',
    ),
  ...markdownOnly({
    'four-level-explanation': (f) =>
      [
        section(
          L(f, 'Beginner', '入门'),
          L(f, `${f.concept} in everyday words: ${first(f, 0)}`, `用日常语言说${f.concept}：${first(f, 0)}`),
        ),
        section(
          L(f, 'Intermediate', '进阶'),
          L(
            f,
            `The working parts: ${f.terms.join(', ') || f.concept}. ${first(f, 1)}`,
            `组成要素：${f.terms.join('、') || f.concept}。${first(f, 1)}`,
          ),
        ),
        section(
          L(f, 'Expert', '专家'),
          L(f, `Precisely: ${f.sentences.join(' ')}`, `严格地说：${f.sentences.join('')}`),
        ),
        section(
          L(f, 'Innovative', '创新'),
          L(
            f,
            `Open question: how could ${f.concept} be combined with "${term(f, 2)}" in a new way?`,
            `开放问题：${f.concept}能否以新的方式与"${term(f, 2)}"结合？`,
          ),
        ),
      ].join('\n'),
    'oral-explanation': (f) =>
      [
        section(
          L(f, 'Introduction', '引入'),
          L(
            f,
            `Let us talk about ${f.concept}. Picture it before we define it.`,
            `我们来谈谈${f.concept}。先在脑海里想象它，再给它下定义。`,
          ),
        ),
        section(L(f, 'Core idea', '核心思想'), f.sentences.join(f.lang === 'zh' ? '' : ' ') || f.concept),
        section(
          L(f, 'Why it matters', '为什么重要'),
          L(
            f,
            `Without ${term(f, 0)}, much of what follows would not make sense.`,
            `没有"${term(f, 0)}"，后面的很多内容都无从理解。`,
          ),
        ),
        section(L(f, 'Summary', '总结'), L(f, `Remember: ${first(f, 0)}`, `请记住：${first(f, 0)}`)),
      ].join('\n'),
    'example-teaching': (f) =>
      [
        section(
          L(f, 'Problem', '题目'),
          L(
            f,
            `A situation where ${f.concept} decides the answer: ${first(f, 0)}`,
            `一个由${f.concept}决定答案的情境：${first(f, 0)}`,
          ),
        ),
        section(
          L(f, 'Approach', '思路'),
          L(
            f,
            `Identify ${f.terms.slice(0, 2).join(' and ') || f.concept}, then apply the rule.`,
            `先找出${f.terms.slice(0, 2).join('和') || f.concept}，再运用规则。`,
          ),
        ),
        section(
          L(f, 'Steps', '步骤'),
          numbered(f.sentences.slice(0, 4).length ? f.sentences.slice(0, 4) : [f.concept]),
        ),
        section(
          L(f, 'Common pitfalls', '常见错误'),
          list([
            L(
              f,
              `Confusing "${term(f, 0)}" with "${term(f, 1)}".`,
              `把"${term(f, 0)}"和"${term(f, 1)}"混淆。`,
            ),
          ]),
        ),
        section(
          L(f, 'Variants', '变式'),
          list([
            L(f, `Change one condition of the problem and redo it.`, `改变题目中的一个条件，再做一遍。`),
          ]),
        ),
        section(
          L(f, 'Answer hints', '答案提示'),
          L(f, `Start from: ${first(f, 0)}`, `从这里入手：${first(f, 0)}`),
        ),
      ].join('\n'),
    'clarification-path': (f) =>
      [
        section(
          L(f, 'Step 1 — What exactly is unclear', '第一步：到底哪里不清楚'),
          L(f, `The statement to clarify: "${first(f, 0)}"`, `需要澄清的说法："${first(f, 0)}"`),
        ),
        section(L(f, 'Step 2 — Break it down', '第二步：拆解'), list(f.terms.length ? f.terms : [f.concept])),
        section(
          L(f, 'Step 3 — Connect the pieces', '第三步：建立联系'),
          f.sentences.join(f.lang === 'zh' ? '' : ' ') || f.concept,
        ),
        section(
          L(f, 'Step 4 — Check yourself', '第四步：自我检验'),
          L(f, `Explain ${f.concept} without looking at your notes.`, `不看笔记，解释${f.concept}。`),
        ),
      ].join('\n'),
    'comparison-table': (f) => {
      const other = term(f, 1) === f.concept ? L(f, 'a related concept', '相关概念') : term(f, 1);
      const dims = L(
        f,
        'Definition|Key elements|Typical example|Common mistake|Related to',
        '定义|关键要素|典型例子|常见错误|相关概念',
      ).split('|');
      const rows = dims.map(
        (d, i) =>
          `| ${d} | ${i === 0 ? first(f, 0) : term(f, i)} | ${L(f, 'compare with', '对比')} ${other} |`,
      );
      return section(
        L(f, 'Comparison', '对比'),
        `| ${L(f, 'Dimension', '维度')} | ${f.concept} | ${other} |\n|---|---|---|\n${rows.join('\n')}`,
      );
    },
    'memory-anchor': (f) =>
      [
        section(
          L(f, 'Analogy', '类比'),
          L(
            f,
            `${f.concept} is like a workshop where "${term(f, 0)}" is the main tool.`,
            `${f.concept}就像一个工坊，"${term(f, 0)}"是其中最重要的工具。`,
          ),
        ),
        section(
          L(f, 'Story', '故事'),
          L(
            f,
            `Imagine meeting ${f.concept} for the first time: ${first(f, 0)}`,
            `想象你第一次遇到${f.concept}：${first(f, 0)}`,
          ),
        ),
        section(
          L(f, 'Mnemonic', '口诀'),
          f.terms.length
            ? f.terms.map((t) => t.slice(0, 1).toUpperCase()).join('-') + ` — ${f.terms.join(', ')}`
            : f.concept,
        ),
      ].join('\n'),
  }),
  'scoring-agent': (f) => {
    const breakdown = {
      accuracy: Math.min(25, 8 + f.sentences.length * 3),
      imagery: 5 + (f.hash % 16),
      completeness: Math.min(25, 5 + f.terms.length * 4),
      originality: 5 + ((f.hash >>> 4) % 16),
    };
    const totalScore =
      breakdown.accuracy + breakdown.imagery + breakdown.completeness + breakdown.originality;
    const pass = totalScore >= PASS_SCORE;
    const feedback = pass
      ? L(
          f,
          `A solid account of ${f.concept}. Add one concrete example.`,
          `对${f.concept}的说明很扎实，再补充一个具体例子。`,
        )
      : L(
          f,
          `Expand on ${term(f, 0)} and say why it matters.`,
          `请展开说明"${term(f, 0)}"，并说明它为什么重要。`,
        );
    const score: AgentScore = { totalScore, breakdown, pass, feedback };
    return { markdown: scoreMarkdown(score, f.lang), structured: { kind: 'score', score } };
  },
  'hint-generation': (f) => {
    const hint = {
      text: L(
        f,
        `Think about the role of "${term(f, 0)}" in ${f.concept}.`,
        `想一想"${term(f, 0)}"在${f.concept}中的作用。`,
      ),
      level: (1 + (f.hash % 3)) as 1 | 2 | 3,
    };
    return {
      markdown: [
        section(L(f, 'Hint', '提示'), hint.text),
        section(L(f, 'Hint level', '提示等级'), `${hint.level} / 3`),
      ].join('\n'),
      structured: { kind: 'hint', hint },
    };
  },
};

/** The score at or above which an explanation passes. */
export const PASS_SCORE = 60;

/** The markdown of a score (shared by every provider, so a score file reads the same whoever produced it). */
export function scoreMarkdown(score: AgentScore, lang: ContentLanguage): string {
  const l = (en: string, zh: string): string => (lang === 'zh' ? zh : en);
  return [
    section(
      l('Score', '评分'),
      `**${score.totalScore} / 100** — ${score.pass ? l('pass', '通过') : l('not yet', '尚未通过')}`,
    ),
    section(
      l('Breakdown', '分项'),
      `| ${l('Criterion', '维度')} | ${l('Score', '得分')} |\n|---|---|\n` +
        Object.entries(score.breakdown)
          .map(([k, v]) => `| ${k} | ${v} / 25 |`)
          .join('\n'),
    ),
    section(l('Feedback', '反馈'), score.feedback),
  ].join('\n');
}

/** Agents whose whole output is the markdown file. */
function markdownOnly(
  templates: Record<string, Template>,
): Record<string, (f: ContentFacts) => OfflineOutput> {
  return Object.fromEntries(
    Object.entries(templates).map(([name, t]) => [
      name,
      (f: ContentFacts): OfflineOutput => ({ markdown: t(f) }),
    ]),
  );
}
