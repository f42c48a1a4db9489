import { type AgentDefinition, AGENT_CATALOGUE } from './agent-catalogue';

/** `agent_type` of a group whose nodes are each routed to an agent when they run. */
export const AUTO_AGENT = 'auto';

/** The agent routing falls back to when no pattern matches (the original's fallback). */
export const FALLBACK_AGENT = 'oral-explanation';

/** Confidence from which a routing counts as high, and below which as low (a model is then asked, when there is one). */
export const HIGH_CONFIDENCE = 0.85;
export const LOW_CONFIDENCE = 0.7;

export type RoutedBy = 'rules' | 'model';

/** Where one node's content should go: an agent, how sure the router is, and why (one line). */
export interface Routing {
  agentType: string;
  /** 0–1: ≥ 0.85 high, < 0.70 low. */
  confidence: number;
  reason: string;
  routedBy: RoutedBy;
}

/** `high`, `medium` or `low`, from a confidence. */
export function confidenceLevel(confidence: number): 'high' | 'medium' | 'low' {
  return confidence >= HIGH_CONFIDENCE ? 'high' : confidence < LOW_CONFIDENCE ? 'low' : 'medium';
}

interface Rule {
  agent: string;
  /** A cue and its weight: 1 a clear cue, 0.5 a weak one. English cues match whole words, case-insensitive. */
  cues: ReadonlyArray<readonly [RegExp, number, string]>;
}

/** A whole-word English cue (or phrase). */
const en = (phrase: string, weight = 1): readonly [RegExp, number, string] => [
  new RegExp(`(?<![\\p{L}\\p{N}])${phrase.replace(/ /g, '\\s+')}(?![\\p{L}\\p{N}])`, 'iu'),
  weight,
  phrase.replace(/\\\.\??/g, '.'),
];
/** A Chinese cue: no word boundaries in CJK text, matched as a substring. */
const zh = (phrase: string, weight = 1): readonly [RegExp, number, string] => [
  new RegExp(phrase, 'u'),
  weight,
  phrase,
];

/**
 * Content patterns per agent (story 33.5: content → agent). The original kept its patterns in code that is not in
 * ORIGINAL-SYSTEM.md; these follow what each agent produces (agent-catalogue.ts). Earlier rules win ties.
 */
const RULES: readonly Rule[] = [
  {
    agent: 'comparison-table',
    cues: [
      en('vs\\.?'),
      en('versus'),
      en('compare'),
      en('comparison'),
      en('difference between'),
      en('differences'),
      en('contrast'),
      zh('区别'),
      zh('比较'),
      zh('对比'),
      zh('异同'),
    ],
  },
  {
    agent: 'scoring-agent',
    cues: [
      en('my explanation'),
      en('my answer'),
      en('grade'),
      en('score'),
      zh('我的理解'),
      zh('我的解释'),
      zh('我的答案'),
      zh('评分'),
    ],
  },
  {
    agent: 'hint-generation',
    cues: [en('hint'), en('stuck'), en('give me a clue'), zh('提示'), zh('卡住'), zh('思路')],
  },
  {
    agent: 'clarification-path',
    cues: [
      en("don't understand"),
      en('do not understand'),
      en('confused'),
      en('confusing'),
      en('unclear'),
      en('misconception'),
      en('why', 0.5),
      zh('不懂'),
      zh('不理解'),
      zh('困惑'),
      zh('搞不清'),
      zh('为什么', 0.5),
    ],
  },
  {
    agent: 'example-teaching',
    cues: [
      en('for example'),
      en('example'),
      en('worked example'),
      en('exercise'),
      en('solve'),
      en('calculate'),
      en('e\\.g\\.', 0.5),
      zh('例题'),
      zh('例：'),
      zh('例:'),
      zh('习题'),
      zh('计算'),
      zh('求解'),
    ],
  },
  {
    agent: 'memory-anchor',
    cues: [
      en('remember'),
      en('memorize'),
      en('memorise'),
      en('mnemonic'),
      en('analogy'),
      zh('记住'),
      zh('记忆'),
      zh('口诀'),
      zh('背诵'),
      zh('类比'),
    ],
  },
  {
    agent: 'deep-decomposition',
    cues: [
      en('prove'),
      en('proof'),
      en('derive'),
      en('derivation'),
      en('in depth'),
      en('theorem', 0.5),
      zh('证明'),
      zh('推导'),
      zh('深入'),
      zh('定理', 0.5),
    ],
  },
  {
    agent: 'question-decomposition',
    cues: [en('quiz'), en('practice questions'), en('application'), en('apply'), zh('应用'), zh('练习')],
  },
  {
    agent: 'verification-question-agent',
    cues: [en('check my understanding'), en('self-test'), en('verify'), zh('检验'), zh('验证'), zh('自测')],
  },
  {
    agent: 'basic-decomposition',
    cues: [
      en('break down'),
      en('steps'),
      en('how to'),
      en('process', 0.5),
      zh('分解'),
      zh('步骤'),
      zh('过程', 0.5),
    ],
  },
  {
    agent: 'four-level-explanation',
    cues: [
      en('what is'),
      en('definition'),
      en('concept'),
      en('explain'),
      en('defined', 0.5),
      zh('定义'),
      zh('概念'),
      zh('是什么'),
      zh('解释'),
    ],
  },
];

/** The agents a routing may choose: the runnable ones of the catalogue, by canonical name. */
export const ROUTABLE_AGENTS: readonly AgentDefinition[] = AGENT_CATALOGUE.filter((a) => a.runnable);

/** Content beyond this many characters is not looked at (the cues are in a node's first lines). */
const SCAN_CHARS = 4000;

const round2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * Routes content by its patterns (pure, no I/O): the agent whose cues weigh most, with a confidence from how much
 * they weigh and how far ahead of the next agent it is — one clear cue 0.75, two 0.95, a clear tie 0.60; no cue:
 * the fallback (oral-explanation) at 0.50.
 */
export function routeByRules(content: string): Routing {
  const text = content.slice(0, SCAN_CHARS);
  const scored = RULES.map((rule) => {
    const hits = rule.cues.filter(([re]) => re.test(text));
    return { agent: rule.agent, score: hits.reduce((s, [, w]) => s + w, 0), hits: hits.map(([, , c]) => c) };
  });
  // stable: equal scores keep the rules' order
  const ranked = [...scored].sort((a, b) => b.score - a.score);
  const [best, second] = ranked;
  if (best.score === 0)
    return {
      agentType: FALLBACK_AGENT,
      confidence: 0.5,
      reason: `no content pattern matched: ${FALLBACK_AGENT} is the fallback`,
      routedBy: 'rules',
    };
  const confidence = round2(Math.min(0.97, Math.max(0.3, 0.55 + 0.2 * best.score - 0.15 * second.score)));
  const cues = best.hits.map((c) => `"${c}"`).join(', ');
  const rival = second.score > 0 ? ` (also ${second.agent}: ${second.hits.length} cue(s))` : '';
  return {
    agentType: best.agent,
    confidence,
    reason: `matched ${cues}${rival}`,
    routedBy: 'rules',
  };
}

/** The agent a model's answer names (the longest name found, so `four-level-explanation` beats `four-level`). */
export function agentNamedIn(answer: string): string | undefined {
  const text = answer.toLowerCase();
  const names = ROUTABLE_AGENTS.map((a) => a.name).sort((a, b) => b.length - a.length);
  return names.find((name) => text.includes(name));
}

/** The classification prompt: the runnable agents with what each produces, then the node's content. */
export function routingPrompt(content: string): { system: string; prompt: string } {
  const list = ROUTABLE_AGENTS.map((a) => `- ${a.name}: ${a.description}`).join('\n');
  return {
    system:
      'You route a study note to the one learning agent that helps its learner most. ' +
      `Answer with exactly one agent name from this list and nothing else:\n${list}`,
    prompt: `Note:\n${content.slice(0, SCAN_CHARS)}\n\nAgent name:`,
  };
}
