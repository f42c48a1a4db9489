import { extractJson, markdownOf, outputJsonSchema, parseAnswer, stripPromptEcho } from './structured-output';

describe('parseAnswer', () => {
  it('takes a markdown answer as is, minus a wrapping fence and a top-level title', () => {
    expect(parseAnswer('markdown', '```markdown\n# Title\n\nBody text.\n```', 'en')).toEqual({
      ok: true,
      result: { markdown: 'Body text.\n' },
    });
    expect(parseAnswer('markdown', '   ', 'en')).toEqual({ ok: false, problem: 'the answer is empty' });
  });

  it('accepts questions within the bounds, from a fenced or chatty answer', () => {
    const json = JSON.stringify({
      questions: [{ text: 'Why?', difficulty: 'easy', guidance: 'Think.' }, { text: 'How?' }],
    });
    const parsed = parseAnswer('questions', `Here you go:\n${json}\nHope it helps`, 'en', { min: 2, max: 3 });
    expect(parsed).toEqual({
      ok: true,
      result: {
        markdown: '## Questions\n\n1. Why?\n   - Hint: Think.\n2. How?\n',
        structured: {
          kind: 'questions',
          questions: [{ text: 'Why?', difficulty: 'easy', guidance: 'Think.' }, { text: 'How?' }],
        },
      },
    });
    expect(parseAnswer('questions', '```json\n' + json + '\n```', 'en', { min: 3, max: 5 })).toMatchObject({
      ok: false,
      problem: expect.stringContaining('does not match the questions schema: questions:'),
    });
  });

  it('computes the score total and pass from the breakdown (the model does not get to add up)', () => {
    const parsed = parseAnswer(
      'score',
      JSON.stringify({
        breakdown: { accuracy: 20, imagery: 10, completeness: 20, originality: 10 },
        feedback: '好',
      }),
      'zh',
    );
    expect(parsed.ok && parsed.result.structured).toEqual({
      kind: 'score',
      score: {
        totalScore: 60,
        pass: true,
        breakdown: { accuracy: 20, imagery: 10, completeness: 20, originality: 10 },
        feedback: '好',
      },
    });
    expect(parsed.ok && parsed.result.markdown).toContain('60 / 100');
    expect(
      parseAnswer(
        'score',
        JSON.stringify({
          breakdown: { accuracy: 26, imagery: 1, completeness: 1, originality: 1 },
          feedback: 'x',
        }),
        'en',
      ).ok,
    ).toBe(false);
  });

  it('accepts a hint of level 1–3 only', () => {
    expect(parseAnswer('hint', '{"text":"Look closer.","level":2}', 'zh')).toEqual({
      ok: true,
      result: {
        markdown: '## 提示 (等级 2)\n\nLook closer.\n',
        structured: { kind: 'hint', hint: { text: 'Look closer.', level: 2 } },
      },
    });
    expect(parseAnswer('hint', '{"text":"x","level":4}', 'en').ok).toBe(false);
  });

  it('explains what is wrong with a non-JSON answer', () => {
    expect(parseAnswer('hint', 'no json here', 'en')).toEqual({
      ok: false,
      problem: 'the answer contains no JSON object',
    });
    expect(parseAnswer('hint', '{ broken: }', 'en')).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^the answer is not valid JSON/),
    });
    expect(parseAnswer('hint', '[]', 'en')).toMatchObject({ ok: false });
  });
});

describe('helpers', () => {
  it('extractJson finds the object; outputJsonSchema is JSON Schema without $schema', () => {
    expect(extractJson('a {"x": {"y": 1}} b')).toBe('{"x": {"y": 1}}');
    expect(extractJson('}{')).toBeUndefined();
    const schema = JSON.parse(outputJsonSchema('questions', { min: 3, max: 7 })) as Record<string, any>;
    expect(schema.$schema).toBeUndefined();
    expect(schema.properties.questions).toMatchObject({ type: 'array', minItems: 3, maxItems: 7 });
    expect(JSON.parse(outputJsonSchema('score')).required).toEqual(['breakdown', 'feedback']);
  });

  it('markdownOf renders each kind in the content language', () => {
    expect(markdownOf({ kind: 'questions', questions: [{ text: '为什么？' }] }, 'zh')).toBe(
      '## 问题\n\n1. 为什么？\n',
    );
    expect(markdownOf({ kind: 'hint', hint: { text: 'Nudge.', level: 1 } }, 'en')).toBe(
      '## Hint (level 1)\n\nNudge.\n',
    );
  });
});

describe('stripPromptEcho (what a small model copied from the prompt)', () => {
  it('drops the prompt scaffolding and keeps the answer', () => {
    expect(
      stripPromptEcho(
        'The canvas node is a note. Its content:\n<node>\nCells divide.\n</node>\n(Note on a canvas: the text above is what to work on.)\nWhat surrounds it on the canvas (context only):\n<context>\n- a neighbour\n</context>\nMitosis makes two cells.',
      ),
    ).toBe('Cells divide.\n\nMitosis makes two cells.');
    expect(stripPromptEcho('Plain answer.')).toBe('Plain answer.');
    expect(stripPromptEcho('<context>\nunterminated')).toBe('');
  });

  it('a markdown answer that was only scaffolding is empty', () => {
    expect(parseAnswer('markdown', '<context>\n- x\n</context>', 'en')).toEqual({
      ok: false,
      problem: 'the answer is empty',
    });
  });
});
