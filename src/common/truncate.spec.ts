import {
  charCount,
  codePointBoundary,
  formatCount,
  graphemeBoundary,
  truncateChars,
  truncatedNote,
  truncateUtf8,
  wordBoundary,
} from './truncate';

const note = truncatedNote();
const hasLoneSurrogate = (s: string): boolean =>
  /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

describe('charCount', () => {
  it('counts code points: a surrogate pair once, a lone surrogate once', () => {
    expect(charCount('abc')).toBe(3);
    expect(charCount('导数🧬')).toBe(3);
    expect(charCount('a\ud83e')).toBe(2);
    expect(charCount('\udc00b')).toBe(2);
    expect(charCount('x🧬y', 1)).toBe(2);
  });
});

describe('formatCount and truncatedNote', () => {
  it('spell counts with thousands separators', () => {
    expect(formatCount(4_980_736)).toBe('4,980,736');
    expect(truncatedNote(', see the result file')(1234)).toBe(
      '… (truncated: 1,234 characters more, see the result file)',
    );
  });
});

describe('truncateChars', () => {
  it('returns a text within the limit as it is', () => {
    expect(truncateChars('hello', 5, note)).toEqual({ text: 'hello', omitted: 0 });
    expect(truncateChars('', 0, note)).toEqual({ text: '', omitted: 0 });
  });

  it('keeps the start and a note, together within the limit, counting what was left out', () => {
    const text = 'word '.repeat(1000); // 5,000 characters
    const r = truncateChars(text, 200, note);
    expect(charCount(r.text)).toBeLessThanOrEqual(200);
    expect(r.text).toMatch(/^word word .*word… \(truncated: [\d,]+ characters more\)$/);
    const kept = r.text.slice(0, r.text.indexOf('…'));
    expect(r.omitted).toBe(5000 - kept.length);
    expect(r.text).toContain(`truncated: ${formatCount(r.omitted)} characters`);
    expect(kept).toBe(kept.trimEnd()); // no trailing blank before the note
  });

  it('never cuts a surrogate pair, and counts characters, not UTF-16 units', () => {
    const text = '🧬'.repeat(500);
    for (const max of [60, 61, 62, 63, 100]) {
      const r = truncateChars(text, max, note);
      expect(hasLoneSurrogate(r.text)).toBe(false);
      expect(charCount(r.text)).toBeLessThanOrEqual(max);
      expect(r.omitted + charCount(r.text.slice(0, r.text.indexOf('…')))).toBe(500);
    }
  });

  it('keeps a grapheme whole: an emoji with its modifier, a letter with its combining marks', () => {
    const family = '👩🏽‍🔬'; // woman scientist, medium skin tone: 4 code points, one grapheme
    const text = `${'a'.repeat(44)}${family.repeat(20)}`;
    for (let max = 60; max < 80; max++) {
      const r = truncateChars(text, max, note);
      const kept = r.text.slice(0, r.text.indexOf('…'));
      expect(kept.slice(44).length % family.length).toBe(0);
    }
    const accents = `${'b'.repeat(40)}${'e\u0301\u0302'.repeat(30)}`;
    const r = truncateChars(accents, 75, note);
    const kept = r.text.slice(0, r.text.indexOf('…'));
    expect(kept.slice(40).length % 3).toBe(0);
  });

  it('counts an extra part left out beside the text, even when the text itself fits', () => {
    const r = truncateChars('short question', 100, note, 250);
    expect(r).toEqual({ text: 'short question… (truncated: 250 characters more)', omitted: 250 });
  });

  it('cuts the note itself when the limit is smaller than the note', () => {
    const r = truncateChars('x'.repeat(100), 10, note);
    expect(r).toEqual({ text: '… (truncat', omitted: 100 });
    const emoji = (max: number): string => truncateChars('x'.repeat(100), max, () => 'ab🧬🧬cd').text;
    expect(emoji(4)).toBe('ab🧬🧬');
    expect(emoji(3)).toBe('ab🧬'); // never half a pair
    expect(truncateChars('x'.repeat(100), 0, note).text).toBe('');
  });
});

describe('truncateUtf8', () => {
  it('returns a text within the byte limit as it is', () => {
    expect(truncateUtf8('导数', 6, note)).toEqual({ text: '导数', omitted: 0 });
  });

  it('keeps the UTF-8 form within the limit, cutting on character boundaries (1- to 4-byte characters)', () => {
    const text = 'aé导🧬'.repeat(2000); // 1 + 2 + 3 + 4 bytes
    for (const max of [100, 101, 102, 103, 104, 1000]) {
      const r = truncateUtf8(text, max, note);
      expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(max);
      expect(Buffer.byteLength(r.text)).toBeGreaterThan(max - 10);
      expect(hasLoneSurrogate(r.text)).toBe(false);
      expect(Buffer.from(r.text, 'utf8').toString('utf8')).toBe(r.text);
      expect(r.omitted + charCount(r.text.slice(0, r.text.indexOf('…')))).toBe(8000);
    }
  });

  it('counts a lone surrogate as 3 bytes (U+FFFD), as Buffer writes it', () => {
    const text = '\ud83e'.repeat(100);
    const r = truncateUtf8(text, 90, note);
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(90);
  });

  it('cuts the note itself when nothing else fits', () => {
    expect(truncateUtf8('导'.repeat(50), 5, note).text).toBe('… (');
  });
});

describe('graphemeBoundary', () => {
  it('clamps to the text and returns the ends as they are', () => {
    expect(graphemeBoundary('abc', 0)).toBe(0);
    expect(graphemeBoundary('abc', -2)).toBe(0);
    expect(graphemeBoundary('abc', 3)).toBe(3);
    expect(graphemeBoundary('abc', 9)).toBe(3);
  });

  it('moves back to the start of the cluster the index falls in', () => {
    expect(graphemeBoundary('ae\u0301x', 2)).toBe(1);
    expect(graphemeBoundary('ab', 1)).toBe(1);
  });

  it('never returns the middle of a surrogate pair', () => {
    expect(codePointBoundary('a🧬b', 2)).toBe(1);
    expect(codePointBoundary('a🧬b', 1)).toBe(1);
    expect(codePointBoundary('a🧬b', 3)).toBe(3);
    expect(codePointBoundary('\udc00x', 0)).toBe(0);
    expect(graphemeBoundary('a🧬b', 2)).toBe(1);
    const longCluster = `${'\u0301'.repeat(40)}🧬🧬`; // no grapheme boundary in the 32 units before index 41
    expect(graphemeBoundary(longCluster, 41)).toBe(40);
  });

  it('keeps the index when the cluster is longer than the window looked at', () => {
    const zalgo = `a${'\u0301'.repeat(100)}`;
    expect(graphemeBoundary(zalgo, 60)).toBe(60);
    expect(graphemeBoundary(`${'\u0301'.repeat(10)}x`, 5)).toBe(5);
  });
});

describe('wordBoundary', () => {
  it('steps back to the space before a word the cut falls inside', () => {
    expect(wordBoundary('lipid bilayer', 9)).toBe(5);
    expect(truncateChars('lipid bilayer lipid bilayer', 26, () => '…').text).toBe('lipid bilayer lipid…');
  });

  it('keeps a cut that is already between words, at an end, or in a word longer than the look-back', () => {
    expect(wordBoundary('lipid bilayer', 5)).toBe(5);
    expect(wordBoundary('lipid bilayer', 6)).toBe(6);
    expect(wordBoundary('lipid', 0)).toBe(0);
    expect(wordBoundary('lipid', 5)).toBe(5);
    expect(wordBoundary(`a ${'x'.repeat(60)}`, 50)).toBe(50);
    expect(wordBoundary('细胞膜由磷脂双分子层构成', 5)).toBe(5);
  });
});
