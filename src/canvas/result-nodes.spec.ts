import type { AgentQuestion, AgentStructuredOutput } from '../agent';
import { charCount } from '../common';
import {
  CARD_MAX_CHARS,
  capStructuredOutput,
  MAX_QUESTION_CARDS,
  RESULT_CARDS_MAX_CHARS,
  resultAddition,
} from './result-nodes';

const NOTE = /… \(truncated: [\d,]+ characters more, see the result file\)$/;
const questions = (list: AgentQuestion[]): AgentStructuredOutput => ({ kind: 'questions', questions: list });
const ownChars = (q: AgentQuestion): number => charCount(q.text) + charCount(q.guidance ?? '');
const asQuestions = (s: AgentStructuredOutput): AgentQuestion[] =>
  s.kind === 'questions' ? s.questions : [];
const score = (feedback: string): AgentStructuredOutput => ({
  kind: 'score',
  score: {
    totalScore: 72,
    breakdown: { accuracy: 20, imagery: 15, completeness: 20, originality: 17 },
    pass: true,
    feedback,
  },
});

describe('canvas caps', () => {
  it('are 2,000 characters a card, 20,000 a result, 20 question cards', () => {
    expect([CARD_MAX_CHARS, RESULT_CARDS_MAX_CHARS, MAX_QUESTION_CARDS]).toEqual([2_000, 20_000, 20]);
  });
});

describe('capStructuredOutput', () => {
  it('returns an output within the caps as it is', () => {
    for (const s of [
      questions([{ text: 'What is it?', guidance: 'Start from the definition.' }]),
      questions([]),
      score('Good.'),
      { kind: 'hint', hint: { text: 'Think about the light.', level: 2 } } as const,
    ]) {
      const r = capStructuredOutput(s);
      expect(r.structured).toBe(s);
      expect(r.omitted).toBe(0);
    }
  });

  it('cuts a long score feedback and a long hint to one card, with a note pointing to the result file', () => {
    const s = capStructuredOutput(score('feedback '.repeat(1_000)));
    expect(s.structured.kind === 'score' && s.structured.score.feedback).toMatch(NOTE);
    expect(s.structured.kind === 'score' && charCount(s.structured.score.feedback)).toBeLessThanOrEqual(
      CARD_MAX_CHARS,
    );
    expect(s.structured.kind === 'score' && s.structured.score.totalScore).toBe(72);
    expect(s.omitted).toBeGreaterThan(7_000);
    const h = capStructuredOutput({ kind: 'hint', hint: { text: '提示'.repeat(3_000), level: 3 } });
    expect(h.structured.kind === 'hint' && h.structured.hint).toEqual({
      text: expect.stringMatching(NOTE),
      level: 3,
    });
    expect(h.omitted).toBeGreaterThan(4_000);
  });

  it('cuts a long guidance before the question, and drops it when the question itself fills the card', () => {
    const longGuidance = capStructuredOutput(
      questions([{ text: 'What is it?', guidance: 'Think. '.repeat(500), difficulty: 'easy' }]),
    );
    const [q] = asQuestions(longGuidance.structured);
    expect(q.text).toBe('What is it?');
    expect(q.guidance).toMatch(NOTE);
    expect(q.difficulty).toBe('easy');
    expect(ownChars(q)).toBeLessThanOrEqual(CARD_MAX_CHARS);

    const guidance = 'Start from the definition.';
    const longText = capStructuredOutput(questions([{ text: 'Why? '.repeat(1_000), guidance }]));
    const [cut] = asQuestions(longText.structured);
    expect(cut).not.toHaveProperty('guidance');
    expect(cut.text).toMatch(NOTE);
    expect(charCount(cut.text)).toBeLessThanOrEqual(CARD_MAX_CHARS);
    // the note counts the dropped guidance too
    expect(longText.omitted).toBe(
      5_000 - charCount(cut.text.slice(0, cut.text.indexOf('…'))) + guidance.length,
    );
  });

  it('places at most 20 question cards, shares 20,000 characters among them, and names the rest on the last', () => {
    const many = Array.from({ length: 25 }, (_, i) => ({ text: `Question ${i} `.repeat(200) }));
    const r = capStructuredOutput(questions(many));
    const cards = asQuestions(r.structured);
    expect(cards).toHaveLength(MAX_QUESTION_CARDS);
    const total = cards.reduce((n, q) => n + ownChars(q), 0);
    expect(total).toBeLessThanOrEqual(RESULT_CARDS_MAX_CHARS);
    for (const q of cards)
      expect(ownChars(q)).toBeLessThanOrEqual(RESULT_CARDS_MAX_CHARS / MAX_QUESTION_CARDS);
    expect(cards[0].text).toMatch(NOTE);
    expect(cards[19].text).toMatch(/see the result file\)\n\n… \(5 more questions in the result file\)$/);
    const all = many.reduce((n, q) => n + charCount(q.text), 0);
    expect(r.omitted).toBe(
      all - cards.reduce((n, q) => n + charCount(q.text.slice(0, q.text.indexOf('…'))), 0),
    );
    // idempotent: what the caps let through passes them again unchanged
    expect(capStructuredOutput(r.structured)).toEqual({ structured: r.structured, omitted: 0 });
  });

  it('names a single question left off the cards, and keeps short questions whole', () => {
    const many = Array.from({ length: 21 }, (_, i) => ({ text: `Q${i}?`, guidance: 'Think.' }));
    const r = capStructuredOutput(questions(many));
    const cards = asQuestions(r.structured);
    expect(cards).toHaveLength(20);
    expect(cards[0]).toEqual({ text: 'Q0?', guidance: 'Think.' });
    expect(cards[19].text).toBe('Q19?\n\n… (1 more question in the result file)');
    expect(r.omitted).toBe('Q20?'.length + 'Think.'.length);
  });
});

describe('resultAddition', () => {
  const base = {
    key: 't\0n\0basic-decomposition',
    sourceNodeId: 'n',
    agentType: 'basic-decomposition',
    fileRel: 'a-explanations/x.md',
    body: '# x\n',
  };

  it('applies the caps itself, so no caller can put a huge text node into the canvas', () => {
    const huge = 'How would you explain this? '.repeat(200_000); // 5.6 M characters
    const addition = resultAddition({
      ...base,
      structured: questions([{ text: huge, difficulty: 'easy' }, { text: 'Short?' }]),
    });
    expect(addition.nodes).toHaveLength(2);
    const texts = addition.nodes.map((n) => n.text ?? '');
    expect(texts[0]).toMatch(/^\*\*Q1\*\* · basic-decomposition · easy\n\nHow would you explain this\?/);
    expect(texts[0]).toMatch(NOTE);
    expect(charCount(texts[0])).toBeLessThanOrEqual(CARD_MAX_CHARS + 100);
    expect(texts[1]).toBe('**Q2** · basic-decomposition\n\nShort?');
    const scoreCard = resultAddition({ ...base, structured: score('x'.repeat(10_000)) });
    expect(charCount(scoreCard.nodes[0].text ?? '')).toBeLessThanOrEqual(CARD_MAX_CHARS + 200);
    const hintCard = resultAddition({
      ...base,
      structured: { kind: 'hint', hint: { text: 'y'.repeat(9_000), level: 1 } },
    });
    expect(charCount(hintCard.nodes[0].text ?? '')).toBeLessThanOrEqual(CARD_MAX_CHARS + 100);
  });
});
