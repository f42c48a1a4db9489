import { graphemeBoundary } from '../common';

/** Language of a node's content, as far as the offline generator needs to know it. */
export type ContentLanguage = 'zh' | 'en';

const HAN = /[\u3400-\u9fff\uf900-\ufaff]/g;
const LETTER = /[\p{L}]/gu;

/** `zh` when at least a fifth of the letters are Han characters, else `en`. */
export function detectLanguage(text: string): ContentLanguage {
  const letters = text.match(LETTER)?.length ?? 0;
  const han = text.match(HAN)?.length ?? 0;
  return letters > 0 && han / letters >= 0.2 ? 'zh' : 'en';
}

/** Markdown reduced to plain text: no headings markers, emphasis, links, embeds, list bullets or code fences. */
export function plainText(markdown: string): string {
  return markdown
    .replace(/```[\s\S]*?```/g, ' ')
    .replace(/!\[\[([^\]]+)\]\]/g, '$1')
    .replace(/\[\[([^\]|]+)(\|([^\]]+))?\]\]/g, (_m, target: string, _p, label?: string) => label ?? target)
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/^\s{0,3}(#{1,6}|[-*+]|\d+[.)]|>)\s+/gm, '')
    .replace(/[*_`~]+/g, '')
    .replace(/\$+/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
}

/** The concept a node is about: its first heading or first line, at most 80 characters. */
export function conceptOf(content: string): string {
  const heading = /^\s{0,3}#{1,6}\s+(.+)$/m.exec(content)?.[1];
  const firstLine =
    plainText(heading ?? content)
      .split(/\n/)
      .find((l) => l.trim()) ?? '';
  // Latin `.!?:` end a clause only before whitespace (not in `Node.js`, `3.14` or a URL); CJK marks always do.
  const clause = firstLine.split(/(?<=[。！？：])\s*|(?<=[.!?:])\s+/)[0] ?? firstLine;
  const trimmed = clause.replace(/[.。:：]+$/, '').trim();
  // cut on a character (grapheme) boundary: never half an emoji's surrogate pair in a title or file name
  return trimmed.length > 80 ? `${trimmed.slice(0, graphemeBoundary(trimmed, 79))}…` : trimmed;
}

/** Sentences of the content (Latin and CJK punctuation), without empties. */
export function sentencesOf(content: string): string[] {
  return plainText(content)
    .split(/(?<=[。！？；])\s*|(?<=[.!?;])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 1);
}

const STOP_WORDS = new Set(
  'the a an and or of to in on for is are was were be by with as at from that this it its into than then which who whom what when where why how can could should would will not no but if so such these those there their they we you your our has have had do does did also more most other some any each all both between about after before over under'.split(
    ' ',
  ),
);

/** Up to `limit` key terms: the most frequent content words (Latin) or 2–4 character Han runs (Chinese). */
export function keyTerms(content: string, limit = 5): string[] {
  const text = plainText(content);
  const counts = new Map<string, number>();
  const words =
    detectLanguage(text) === 'zh'
      ? (text.match(/[\u3400-\u9fff]{2,4}/g) ?? [])
      : (text.match(/[\p{L}][\p{L}\p{N}'-]{2,}/gu) ?? []).filter((w) => !STOP_WORDS.has(w.toLowerCase()));
  for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([w]) => w);
}

/** A small stable hash (FNV-1a, 32 bits) for deterministic choices. */
export function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
