import { z } from 'zod';
import type { AgentQuestion, AgentRunResult, AgentScore, AgentStructuredOutput } from '../agent-runner';
import type { OutputKind } from '../agent-catalogue';
import type { ContentLanguage } from '../content-analysis';
import { PASS_SCORE, scoreMarkdown } from '../offline-templates';

const dimension = z.number().int().min(0).max(25);

const question = z.object({
  text: z.string().trim().min(1),
  type: z.string().trim().min(1).optional(),
  difficulty: z.enum(['easy', 'medium', 'hard']).optional(),
  guidance: z.string().trim().min(1).optional(),
});

/** The JSON each structured agent must answer with; `questions` bounds come from the agent's template. */
export function outputSchema(kind: 'questions' | 'score' | 'hint', bounds = { min: 1, max: 10 }): z.ZodType {
  switch (kind) {
    case 'questions':
      return z.object({ questions: z.array(question).min(bounds.min).max(bounds.max) });
    case 'score':
      return z.object({
        breakdown: z.object({
          accuracy: dimension,
          imagery: dimension,
          completeness: dimension,
          originality: dimension,
        }),
        feedback: z.string().trim().min(1),
      });
    case 'hint':
      return z.object({
        text: z.string().trim().min(1),
        level: z.union([z.literal(1), z.literal(2), z.literal(3)]),
      });
  }
}

/** The schema as JSON Schema, for the prompt's output contract. */
export function outputJsonSchema(
  kind: 'questions' | 'score' | 'hint',
  bounds?: { min: number; max: number },
): string {
  const json = z.toJSONSchema(outputSchema(kind, bounds)) as Record<string, unknown>;
  delete json.$schema;
  return JSON.stringify(json);
}

export type ParsedOutput =
  { ok: true; result: Omit<AgentRunResult, 'usage'> } | { ok: false; problem: string };

/**
 * Turns the model's answer into the port's result: markdown agents take the text as is (minus a wrapping code
 * fence); structured agents must answer with one JSON object valid against their schema.
 */
export function parseAnswer(
  kind: OutputKind,
  text: string,
  lang: ContentLanguage,
  bounds?: { min: number; max: number },
): ParsedOutput {
  if (kind !== 'questions' && kind !== 'score' && kind !== 'hint') {
    const markdown = stripHeading(stripPromptEcho(unfence(text).trim()));
    return markdown.trim()
      ? { ok: true, result: { markdown } }
      : { ok: false, problem: 'the answer is empty' };
  }
  const json = extractJson(text);
  if (json === undefined) return { ok: false, problem: 'the answer contains no JSON object' };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return { ok: false, problem: `the answer is not valid JSON (${(err as Error).message})` };
  }
  const parsed = outputSchema(kind, bounds).safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    return { ok: false, problem: `the answer does not match the ${kind} schema: ${issues}` };
  }
  const structured = toStructured(kind, parsed.data);
  return { ok: true, result: { markdown: markdownOf(structured, lang), structured } };
}

function toStructured(kind: 'questions' | 'score' | 'hint', data: unknown): AgentStructuredOutput {
  if (kind === 'questions') return { kind, questions: (data as { questions: AgentQuestion[] }).questions };
  if (kind === 'hint') return { kind, hint: data as { text: string; level: 1 | 2 | 3 } };
  const { breakdown, feedback } = data as Pick<AgentScore, 'breakdown' | 'feedback'>;
  const totalScore = breakdown.accuracy + breakdown.imagery + breakdown.completeness + breakdown.originality;
  return { kind, score: { totalScore, breakdown, pass: totalScore >= PASS_SCORE, feedback } };
}

/** The result file's markdown for a structured answer. */
export function markdownOf(s: AgentStructuredOutput, lang: ContentLanguage): string {
  const l = (en: string, zh: string): string => (lang === 'zh' ? zh : en);
  switch (s.kind) {
    case 'questions':
      return (
        `## ${l('Questions', '问题')}\n\n` +
        s.questions
          .map(
            (q, i) => `${i + 1}. ${q.text}${q.guidance ? `\n   - ${l('Hint', '提示')}: ${q.guidance}` : ''}`,
          )
          .join('\n') +
        '\n'
      );
    case 'score':
      return scoreMarkdown(s.score, lang);
    case 'hint':
      return `## ${l('Hint', '提示')} (${l('level', '等级')} ${s.hint.level})\n\n${s.hint.text}\n`;
  }
}

/** The first balanced-looking JSON object in the text (models like to wrap it in a code fence or prose). */
export function extractJson(text: string): string | undefined {
  const body = unfence(text);
  const start = body.indexOf('{');
  const end = body.lastIndexOf('}');
  return start >= 0 && end > start ? body.slice(start, end + 1) : undefined;
}

function unfence(text: string): string {
  const m = /^\s*```[\w-]*\n([\s\S]*?)\n```\s*$/.exec(text);
  return m ? m[1] : text;
}

/**
 * Drops what a small model copied from the prompt's scaffolding into its answer: the `<node>` / `<context>` tags
 * (with the context they wrapped) and the prompt's note about the node.
 */
export function stripPromptEcho(text: string): string {
  return text
    .replace(/<context>[\s\S]*?(<\/context>|$)/g, '')
    .replace(/<\/?(node|context)>/g, '')
    .replace(/^\((?:Note|Link|Group of notes) on a canvas: the text above is what to work on\.\)\s*$/gm, '')
    .replace(/^The canvas node is (?:a note|a link \(URL\)|a group of notes)\. Its content:\s*$/gm, '')
    .replace(/^What surrounds it on the canvas(?: \(context only\))?:\s*$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** The canvas module adds the file's top heading: drop one the model wrote itself. */
function stripHeading(markdown: string): string {
  return markdown.replace(/^# [^\n]*\n+/, '').trim() + '\n';
}
