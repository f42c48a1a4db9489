/**
 * The part of a markdown note a canvas file node's `subpath` points at, the way Obsidian resolves it:
 * `#Heading` (or nested `#Heading#Sub`) → from that heading to the next heading of the same or a higher level;
 * `#^blockid` → the paragraph, list item (with its sub-items) or block carrying `^blockid`.
 * Fenced code and front matter are never mistaken for headings or block ids. Embeds (`![[…]]`) are left as text.
 */
export function markdownSubpath(markdown: string, subpath: string): string | undefined {
  const target = subpath.replace(/^#/, '');
  if (!target) return markdown;
  const doc = scan(markdown);
  const range = target.startsWith('^') ? blockRange(doc, target.slice(1)) : headingRange(doc, target);
  if (!range) return undefined;
  return doc.lines
    .slice(range.start, range.end)
    .map((line, i) => (range.start + i === range.idLine ? stripBlockId(line) : line))
    .join('\n')
    .trimEnd();
}

interface Heading {
  line: number;
  level: number;
  text: string;
}

interface ScannedMarkdown {
  lines: string[];
  /** Lines inside fenced code or front matter (fence lines included): no headings, no block ids there. */
  literal: boolean[];
  headings: Heading[];
}

interface LineRange {
  start: number;
  /** Exclusive. */
  end: number;
  /** The line whose `^blockid` marker is dropped from the output. */
  idLine?: number;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const LIST_ITEM = /^(\s*)(?:[-*+]|\d{1,9}[.)])(?:\s|$)/;
const BLOCK_ID_CHARS = /^[A-Za-z0-9-]+$/;

function scan(markdown: string): ScannedMarkdown {
  const lines = markdown.split(/\r?\n/);
  const literal = lines.map(() => false);
  const headings: Heading[] = [];
  let i = 0;
  if (lines[0] === '---') {
    const close = lines.findIndex((l, j) => j > 0 && (l === '---' || l === '...'));
    if (close > 0) {
      for (; i <= close; i++) literal[i] = true;
    }
  }
  let fence: string | undefined;
  for (; i < lines.length; i++) {
    const line = lines[i];
    const opener = FENCE.exec(line)?.[1];
    if (fence !== undefined) {
      literal[i] = true;
      if (
        opener &&
        opener[0] === fence[0] &&
        opener.length >= fence.length &&
        !line.trim().slice(opener.length)
      )
        fence = undefined;
      continue;
    }
    if (opener) {
      fence = opener;
      literal[i] = true;
      continue;
    }
    const atx = ATX.exec(line);
    if (atx) {
      const text = (atx[2] ?? '').replace(/(?:^|[ \t]+)#+$/, '').trim();
      headings.push({ line: i, level: atx[1].length, text });
      continue;
    }
    const setext = SETEXT.exec(line);
    const previous = lines[i - 1];
    if (setext && i > 0 && isParagraphLine(previous) && !literal[i - 1] && !isHeadingLine(headings, i - 1)) {
      headings.push({ line: i - 1, level: setext[1][0] === '=' ? 1 : 2, text: previous.trim() });
    }
  }
  return { lines, literal, headings };
}

function isParagraphLine(line: string): boolean {
  return line.trim() !== '' && !LIST_ITEM.test(line) && !/^ {0,3}>/.test(line) && !/^( {4}|\t)/.test(line);
}

function isHeadingLine(headings: Heading[], line: number): boolean {
  return headings.length > 0 && headings[headings.length - 1].line === line;
}

/** How Obsidian writes a heading in a link: `#`, `|`, `^`, `:`, `%%`, `[[`, `]]` become spaces. */
function linkText(heading: string): string {
  return heading
    .replace(/%%|\[\[|\]\]|[#|^:]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** `A#B#C`: heading A, then B among A's sub-headings, then C among B's. Exact match first, then ignoring case. */
function headingRange(doc: ScannedMarkdown, target: string): LineRange | undefined {
  const path = target
    .split('#')
    .map(linkText)
    .filter((s) => s !== '');
  let range: LineRange = { start: 0, end: doc.lines.length };
  let within = doc.headings;
  for (const wanted of path) {
    const found =
      within.find((h) => linkText(h.text) === wanted) ??
      within.find((h) => linkText(h.text).toLowerCase() === wanted.toLowerCase());
    if (!found) return undefined;
    const next = doc.headings.find((h) => h.line > found.line && h.level <= found.level);
    range = { start: found.line, end: next ? next.line : range.end };
    within = doc.headings.filter((h) => h.line > range.start && h.line < range.end);
  }
  return path.length ? range : undefined;
}

function blockRange(doc: ScannedMarkdown, id: string): LineRange | undefined {
  if (!BLOCK_ID_CHARS.test(id)) return undefined;
  const exact = new RegExp(`(?:^|\\s)\\^${id}\\s*$`);
  const loose = new RegExp(exact.source, 'i');
  const find = (re: RegExp): number => doc.lines.findIndex((l, i) => !doc.literal[i] && re.test(l));
  let idLine = find(exact);
  if (idLine < 0) idLine = find(loose);
  if (idLine < 0) return undefined;
  const { lines, literal } = doc;
  const blank = (i: number): boolean => lines[i].trim() === '';

  if (stripBlockId(lines[idLine]).trim() === '') {
    // `^id` on a line of its own names the block just above it (a table, a quote, a code block…)
    let end = idLine - 1;
    while (end >= 0 && blank(end) && !literal[end]) end--;
    if (end < 0) return undefined;
    let start = end;
    const inCode = literal[end];
    while (start > 0 && (inCode ? literal[start - 1] : !blank(start - 1) && !literal[start - 1])) start--;
    return { start, end: end + 1 };
  }

  let marker = idLine;
  while (marker > 0 && !LIST_ITEM.test(lines[marker]) && !blank(marker - 1) && !literal[marker - 1]) marker--;
  const item = LIST_ITEM.exec(lines[marker]);
  if (item) {
    const indent = item[1].replace(/\t/g, '    ').length;
    let end = idLine + 1;
    while (end < lines.length && !blank(end) && leadingWidth(lines[end]) > indent) end++;
    return { start: marker, end, idLine };
  }

  if (doc.headings.some((h) => h.line === idLine)) return { start: idLine, end: idLine + 1, idLine };
  let start = idLine;
  while (
    start > 0 &&
    !blank(start - 1) &&
    !literal[start - 1] &&
    !doc.headings.some((h) => h.line === start - 1)
  )
    start--;
  return { start, end: idLine + 1, idLine };
}

function leadingWidth(line: string): number {
  return (/^\s*/.exec(line)?.[0] ?? '').replace(/\t/g, '    ').length;
}

function stripBlockId(line: string): string {
  return line.replace(/(^|\s)\^[A-Za-z0-9-]+\s*$/, '').trimEnd();
}
