import { createHash } from 'node:crypto';

/**
 * Result file names that are safe on Windows, macOS and Linux and still readable:
 * `<agent> - <concept slug> - <hash>.md`, e.g. `oral-explanation - Cell theory - 3f9a2c1d.md` or
 * `oral-explanation - 导数的定义 - 9b0e77aa.md`. The hash is of (task id, node id, agent), so distinct triples get
 * distinct names and a replay of the same triple gets the same name (and replaces its file).
 */

/** Upper bound of a result file name in UTF-8 bytes (file systems allow 255; we keep well clear of it). */
export const MAX_RESULT_NAME_BYTES = 120;
/** Hex characters of the (task, node, agent) hash at the end of every name. */
export const NAME_HASH_LENGTH = 12;
/** The longest agent part and concept slug, in UTF-8 bytes. */
const MAX_AGENT_BYTES = 40;
const MAX_SLUG_BYTES = 64;
const SEPARATOR = ' - ';
const EXTENSION = '.md';

export interface ResultNameParts {
  taskId: string;
  nodeId: string;
  agentType: string;
  /** What the node is about (its concept or first line); the node id stands in when it gives no readable slug. */
  concept?: string;
}

/** The result file name for (task, node, agent), with a readable slug of the node's concept. */
export function resultFileName(parts: ResultNameParts): string {
  const hash = nameHash(parts.taskId, parts.nodeId, parts.agentType);
  const agent = slugOf(parts.agentType, MAX_AGENT_BYTES);
  const fixed = byteLength(`${agent}${SEPARATOR}${SEPARATOR}${hash}${EXTENSION}`);
  const concept = slugOf(parts.concept ?? '', MAX_SLUG_BYTES) || slugOf(parts.nodeId, MAX_SLUG_BYTES);
  // one byte kept for the `_` a reserved device name gets
  const slug = truncateSlug(concept, MAX_RESULT_NAME_BYTES - fixed - 1);
  const name = [agent, slug, hash].filter(Boolean).join(SEPARATOR) + EXTENSION;
  return isReservedDeviceName(name) ? `_${name}` : name;
}

/**
 * Whether `name` is one {@link resultFileName} gives for this (task, node, agent), whatever the concept was: a
 * replay after the node's text changed can then keep the name the canvas already links to.
 */
export function isResultNameFor(name: string, parts: Omit<ResultNameParts, 'concept'>): boolean {
  const hashed = `${nameHash(parts.taskId, parts.nodeId, parts.agentType)}${EXTENSION}`;
  const agent = slugOf(parts.agentType, MAX_AGENT_BYTES);
  const unprefixed = name.startsWith('_') ? name.slice(1) : name;
  return (
    isPortableFileName(name) &&
    (unprefixed === hashed || unprefixed.endsWith(`${SEPARATOR}${hashed}`)) &&
    (agent === '' || unprefixed.startsWith(`${agent}${SEPARATOR}`))
  );
}

/** A short stable hash of (task id, node id, agent): the part of a name that keeps distinct triples apart. */
export function nameHash(taskId: string, nodeId: string, agentType: string): string {
  return (
    createHash('sha256')
      // JSON keeps lone surrogates apart (as \udXXX escapes); UTF-8 would turn them all into U+FFFD
      .update(JSON.stringify([taskId, nodeId, agentType]))
      .digest('hex')
      .slice(0, NAME_HASH_LENGTH)
  );
}

/** Characters Windows refuses in names, plus those that break Obsidian links (`#`, `^`, `[`, `]`). */
const RESERVED_CHARS = /[<>:"?*#^[\]]/g;
/** Path-like separators, kept readable as a hyphen (`A/B testing` → `A-B testing`). */
const SLASHES = /[/\\|]/g;
/**
 * Invisible or unencodable code points: controls, format characters (bidi overrides, zero-width spaces…), lone
 * surrogates, private use, unassigned, and line/paragraph separators. The zero-width (non-)joiners stay: emoji
 * sequences and several scripts need them.
 */
const INVISIBLE = /(?![\u200c\u200d])[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/gu;
const SPACES = /[\s\p{Zs}]+/gu;
/** Trimmed from both ends of a slug: spaces, dots, hyphens, underscores, joiners. */
const EDGE_JUNK = /^(?:[\s._-]|\u200c|\u200d)+|(?:[\s._-]|\u200c|\u200d)+$/gu;
/** A slug worth showing has at least one letter, digit or symbol. */
const VISIBLE = /[\p{L}\p{N}\p{S}]/u;

/**
 * A readable, file-name-safe rendering of free text, at most `maxBytes` UTF-8 bytes: NFC-normalized, reserved and
 * invisible characters dropped, whitespace collapsed, no leading or trailing dots, spaces or hyphens. Letters of
 * every script (Chinese included) are kept. May be empty.
 */
export function slugOf(text: string, maxBytes: number): string {
  const cleaned = text
    .normalize('NFC')
    .replace(RESERVED_CHARS, ' ')
    .replace(SLASHES, '-')
    .replace(INVISIBLE, '')
    .normalize('NFC') // again: a dropped character may leave combining marks next to each other, out of order
    .replace(SPACES, ' ')
    .replace(EDGE_JUNK, '');
  return VISIBLE.test(cleaned) ? truncateSlug(cleaned, maxBytes) : '';
}

/** Shortens a slug to `maxBytes` on a grapheme boundary, ending in `…` when it was cut; unchanged if it fits. */
function truncateSlug(slug: string, maxBytes: number): string {
  if (byteLength(slug) <= maxBytes) return slug;
  const ellipsis = '…';
  const kept = truncateUtf8(slug, maxBytes - byteLength(ellipsis)).replace(EDGE_JUNK, '');
  return kept ? `${kept}${ellipsis}` : '';
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * The longest prefix of `text` that fits in `maxBytes` UTF-8 bytes, cut between grapheme clusters (so never inside
 * a surrogate pair, a combining sequence or an emoji sequence).
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (byteLength(text) <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const { segment } of graphemes.segment(text)) {
    const size = byteLength(segment);
    if (bytes + size > maxBytes) break;
    out += segment;
    bytes += size;
  }
  return out;
}

export function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Device names Windows reserves, whatever the extension (`con.md`) or case; the superscript digits count too. */
const RESERVED_DEVICE = /^(con|prn|aux|nul|conin\$|conout\$|(com|lpt)[0-9¹²³])$/i;

/** Whether Windows treats `name` as a device: its part before the first dot, trailing spaces ignored, is reserved. */
export function isReservedDeviceName(name: string): boolean {
  return RESERVED_DEVICE.test(name.split('.')[0].replace(/ +$/, ''));
}

/**
 * Whether `name` is a file name every common file system accepts as it is: non-empty, no reserved or control
 * characters, no lone surrogates, not a reserved device name, no trailing dot or space, not `.` or `..`, and at
 * most `maxBytes` UTF-8 bytes.
 */
export function isPortableFileName(name: string, maxBytes = MAX_RESULT_NAME_BYTES): boolean {
  return (
    name.length > 0 &&
    name !== '.' &&
    name !== '..' &&
    !/[<>:"/\\|?*\p{Cc}\p{Cs}]/u.test(name) &&
    !isReservedDeviceName(name) &&
    !/[. ]$/.test(name) &&
    byteLength(name) <= maxBytes
  );
}
