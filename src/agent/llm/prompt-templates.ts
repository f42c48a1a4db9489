import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { AgentNodeInput } from '../agent-runner';
import { AGENT_CATALOGUE, type OutputKind } from '../agent-catalogue';
import { type ContentLanguage, detectLanguage } from '../content-analysis';
import { outputJsonSchema } from './structured-output';

/** One agent's prompt: front-matter (agent, output kind, question bounds) and the system prompt body. */
export interface PromptTemplate {
  agent: string;
  output: OutputKind;
  /** For `questions` agents: how many questions the schema accepts. */
  questions: { min: number; max: number } | undefined;
  body: string;
}

/**
 * Each bundled template's version, part of the result cache's key: bump an agent's number whenever its template file
 * or the prompt around it (`buildPrompt`) changes, so cached outputs of the old prompt are not reused.
 * `prompt-templates.spec.ts` pins a hash of each agent's built prompt and fails on a change without a bump.
 */
export const PROMPT_TEMPLATE_VERSIONS: Readonly<Record<string, number>> = {
  'basic-decomposition': 1,
  'clarification-path': 1,
  'comparison-table': 1,
  'deep-decomposition': 1,
  'example-teaching': 1,
  'four-level-explanation': 1,
  'hint-generation': 1,
  'memory-anchor': 1,
  'oral-explanation': 1,
  'question-decomposition': 1,
  'scoring-agent': 1,
  'verification-question-agent': 1,
};

/** The bundled templates: one reviewable markdown file per runnable agent, next to this file. */
export const PROMPTS_DIR = path.join(__dirname, 'prompts');

/**
 * Reads and checks the templates: every runnable agent of the catalogue has exactly one, with the catalogue's
 * output kind. Throws a clear error otherwise, so a broken installation stops at start-up.
 */
export function loadPromptTemplates(dir = PROMPTS_DIR): Map<string, PromptTemplate> {
  const templates = new Map<string, PromptTemplate>();
  const problems: string[] = [];
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.md'));
  } catch (err) {
    throw new Error(`prompt templates not found in ${dir}: ${(err as Error).message}`, { cause: err });
  }
  for (const file of files) {
    const parsed = parseTemplate(readFileSync(path.join(dir, file), 'utf8'));
    if (typeof parsed === 'string') problems.push(`${file}: ${parsed}`);
    else templates.set(parsed.agent, parsed);
  }
  for (const def of AGENT_CATALOGUE.filter((d) => d.runnable)) {
    const t = templates.get(def.name);
    if (!t) problems.push(`no prompt template for agent "${def.name}"`);
    else if (t.output !== def.outputKind)
      problems.push(
        `${def.name}: template output "${t.output}" differs from the catalogue's "${def.outputKind}"`,
      );
  }
  if (problems.length) throw new Error(`invalid prompt templates in ${dir}:\n  - ${problems.join('\n  - ')}`);
  return templates;
}

/** Parses `---\nkey: value\n---\nbody`; returns a problem string when malformed. */
export function parseTemplate(text: string): PromptTemplate | string {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n([\s\S]*)$/.exec(text);
  if (!m) return 'missing front-matter (--- … ---)';
  const meta = new Map<string, string>();
  for (const line of m[1].split(/\r?\n/)) {
    const kv = /^\s*([\w-]+)\s*:\s*(.*?)\s*$/.exec(line);
    if (kv) meta.set(kv[1], kv[2]);
  }
  const agent = meta.get('agent');
  const output = meta.get('output') as OutputKind | undefined;
  if (!agent) return 'front-matter needs `agent`';
  if (!output || !['markdown', 'questions', 'score', 'hint'].includes(output))
    return 'front-matter `output` must be markdown, questions, score or hint';
  let questions: PromptTemplate['questions'];
  if (output === 'questions') {
    const q = /^(\d+)-(\d+)$/.exec(meta.get('questions') ?? '');
    if (!q || Number(q[1]) < 1 || Number(q[2]) < Number(q[1]))
      return 'a questions template needs `questions: MIN-MAX`';
    questions = { min: Number(q[1]), max: Number(q[2]) };
  }
  const body = m[2].trim();
  if (!body) return 'the system prompt is empty';
  return { agent, output, questions, body };
}

export interface BuiltPrompt {
  system: string;
  prompt: string;
  lang: ContentLanguage;
}

const LANGUAGE_NAMES: Record<ContentLanguage, string> = { zh: 'Chinese (简体中文)', en: 'English' };

/**
 * The system prompt (template body + language rule + output contract) and the user prompt (the node's content,
 * then its surroundings), cut to `budgetTokens` (≈ 4 characters a token): the node's own content keeps at least
 * three quarters of the budget, neighbours share the rest, nearest first.
 */
export function buildPrompt(t: PromptTemplate, node: AgentNodeInput, budgetTokens: number): BuiltPrompt {
  const lang = detectLanguage(node.content);
  const budget = budgetTokens * 4;
  const content = clip(node.content, Math.floor(budget * 0.75));
  let left = budget - content.length;
  const around: string[] = [];
  const group = node.context?.groupLabel?.trim();
  if (group && left > 0) {
    const g = clip(group, left);
    around.push(`Group: ${g}`);
    left -= g.length;
  }
  for (const n of node.context?.neighbours ?? []) {
    if (left <= 0) break;
    const text = clip(n.trim(), Math.min(left, 1200));
    if (!text) continue;
    around.push(`- ${text.replace(/\n+/g, ' ')}`);
    left -= text.length;
  }
  const kindOfNode =
    node.nodeType === 'link' ? 'Link' : node.nodeType === 'group' ? 'Group of notes' : 'Note';
  // The node's content first and the surroundings after it, each under a plain label: a small model (SmolLM2-135M)
  // copied a leading sentence about the node ("The canvas node is a note. Its content:") into its answers.
  const prompt =
    `<node>\n${content}\n</node>\n(${kindOfNode} on a canvas: the text above is what to work on.)` +
    (around.length
      ? `\n\nWhat surrounds it on the canvas (context only):\n<context>\n${around.join('\n')}\n</context>`
      : '');

  const contract =
    t.output === 'markdown'
      ? 'OUTPUT CONTRACT: markdown\nAnswer with the markdown body only: no top-level `#` title (it is added for you), no preamble, no code fence around the whole answer.'
      : `OUTPUT CONTRACT: ${t.output}\nAnswer with one JSON object and nothing else (no prose, no code fence). It must be valid against this JSON Schema:\n${outputJsonSchema(t.output as 'questions' | 'score' | 'hint', t.questions)}`;
  const system = [
    t.body,
    `Answer in the language of the node's content (here: ${LANGUAGE_NAMES[lang]}), whatever the language of these instructions.`,
    contract,
  ].join('\n\n');
  return { system, prompt, lang };
}

function clip(text: string, max: number): string {
  if (max <= 0) return '';
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
