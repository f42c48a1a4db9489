/**
 * Cutting text to a size without breaking it: on a character boundary (never inside a surrogate pair), moved back
 * to a grapheme boundary when one is near (an emoji with its modifiers, a letter with its combining marks stay
 * whole), with a visible note saying how much was left out. "Characters" are Unicode code points.
 */

/** What a cut left: the text (with its note) and the characters left out (0 when nothing was cut). */
export interface Truncated {
  text: string;
  omitted: number;
}

/** The note that ends a cut text, given the characters it leaves out. Its length must grow with the number. */
export type TruncationNote = (omitted: number) => string;

/** `1,234,567`: how the notes spell counts. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** The usual note: `… (truncated: N characters more)`, with `extra` after `more` (e.g. `, see the result file`). */
export function truncatedNote(extra = ''): TruncationNote {
  return (omitted) => `… (truncated: ${formatCount(omitted)} characters more${extra})`;
}

/** Code points of `text` from `from` on (a surrogate pair counts once, a lone surrogate once). */
export function charCount(text: string, from = 0): number {
  let n = 0;
  for (let i = from; i < text.length; i++) {
    n++;
    if (isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1))) i++;
  }
  return n;
}

/** UTF-8 bytes of one code point starting at `i`, and its length in UTF-16 units. */
function utf8At(text: string, i: number): { bytes: number; units: number } {
  const c = text.charCodeAt(i);
  if (c < 0x80) return { bytes: 1, units: 1 };
  if (c < 0x800) return { bytes: 2, units: 1 };
  if (isHigh(c) && isLow(text.charCodeAt(i + 1))) return { bytes: 4, units: 2 };
  return { bytes: 3, units: 1 }; // the rest of the BMP; a lone surrogate is written as U+FFFD, 3 bytes too
}

/**
 * `text` when it has at most `maxChars` characters; otherwise its start and `note(omitted)`, together at most
 * `maxChars` characters. `extraOmitted` is added to the count in the note (e.g. a part dropped beside this one).
 */
export function truncateChars(
  text: string,
  maxChars: number,
  note: TruncationNote,
  extraOmitted = 0,
): Truncated {
  const total = charCount(text);
  if (total <= maxChars && extraOmitted === 0) return { text, omitted: 0 };
  return cutWith(
    text,
    total,
    extraOmitted,
    note,
    (n) => charCount(n),
    maxChars,
    (budget) => {
      let i = 0;
      let chars = 0;
      while (i < text.length && chars < budget) {
        i += utf8At(text, i).units;
        chars++;
      }
      return i;
    },
  );
}

/**
 * `text` when its UTF-8 form has at most `maxBytes` bytes; otherwise its start and `note(omitted)` (omitted in
 * characters), together at most `maxBytes` bytes of UTF-8.
 */
export function truncateUtf8(text: string, maxBytes: number, note: TruncationNote): Truncated {
  if (Buffer.byteLength(text) <= maxBytes) return { text, omitted: 0 };
  return cutWith(
    text,
    charCount(text),
    0,
    note,
    (n) => Buffer.byteLength(n),
    maxBytes,
    (budget) => {
      let i = 0;
      let bytes = 0;
      while (i < text.length) {
        const c = utf8At(text, i);
        if (bytes + c.bytes > budget) break;
        bytes += c.bytes;
        i += c.units;
      }
      return i;
    },
  );
}

/**
 * The shared part of both cuts: room is left for the longest note this cut can need (the one counting every
 * character); the text is cut at `cutAt(room)`, moved back to a grapheme boundary (and to the end of a word when a
 * space is near), stripped of trailing whitespace, and the note for what is really left out is appended. A note
 * longer than the whole limit is cut itself.
 */
function cutWith(
  text: string,
  total: number,
  extraOmitted: number,
  note: TruncationNote,
  size: (s: string) => number,
  max: number,
  cutAt: (budget: number) => number,
): Truncated {
  const room = max - size(note(total + extraOmitted));
  if (room <= 0) return { text: fit(note(total + extraOmitted), max, size), omitted: total + extraOmitted };
  const kept = text.slice(0, wordBoundary(text, graphemeBoundary(text, cutAt(room)))).trimEnd();
  const omitted = total - charCount(kept) + extraOmitted;
  return { text: kept + note(omitted), omitted };
}

/** A note that does not fit its limit at all: as much of it as fits, on a code point boundary. */
function fit(note: string, max: number, size: (s: string) => number): string {
  let end = note.length;
  while (end > 0 && size(note.slice(0, end)) > max) end -= isLow(note.charCodeAt(end - 1)) ? 2 : 1;
  return note.slice(0, Math.max(0, end));
}

/** Words a cut may step back over to end on a space instead of inside a word (scripts without spaces: not at all). */
const WORD_LOOKBACK = 40;

/** `end`, or the space just before the word `end` falls inside when one is that close. */
export function wordBoundary(text: string, end: number): number {
  if (end <= 0 || end >= text.length || /\s/.test(text[end]) || /\s/.test(text[end - 1])) return end;
  for (let i = end - 1; i > 0 && i >= end - WORD_LOOKBACK; i--) if (/\s/.test(text[i])) return i;
  return end;
}

/** `i`, or `i - 1` when `i` falls between the two halves of a surrogate pair. */
export function codePointBoundary(text: string, i: number): number {
  return i > 0 && isLow(text.charCodeAt(i)) && isHigh(text.charCodeAt(i - 1)) ? i - 1 : i;
}

let segmenter: Intl.Segmenter | undefined;

/**
 * The grapheme boundary at or before `index`, looked for in the 32 code units before it; when there is none that
 * close (a cluster longer than that), the code point boundary at or before `index`.
 */
export function graphemeBoundary(text: string, index: number): number {
  if (index <= 0 || index >= text.length) return Math.max(0, Math.min(index, text.length));
  const i = codePointBoundary(text, index);
  const start = Math.max(0, i - 32);
  const window = text.slice(start, Math.min(text.length, i + 32));
  segmenter ??= new Intl.Segmenter('en', { granularity: 'grapheme' });
  let best = -1;
  for (const segment of segmenter.segment(window)) {
    if (segment.index > i - start) break;
    best = segment.index;
  }
  return best > 0 ? start + best : i;
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
