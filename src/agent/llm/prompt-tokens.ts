import type { AgentNodeInput } from '../agent-runner';
import { findAgent } from '../agent-catalogue';
import { buildPrompt, loadPromptTemplates, type PromptTemplate } from './prompt-templates';

/**
 * Tokens of `text` without a tokenizer (none is installed, and each provider has its own): per script, as BPE
 * tokenizers of the hosted models split prose — Han, kana and Hangul about 1 token a character, Latin letters,
 * digits, punctuation and spaces about 4 characters a token, other scripts (Cyrillic, Greek, Arabic, emoji…) about 2.
 * Within ±25 % of what a provider reports for prose (a mix of scripts stays within it; code or long digit runs
 * may not); rounded up.
 */
export function estimateTokens(text: string): number {
  let cjk = 0;
  let latin = 0;
  let other = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x250) latin++;
    else if (isCjk(c)) cjk++;
    // a surrogate pair is one character (an emoji, a rare ideograph): counted once, on its high half
    else if (c >= 0xdc00 && c <= 0xdfff) continue;
    else other++;
  }
  return Math.ceil(cjk + latin / 4 + other / 2);
}

/** Han (and its extensions), kana, Hangul, CJK punctuation and full-width forms. */
function isCjk(c: number): boolean {
  return (
    (c >= 0x2e80 && c <= 0x9fff) || // radicals, CJK punctuation, kana, Han
    (c >= 0xac00 && c <= 0xd7af) || // Hangul syllables
    (c >= 0xf900 && c <= 0xfaff) || // compatibility ideographs
    (c >= 0xff00 && c <= 0xffef) || // full-width forms
    (c >= 0x3400 && c <= 0x4dbf) // extension A
  );
}

/**
 * The input tokens of one agent call, from the real prompt: the agent's template filled with the node (as node
 * execution gives it: its content capped, its surroundings) exactly as the LLM runner builds it, within the same
 * context budget. The system prompt depends only on the agent and the content's language: counted once each.
 */
export class PromptTokens {
  private readonly systemTokens = new Map<string, number>();

  constructor(
    private readonly contextTokens: number,
    private readonly templates: Map<string, PromptTemplate> = loadPromptTemplates(),
  ) {}

  /** Tokens of the prompt `agentType` gets for `node`; 0 for a node without content (no provider call is made). */
  inputTokens(agentType: string, node: AgentNodeInput): number {
    const def = findAgent(agentType);
    const template = def && this.templates.get(def.name);
    if (!template) throw new RangeError(`no prompt template for agent "${agentType}"`);
    if (!node.content.trim()) return 0;
    const { system, prompt, lang } = buildPrompt(template, node, this.contextTokens);
    const key = `${template.agent}\0${lang}`;
    let systemTokens = this.systemTokens.get(key);
    if (systemTokens === undefined) this.systemTokens.set(key, (systemTokens = estimateTokens(system)));
    return systemTokens + estimateTokens(prompt);
  }
}
