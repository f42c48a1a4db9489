import { conceptOf, detectLanguage, keyTerms, plainText, sentencesOf, stableHash } from './content-analysis';

describe('detectLanguage', () => {
  it('detects Chinese and English text', () => {
    expect(detectLanguage('光合作用是植物利用光能的过程。')).toBe('zh');
    expect(detectLanguage('Photosynthesis converts light into chemical energy.')).toBe('en');
  });

  it('says zh once at least a fifth of the letters are Han characters', () => {
    expect(detectLanguage('abcd 导')).toBe('zh'); // 1 of 5 letters
    expect(detectLanguage('abcde 导')).toBe('en'); // 1 of 6 letters
    expect(detectLanguage('The 导数 of f')).toBe('zh'); // 2 of 7 letters
  });

  it('ignores digits, symbols and spaces, and defaults to en without letters', () => {
    expect(detectLanguage('')).toBe('en');
    expect(detectLanguage('123 + 456 = 579 ∑ $$')).toBe('en');
    expect(detectLanguage('1234567890 导')).toBe('zh');
  });
});

describe('plainText', () => {
  it('removes heading markers, emphasis, list bullets, numbers and quotes', () => {
    expect(
      plainText('## Title\n**bold** and _it_ `code` ~~gone~~\n- item\n* star\n1. one\n2) two\n> quoted'),
    ).toBe('Title\nbold and it code gone\nitem\nstar\none\ntwo\nquoted');
  });

  it('keeps link text and wikilink labels or targets, and embed targets', () => {
    expect(plainText('See [the docs](https://x.org) and [[Note]] or [[Note|alias]] and ![[img.png]]')).toBe(
      'See the docs and Note or alias and img.png',
    );
  });

  it('drops code fences and math dollars and collapses spaces', () => {
    expect(plainText('Before\n```ts\nconst x = 1;\n```\nafter $x^2$   and   $$y$$')).toBe(
      'Before\n \nafter x^2 and y',
    );
  });
});

describe('conceptOf', () => {
  it('takes the first heading', () => {
    expect(conceptOf('Intro line\n## Photosynthesis\nbody')).toBe('Photosynthesis');
  });

  it('takes the first clause of the first non-empty line without a heading', () => {
    expect(conceptOf('\n\nMitochondria are the powerhouse. They make ATP.')).toBe(
      'Mitochondria are the powerhouse',
    );
    expect(conceptOf('**导数定义**：曲线切线的斜率。')).toBe('导数定义');
    expect(conceptOf('Definition: a thing')).toBe('Definition');
  });

  it('does not cut at a dot inside a word, a number or a URL', () => {
    expect(conceptOf('Node.js is a runtime.')).toBe('Node.js is a runtime');
    expect(conceptOf('π is about 3.14 and irrational.')).toBe('π is about 3.14 and irrational');
    expect(conceptOf('Cell (biology) — en.wikipedia.org')).toBe('Cell (biology) — en.wikipedia.org');
  });

  it('shortens to at most 80 characters with an ellipsis', () => {
    const concept = conceptOf('word '.repeat(40));
    expect(concept).toHaveLength(80);
    expect(concept.endsWith('…')).toBe(true);
    expect(conceptOf('x'.repeat(80))).toBe('x'.repeat(80));
  });

  it('never cuts an emoji in half when it shortens (a 5 MB node of Chinese and emoji)', () => {
    const unit = '细胞膜主要由磷脂双分子层和蛋白质构成🧬'; // 20 UTF-16 units: index 79 falls inside the 4th emoji
    const concept = conceptOf(unit.repeat(10));
    expect(concept).toBe(`${unit.repeat(3)}${unit.slice(0, 18)}…`);
    expect(concept).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  it('is empty for empty content', () => {
    expect(conceptOf('')).toBe('');
    expect(conceptOf('  \n ')).toBe('');
  });
});

describe('sentencesOf', () => {
  it('splits on Latin and CJK sentence punctuation and on line breaks', () => {
    expect(sentencesOf('One is here. Two! Three? Four; five\nSix')).toEqual([
      'One is here.',
      'Two!',
      'Three?',
      'Four;',
      'five',
      'Six',
    ]);
    expect(sentencesOf('导数是斜率。可导必连续！对吗？是的；当然')).toEqual([
      '导数是斜率。',
      '可导必连续！',
      '对吗？',
      '是的；',
      '当然',
    ]);
  });

  it('keeps decimals and dotted names inside a sentence', () => {
    expect(sentencesOf('Pi is 3.14 roughly. Node.js runs it.')).toEqual([
      'Pi is 3.14 roughly.',
      'Node.js runs it.',
    ]);
  });

  it('drops empty and one-character pieces', () => {
    expect(sentencesOf('a\n\n!\n  x  \nReal sentence.')).toEqual(['Real sentence.']);
    expect(sentencesOf('')).toEqual([]);
  });
});

describe('keyTerms', () => {
  it('returns the most frequent content words, without stop words, ties alphabetical', () => {
    const text = 'Energy energy light. Light energy chloroplast. The plant and the plant.';
    expect(keyTerms(text)).toEqual(['energy', 'plant', 'chloroplast', 'Energy', 'light']);
    expect(keyTerms(text, 2)).toEqual(['energy', 'plant']);
    expect(keyTerms(text)).not.toContain('The');
    expect(keyTerms(text)).not.toContain('and');
  });

  it('ignores words shorter than three characters', () => {
    expect(keyTerms('is at to be ox ab cd')).toEqual([]);
  });

  it('uses 2–4 character Han runs for Chinese content', () => {
    const terms = keyTerms('叶绿素。叶绿素。光合作用。光合作用。光合作用。水');
    expect(terms).toEqual(['光合作用', '叶绿素']);
  });

  it('finds no Chinese terms when there is no run of two or more Han characters', () => {
    expect(keyTerms('导 数 与 积 分')).toEqual([]);
  });

  it('honours the limit', () => {
    expect(keyTerms('alpha beta gamma delta epsilon zeta eta theta', 3)).toHaveLength(3);
  });
});

describe('stableHash', () => {
  it('is 32-bit FNV-1a', () => {
    expect(stableHash('')).toBe(0x811c9dc5);
    expect(stableHash('a')).toBe(0xe40c292c);
    expect(stableHash('foobar')).toBe(0xbf9cf968);
  });

  it('is deterministic, unsigned and sensitive to every character', () => {
    const h = stableHash('光合作用 photosynthesis');
    expect(stableHash('光合作用 photosynthesis')).toBe(h);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(h).toBeLessThan(2 ** 32);
    expect(stableHash('光合作用 photosynthesiS')).not.toBe(h);
  });
});
