import { createHash } from 'node:crypto';
import type { AgentHint, AgentQuestion, AgentScore, AgentStructuredOutput } from '../agent';
import { charCount, formatCount, truncateChars, truncatedNote } from '../common';
import type { CanvasAddition, NewNode } from './canvas-writer';

/** Width of a result file node; its height follows the content length within these bounds. */
export const RESULT_NODE_WIDTH = 400;
const RESULT_NODE_MIN_HEIGHT = 240;
const RESULT_NODE_MAX_HEIGHT = 640;

/** Question nodes: a two-column grid of cards this wide, as tall as their text needs. */
export const QUESTION_NODE_WIDTH = 320;
export const QUESTION_COLUMNS = 2;
const SCORE_NODE_WIDTH = 360;
const HINT_NODE_WIDTH = 360;
/** Rough text metrics of Obsidian's default canvas font, to size text nodes so their text fits. */
const LINE_HEIGHT = 24;
const CHAR_WIDTH = 8;
const PADDING = 48;

/**
 * What an agent's structured output may put into the canvas, in characters of its own text (a question with its
 * guidance, a score's feedback, a hint; the card's header line and score table come on top): at most
 * {@link CARD_MAX_CHARS} per card, {@link RESULT_CARDS_MAX_CHARS} over all cards of one result, and at most
 * {@link MAX_QUESTION_CARDS} question cards. Longer text ends with `… (truncated: N characters more, see the result
 * file)`; questions beyond the cards are named on the last one. The result file keeps the whole output (within its
 * own cap).
 */
export const CARD_MAX_CHARS = 2_000;
export const RESULT_CARDS_MAX_CHARS = 20_000;
export const MAX_QUESTION_CARDS = 20;

/** Guidance shorter than this after a cut is dropped rather than shown as a stub. */
const MIN_GUIDANCE_CHARS = 160;

/** JSON Canvas preset colours. */
export const CANVAS_COLOR = {
  red: '1',
  orange: '2',
  yellow: '3',
  green: '4',
  cyan: '5',
  purple: '6',
} as const;

/** The preset colour for a score band: red below 60 (not yet), yellow 60–79 (partly), green from 80 (mastered). */
export function scoreBandColor(totalScore: number): string {
  if (totalScore >= 80) return CANVAS_COLOR.green;
  if (totalScore >= 60) return CANVAS_COLOR.yellow;
  return CANVAS_COLOR.red;
}

export interface ResultNodesInput {
  /** Identifies the result: (task, source node, agent). Node and edge ids derive from it. */
  key: string;
  sourceNodeId: string;
  agentType: string;
  /** Vault-relative path of the result file, and its full markdown (for the file node's height). */
  fileRel: string;
  body: string;
  structured?: AgentStructuredOutput;
}

/**
 * What a result adds to the canvas, by output kind: a file node (explanations, and any agent without structure); one
 * text node per question in a two-column grid, each linked by an edge labelled with its number; a score card, to
 * the right of the source by preference, with the source recoloured by score band; a hint card. Each goes as one
 * block into the nearest free spot next to its source (under it by preference; `placeNear`), and its edges leave
 * the source on that side. Ids derive from the result's key, so a replay finds what it placed before.
 */
export function resultAddition(r: ResultNodesInput): CanvasAddition {
  const s = r.structured && capStructuredOutput(r.structured).structured;
  if (s?.kind === 'questions' && s.questions.length) return questionsAddition(r, s.questions);
  if (s?.kind === 'score') return scoreAddition(r, s.score);
  if (s?.kind === 'hint') return hintAddition(r, s.hint);
  const id = shortId('n', r.key);
  const height = clamp(Math.round(r.body.length / 3), RESULT_NODE_MIN_HEIGHT, RESULT_NODE_MAX_HEIGHT);
  return {
    sourceNodeId: r.sourceNodeId,
    nodes: [{ id, type: 'file', file: r.fileRel, width: RESULT_NODE_WIDTH, height }],
    edges: [sourceEdge(r, id, r.key, r.agentType)],
  };
}

/**
 * The structured output held to the canvas caps ({@link CARD_MAX_CHARS}, {@link RESULT_CARDS_MAX_CHARS},
 * {@link MAX_QUESTION_CARDS}), and how many characters of it the cards leave out. Idempotent: an output already
 * within the caps comes back as it is, with `omitted` 0.
 */
export function capStructuredOutput(s: AgentStructuredOutput): {
  structured: AgentStructuredOutput;
  omitted: number;
} {
  const note = truncatedNote(', see the result file');
  switch (s.kind) {
    case 'score': {
      const feedback = truncateChars(s.score.feedback, CARD_MAX_CHARS, note);
      return feedback.omitted
        ? { structured: { ...s, score: { ...s.score, feedback: feedback.text } }, omitted: feedback.omitted }
        : { structured: s, omitted: 0 };
    }
    case 'hint': {
      const text = truncateChars(s.hint.text, CARD_MAX_CHARS, note);
      return text.omitted
        ? { structured: { ...s, hint: { ...s.hint, text: text.text } }, omitted: text.omitted }
        : { structured: s, omitted: 0 };
    }
    case 'questions':
      return capQuestions(s, note);
  }
}

function capQuestions(
  s: AgentStructuredOutput & { kind: 'questions' },
  note: (omitted: number) => string,
): { structured: AgentStructuredOutput; omitted: number } {
  const all = s.questions;
  const shown = all.slice(0, MAX_QUESTION_CARDS);
  const share = Math.min(CARD_MAX_CHARS, Math.floor(RESULT_CARDS_MAX_CHARS / Math.max(1, shown.length)));
  const rest = all.slice(MAX_QUESTION_CARDS);
  let omitted = rest.reduce((n, q) => n + charCount(q.text) + charCount(q.guidance ?? ''), 0);
  const more = rest.length
    ? `\n\n… (${formatCount(rest.length)} more question${rest.length > 1 ? 's' : ''} in the result file)`
    : '';
  let changed = rest.length > 0;
  const questions = shown.map((q, i) => {
    const last = i === shown.length - 1;
    const capped = capQuestion(q, last ? share - charCount(more) : share, note);
    omitted += capped.omitted;
    changed ||= capped.q !== q;
    return last && more ? { ...capped.q, text: capped.q.text + more } : capped.q;
  });
  return changed ? { structured: { kind: 'questions', questions }, omitted } : { structured: s, omitted: 0 };
}

/**
 * One question card's own text (question and guidance) within `max` characters: the guidance is cut first, or
 * dropped when less than {@link MIN_GUIDANCE_CHARS} of it would remain (then the question carries the note).
 */
function capQuestion(
  q: AgentQuestion,
  max: number,
  note: (omitted: number) => string,
): { q: AgentQuestion; omitted: number } {
  const textChars = charCount(q.text);
  const guidanceChars = charCount(q.guidance ?? '');
  if (textChars + guidanceChars <= max) return { q, omitted: 0 };
  if (q.guidance !== undefined && max - textChars >= MIN_GUIDANCE_CHARS) {
    const guidance = truncateChars(q.guidance, max - textChars, note);
    return { q: { ...q, guidance: guidance.text }, omitted: guidance.omitted };
  }
  const text = truncateChars(q.text, max, note, guidanceChars);
  const { guidance: _dropped, ...rest } = q;
  return { q: { ...rest, text: text.text }, omitted: text.omitted };
}

function questionsAddition(r: ResultNodesInput, questions: AgentQuestion[]): CanvasAddition {
  const nodes: NewNode[] = questions.map((q, i) => {
    const text = questionText(q, i, r.agentType);
    return {
      id: shortId('n', `${r.key}\0q${i}`),
      type: 'text',
      text,
      width: QUESTION_NODE_WIDTH,
      height: textHeight(text, QUESTION_NODE_WIDTH),
    };
  });
  return {
    sourceNodeId: r.sourceNodeId,
    nodes,
    columns: QUESTION_COLUMNS,
    edges: nodes.map((n, i) => sourceEdge(r, n.id, `${r.key}\0q${i}`, `Q${i + 1}`)),
  };
}

function questionText(q: AgentQuestion, i: number, agentType: string): string {
  const tags = [agentType, q.difficulty].filter(Boolean).join(' · ');
  const guidance = q.guidance?.trim() ? `\n\n> ${q.guidance.trim()}` : '';
  return `**Q${i + 1}** · ${tags}\n\n${q.text.trim()}${guidance}`;
}

function scoreAddition(r: ResultNodesInput, score: AgentScore): CanvasAddition {
  const color = scoreBandColor(score.totalScore);
  const rows = Object.entries(score.breakdown)
    .map(([k, v]) => `| ${k} | ${v} / 25 |`)
    .join('\n');
  const text =
    `## ${score.totalScore} / 100 ${score.pass ? '✓' : '✗'}\n\n` +
    `| | |\n|---|---|\n${rows}\n\n${score.feedback.trim()}`;
  const id = shortId('n', r.key);
  return {
    sourceNodeId: r.sourceNodeId,
    side: 'right',
    sourceColor: color,
    nodes: [
      { id, type: 'text', text, color, width: SCORE_NODE_WIDTH, height: textHeight(text, SCORE_NODE_WIDTH) },
    ],
    edges: [
      {
        id: shortId('e', r.key),
        fromNode: r.sourceNodeId,
        fromSide: 'right',
        toNode: id,
        toSide: 'left',
        label: r.agentType,
      },
    ],
  };
}

function hintAddition(r: ResultNodesInput, hint: AgentHint): CanvasAddition {
  const text = `**Hint** · ${hint.level} / 3\n\n${hint.text.trim()}`;
  const id = shortId('n', r.key);
  return {
    sourceNodeId: r.sourceNodeId,
    nodes: [
      {
        id,
        type: 'text',
        text,
        color: CANVAS_COLOR.cyan,
        width: HINT_NODE_WIDTH,
        height: textHeight(text, HINT_NODE_WIDTH),
      },
    ],
    edges: [sourceEdge(r, id, r.key, r.agentType)],
  };
}

/** An edge from the source to a result card; bottom → top until the placement attaches it where the card went. */
function sourceEdge(
  r: ResultNodesInput,
  toNode: string,
  key: string,
  label: string,
): CanvasAddition['edges'][number] {
  return {
    id: shortId('e', key),
    fromNode: r.sourceNodeId,
    fromSide: 'bottom',
    toNode,
    toSide: 'top',
    label,
  };
}

/**
 * A text node's height for its text at a given width: wrapped lines (wide CJK characters count double) times the
 * line height, plus padding; table and blank lines count as lines.
 */
export function textHeight(text: string, width: number): number {
  const perLine = Math.max(8, Math.floor((width - PADDING) / CHAR_WIDTH));
  let lines = 0;
  for (const line of text.split('\n')) {
    let w = 0;
    for (const ch of line)
      w +=
        /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/u.test(
          ch,
        )
          ? 2
          : 1;
    lines += Math.max(1, Math.ceil(w / perLine));
  }
  return clamp(PADDING + lines * LINE_HEIGHT, 100, 800);
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}

/** A deterministic 16-hex-character id (Obsidian's id shape) for a node or edge we add. */
export function shortId(kind: 'n' | 'e', key: string): string {
  // JSON keeps lone surrogates in node ids apart (UTF-8 would turn them all into U+FFFD)
  return createHash('sha256')
    .update(JSON.stringify([kind, key]))
    .digest('hex')
    .slice(0, 16);
}
