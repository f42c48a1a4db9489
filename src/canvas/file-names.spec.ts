import fc from 'fast-check';
import {
  byteLength,
  isPortableFileName,
  isReservedDeviceName,
  isResultNameFor,
  MAX_RESULT_NAME_BYTES,
  nameHash,
  resultFileName,
  slugOf,
  truncateUtf8,
} from './file-names';

const TASK_ID = '3f2a9c1e-7b4d-4e5f-8a9b-0c1d2e3f4a5b';

// ---- the rules, written out independently of the implementation ----

const DEVICE_NAMES = [
  'CON',
  'PRN',
  'AUX',
  'NUL',
  ...Array.from({ length: 9 }, (_, i) => `COM${i + 1}`),
  ...Array.from({ length: 9 }, (_, i) => `LPT${i + 1}`),
];
const WINDOWS_RESERVED_CHARS = /[<>:"/\\|?*]/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/; // eslint-disable-line no-control-regex
const LONE_SURROGATE = /\p{Cs}/u;
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069\u200e\u200f]/;

/** Every rule a result name must satisfy; returns the broken ones (empty when the name is fine). */
function brokenRules(name: string): string[] {
  const broken: string[] = [];
  if (WINDOWS_RESERVED_CHARS.test(name)) broken.push('reserved character');
  if (CONTROL.test(name)) broken.push('control character');
  if (LONE_SURROGATE.test(name)) broken.push('lone surrogate');
  if (Buffer.from(name, 'utf8').toString('utf8') !== name) broken.push('not UTF-8 round-trippable');
  if (BIDI_CONTROL.test(name)) broken.push('bidi control');
  if (name !== name.normalize('NFC')) broken.push('not NFC');
  const stem = name.split('.')[0].trimEnd().toUpperCase();
  if (DEVICE_NAMES.includes(stem)) broken.push('reserved device name');
  if (/[. ]$/.test(name)) broken.push('trailing dot or space');
  if (/^[. ]/.test(name)) broken.push('leading dot or space');
  if (Buffer.byteLength(name, 'utf8') > 120) broken.push('over 120 bytes');
  if (!name.endsWith('.md')) broken.push('no .md extension');
  if (!/(^| - )[0-9a-f]{12}\.md$/.test(name)) broken.push('no hash suffix');
  return broken;
}

// ---- generators ----

/** Any UTF-16 code unit, lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const nasty = fc.constantFrom(
  'CON',
  'con',
  'con.md',
  'Con.txt',
  'AUX ',
  'nul.tar.gz',
  'COM1',
  'lpt9',
  'COM¹',
  '.',
  '..',
  '...',
  ' . . ',
  '-',
  '---',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u0085',
  '\u2028',
  '\u202e',
  '\ufeff',
  '\ud83d',
  '\ude00',
  '😀',
  '👨‍👩‍👧‍👦',
  '🇨🇳',
  'e\u0301',
  '导数的定义',
  '細胞',
  'A/B: "testing"?',
  '<script>',
  'C:\\Windows\\',
  '#tag ^block [[link]] |',
  '   ',
  '\t\n\r',
);
/** Full unicode text: astral characters, lone surrogates, controls, reserved names, dots, very long strings. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: codeUnit, maxLength: 60 }),
  fc.string({ unit: fc.oneof(nasty, fc.string({ unit: 'grapheme', maxLength: 3 })), maxLength: 20 }),
  fc.string({ unit: 'binary', minLength: 200, maxLength: 2000 }),
  fc.string({
    unit: fc.constantFrom('导', '数', '的', '定', '义', '😀', '.', ' '),
    minLength: 100,
    maxLength: 400,
  }),
  nasty,
);
const agentType = fc.oneof(
  fc.constantFrom('oral-explanation', 'comparison-table', 'memory-anchor', 'four-level-explanation'),
  anyText,
);
const triple = fc.record({ taskId: fc.oneof(fc.uuid(), anyText), nodeId: anyText, agentType });

describe('resultFileName (properties)', () => {
  it('always gives a name that is safe on Windows, macOS and Linux, ≤ 120 bytes, ending in .md', () => {
    fc.assert(
      fc.property(triple, fc.option(anyText, { nil: undefined }), (t, concept) => {
        const name = resultFileName({ ...t, concept });
        expect(brokenRules(name)).toEqual([]);
        expect(isPortableFileName(name)).toBe(true);
        expect(byteLength(name)).toBeLessThanOrEqual(MAX_RESULT_NAME_BYTES);
      }),
      { numRuns: 500 },
    );
  });

  it('gives the same name for the same input (a replay replaces its file)', () => {
    fc.assert(
      fc.property(triple, fc.option(anyText, { nil: undefined }), (t, concept) => {
        expect(resultFileName({ ...t, concept })).toBe(resultFileName({ ...structuredClone(t), concept }));
      }),
    );
  });

  it('ends every name with the hash of (task, node, agent), whatever the concept', () => {
    fc.assert(
      fc.property(triple, anyText, anyText, (t, c1, c2) => {
        const hashed = `${nameHash(t.taskId, t.nodeId, t.agentType)}.md`;
        for (const name of [resultFileName({ ...t, concept: c1 }), resultFileName({ ...t, concept: c2 })]) {
          expect(name === hashed || name.endsWith(` - ${hashed}`)).toBe(true);
        }
      }),
    );
  });

  it('gives distinct names to distinct (task, node, agent) triples, even with the same concept, ignoring case', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(triple, {
          minLength: 2,
          maxLength: 40,
          selector: (t) => JSON.stringify([t.taskId, t.nodeId, t.agentType]),
        }),
        anyText,
        (triples, concept) => {
          const names = triples.map((t) => resultFileName({ ...t, concept }).toLowerCase());
          expect(new Set(names).size).toBe(triples.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps a plain concept (letters of any script, digits, spaces) readable and whole when it fits', () => {
    const word = fc.string({
      unit: fc.constantFrom(...'abcXYZ019导数的定义細胞éñßжπ'.split('')),
      minLength: 1,
      maxLength: 5, // 4 words × 5 three-byte characters + 3 spaces = 63 bytes: always fits the 64-byte slug
    });
    fc.assert(
      fc.property(
        fc.array(word, { minLength: 1, maxLength: 4 }),
        fc.string({ maxLength: 20 }),
        (words, nodeId) => {
          const concept = words.join(' ');
          const name = resultFileName({ taskId: TASK_ID, nodeId, agentType: 'oral-explanation', concept });
          expect(name).toBe(
            `oral-explanation - ${concept} - ${nameHash(TASK_ID, nodeId, 'oral-explanation')}.md`,
          );
        },
      ),
    );
  });
});

describe('truncateUtf8 (properties)', () => {
  it('gives the longest whole-grapheme prefix within the byte budget, never half a surrogate pair', () => {
    const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.nat({ max: 300 }), (text, max) => {
        const cut = truncateUtf8(text, max);
        expect(text.startsWith(cut)).toBe(true);
        expect(byteLength(cut)).toBeLessThanOrEqual(Math.max(max, 0));
        expect(LONE_SURROGATE.test(cut)).toBe(LONE_SURROGATE.test(text) && cut === text);
        if (cut !== text) {
          const next = [...segmenter.segment(text.slice(cut.length))][0].segment;
          expect(byteLength(cut) + byteLength(next)).toBeGreaterThan(max);
        }
      }),
    );
  });
});

describe('resultFileName (examples)', () => {
  const hash = (node: string, agent = 'oral-explanation') => nameHash(TASK_ID, node, agent);

  it('reads like "<agent> - <concept> - <hash>.md"', () => {
    expect(
      resultFileName({
        taskId: TASK_ID,
        nodeId: 'n1',
        agentType: 'oral-explanation',
        concept: 'Cell theory',
      }),
    ).toBe(`oral-explanation - Cell theory - ${hash('n1')}.md`);
    expect(hash('n1')).toMatch(/^[0-9a-f]{12}$/);
  });

  it('keeps Chinese readable and NFC-normalizes', () => {
    expect(
      resultFileName({ taskId: TASK_ID, nodeId: 'n2', agentType: 'oral-explanation', concept: '导数的定义' }),
    ).toBe(`oral-explanation - 导数的定义 - ${hash('n2')}.md`);
    const decomposed = 'Cafe\u0301 au lait';
    const name = resultFileName({
      taskId: TASK_ID,
      nodeId: 'n3',
      agentType: 'oral-explanation',
      concept: decomposed,
    });
    expect(name).toBe(`oral-explanation - Café au lait - ${hash('n3')}.md`);
    expect(name).toContain('\u00e9');
  });

  it('shortens a long Chinese concept on a character boundary with an ellipsis', () => {
    const name = resultFileName({
      taskId: TASK_ID,
      nodeId: 'n4',
      agentType: 'oral-explanation',
      concept: '函数的极限与连续性'.repeat(20),
    });
    expect(name).toMatch(
      /^oral-explanation - (函数的极限与连续性)+[函数的极限与连续性]*… - [0-9a-f]{12}\.md$/,
    );
    expect(byteLength(name)).toBeLessThanOrEqual(120);
  });

  it('shortens a very long English concept to at most 120 bytes in all', () => {
    const name = resultFileName({
      taskId: TASK_ID,
      nodeId: 'n5',
      agentType: 'four-level-explanation',
      concept: 'The mitochondrion is the powerhouse of the cell '.repeat(10),
    });
    expect(name).toBe(
      `four-level-explanation - The mitochondrion is the powerhouse of the cell The mitochond… - ${hash('n5', 'four-level-explanation')}.md`,
    );
    expect(byteLength(name)).toBeLessThanOrEqual(120);
  });

  it('drops reserved characters, controls and bidi overrides; slashes become hyphens', () => {
    expect(
      resultFileName({
        taskId: TASK_ID,
        nodeId: 'n6',
        agentType: 'oral-explanation',
        concept: 'A/B: why? "x" <y>',
      }),
    ).toBe(`oral-explanation - A-B why x y - ${hash('n6')}.md`);
    expect(
      resultFileName({
        taskId: TASK_ID,
        nodeId: 'n7',
        agentType: 'oral-explanation',
        concept: 'invoice\u202egpj.exe\u0000\u0007',
      }),
    ).toBe(`oral-explanation - invoicegpj.exe - ${hash('n7')}.md`);
  });

  it('falls back to the node id when the concept gives nothing readable', () => {
    for (const concept of [undefined, '', '   ', '???', '...', '\u200b']) {
      expect(
        resultFileName({ taskId: TASK_ID, nodeId: 'node-8', agentType: 'oral-explanation', concept }),
      ).toBe(`oral-explanation - node-8 - ${hash('node-8')}.md`);
    }
    expect(
      resultFileName({ taskId: TASK_ID, nodeId: '///', agentType: 'oral-explanation', concept: '' }),
    ).toBe(`oral-explanation - ${hash('///')}.md`);
  });

  it('never gives a reserved device name, even when the parts are', () => {
    expect(
      resultFileName({ taskId: TASK_ID, nodeId: 'n9', agentType: 'oral-explanation', concept: 'CON' }),
    ).toBe(`oral-explanation - CON - ${hash('n9')}.md`);
    const name = resultFileName({ taskId: TASK_ID, nodeId: 'n10', agentType: '', concept: 'con.md' });
    expect(name).toBe(`_con.md - ${nameHash(TASK_ID, 'n10', '')}.md`);
    expect(brokenRules(name)).toEqual([]);
    expect(
      brokenRules(resultFileName({ taskId: TASK_ID, nodeId: 'n11', agentType: 'aux', concept: '' })),
    ).toEqual([]);
  });

  it('stays within 120 bytes when a long agent part is a reserved device name and gets its `_`', () => {
    const name = resultFileName({
      taskId: '00000000-0000-1000-8000-000000000000',
      nodeId: '😀导导导导导😀导导😀导😀.导 导导导导 ' + '导'.repeat(100),
      agentType: 'Con.txtࠀࠀࠀ𐀀导数的定义𐀀',
    });
    expect(name.startsWith('_Con.txt')).toBe(true);
    expect(brokenRules(name)).toEqual([]);
  });

  it('differs for each agent on the same node and for each node', () => {
    const names = new Set(
      ['n1', 'n2'].flatMap((nodeId) =>
        ['oral-explanation', 'memory-anchor'].map((agentType) =>
          resultFileName({ taskId: TASK_ID, nodeId, agentType, concept: 'Same concept' }),
        ),
      ),
    );
    expect(names.size).toBe(4);
  });
});

describe('isResultNameFor', () => {
  const triple = { taskId: TASK_ID, nodeId: 'n1', agentType: 'oral-explanation' };

  it('recognizes every name of the same (task, node, agent), whatever the concept', () => {
    fc.assert(
      fc.property(anyText, (concept) => {
        expect(isResultNameFor(resultFileName({ ...triple, concept }), triple)).toBe(true);
      }),
    );
    const reserved = { taskId: TASK_ID, nodeId: 'n1', agentType: '' };
    expect(isResultNameFor(resultFileName({ ...reserved, concept: 'con.md' }), reserved)).toBe(true);
  });

  it('refuses names of another triple, other agents, and files that are not result names', () => {
    const hash = nameHash(TASK_ID, 'n1', 'oral-explanation');
    expect(isResultNameFor(resultFileName({ ...triple, nodeId: 'n2', concept: 'x' }), triple)).toBe(false);
    expect(isResultNameFor(`memory-anchor - x - ${hash}.md`, triple)).toBe(false);
    expect(isResultNameFor('cell.md', triple)).toBe(false);
    expect(isResultNameFor(`notes${hash}.md`, triple)).toBe(false);
    expect(isResultNameFor(`oral-explanation - x: y - ${hash}.md`, triple)).toBe(false);
  });
});

describe('isReservedDeviceName', () => {
  it.each([
    'CON',
    'con',
    'Con.md',
    'nul.tar.gz',
    'AUX .md',
    'COM1',
    'com9.txt',
    'LPT1',
    'lpt9',
    'COM¹',
    'LPT³',
    'CONOUT$',
    'COM0',
  ])('%s is reserved', (name) => expect(isReservedDeviceName(name)).toBe(true));

  it.each(['CONSOLE', 'com10', 'xcon', 'LPT', 'NULL.md', 'con-1.md', '_con.md'])(
    '%s is not reserved',
    (name) => expect(isReservedDeviceName(name)).toBe(false),
  );
});

describe('isPortableFileName', () => {
  it.each(['a.md', 'oral-explanation - 导数的定义 - 9b0e77aa.md', 'émoji 😀.md'])('accepts %s', (name) =>
    expect(isPortableFileName(name)).toBe(true),
  );

  it.each(['', '.', '..', 'a:b.md', 'a\u0001.md', 'x.', 'x ', 'con.md', '\ud800.md', 'a'.repeat(121)])(
    'refuses %j',
    (name) => expect(isPortableFileName(name)).toBe(false),
  );
});

describe('slugOf', () => {
  it('trims dots, spaces and hyphens at both ends and collapses whitespace', () => {
    expect(slugOf('  ..-Cell\t\n theory-.. ', 64)).toBe('Cell theory');
  });

  it('keeps emoji sequences whole', () => {
    expect(slugOf('👨‍👩‍👧‍👦 family', 64)).toBe('👨‍👩‍👧‍👦 family');
    expect(slugOf('👨‍👩‍👧‍👦👨‍👩‍👧‍👦', 30)).toBe('👨‍👩‍👧‍👦…');
  });

  it('gives an empty slug when nothing fits', () => {
    expect(slugOf('导数', 2)).toBe('');
  });
});

describe('resultFileName (regressions found by the properties)', () => {
  it('stays NFC when a dropped control character separated two combining marks', () => {
    const name = resultFileName({
      taskId: TASK_ID,
      nodeId: '',
      agentType: 'oral-explanation',
      concept: '\u0300\u0000\ua82c\u0f15',
    });
    expect(name).toBe(name.normalize('NFC'));
    expect(isPortableFileName(name)).toBe(true);
  });
});
