import { katex, type MarkdownItKatexOptions } from '@mdit/plugin-katex';
import MarkdownIt from 'markdown-it';
import footnote from 'markdown-it-footnote';

/**
 * Result previews: vault markdown rendered to HTML on the server with markdown-it (CommonMark + GFM tables and
 * strikethrough, raw HTML off), KaTeX for `$…$` / `$$…$$`, markdown-it-footnote, and three small rules of ours for
 * what Obsidian adds: callouts (`> [!note] Title`, foldable with `-`/`+`), wikilinks (`[[note|alias]]`) and embeds
 * (`![[note]]`, shown as a placeholder: the preview never loads another file).
 *
 * The HTML is safe to insert into the dashboard: markdown-it escapes all source HTML and refuses `javascript:`,
 * `vbscript:`, `file:` and non-image `data:` links; KaTeX runs without `trust` (no `\href`, `\html…`). It also holds
 * no inline `style` attribute (the CSP refuses them): KaTeX's layout styles are carried in `data-style` and set by the
 * page through the CSSOM, table alignment becomes an `align-*` class.
 */
export function renderPreview(markdown: string): string {
  renderer ??= createRenderer();
  const env: FootnoteEnv = { docId: 'preview' };
  return renderer.render(withoutFrontMatter(markdown), env);
}

/** Footnote anchors become `#fn-preview-1`: no clash with the page's own ids. */
interface FootnoteEnv {
  docId: string;
}

let renderer: MarkdownIt | undefined;

/** Obsidian's callout aliases, by the type whose colour they take. */
const CALLOUT_ALIASES: Record<string, string> = {
  summary: 'abstract',
  tldr: 'abstract',
  hint: 'tip',
  check: 'success',
  done: 'success',
  help: 'question',
  faq: 'question',
  attention: 'warning',
  fail: 'failure',
  missing: 'failure',
  error: 'danger',
  cite: 'quote',
};
const CALLOUT_LINE = /^\[!([A-Za-z][\w-]*)\]([+-]?)[ \t]*([^\n]*)(?:\n|$)/;
const IMAGE_FILE = /\.(?:png|jpe?g|gif|svg|webp|bmp|avif)$/i;

// @mdit's types are those of markdown-it's ES module, this CommonJS file gets the CommonJS ones: one object at run time
const katexPlugin = katex as unknown as MarkdownIt.PluginWithOptions<MarkdownItKatexOptions>;

function createRenderer(): MarkdownIt {
  const md = new MarkdownIt('default', { html: false, linkify: true, breaks: true });
  md.use(katexPlugin, {
    delimiters: 'dollars',
    throwOnError: false,
    // bounds for hostile input: no huge boxes, no macro bombs
    maxSize: 50,
    maxExpand: 500,
    logger: () => 'ignore',
    transformer: (html: string) => html.replaceAll(' style="', ' data-style="'),
  });
  md.use(footnote);
  md.core.ruler.after('block', 'callouts', callouts);
  md.core.ruler.push('preview_markup', previewMarkup);
  md.inline.ruler.before('link', 'wikilink', wikilink);

  const esc = (text: string): string => md.utils.escapeHtml(text);
  md.renderer.rules.wikilink = (tokens, idx) => {
    const { target, alias } = tokens[idx].meta as WikilinkMeta;
    return `<span class="wikilink" title="${esc(`Link to ${target}`)}">${esc(alias ?? target)}</span>`;
  };
  md.renderer.rules.wikilink_embed = (tokens, idx) => {
    const { target } = tokens[idx].meta as WikilinkMeta;
    const kind = IMAGE_FILE.test(target) ? 'image' : 'note';
    return `<span class="embed">Embedded ${kind}: ${esc(target)}</span>`;
  };
  // only data: images can load under the CSP (img-src 'self' data:): others become a link or a placeholder
  const image = md.renderer.rules.image!;
  md.renderer.rules.image = (tokens, idx, options, env, self) => {
    const token = tokens[idx];
    const src = token.attrGet('src') ?? '';
    if (src.startsWith('data:image/')) return image(tokens, idx, options, env, self);
    const alt = self.renderInlineAsText(token.children ?? [], options, env) || src;
    return /^https?:\/\//i.test(src)
      ? `<a href="${esc(src)}" rel="noopener noreferrer" target="_blank" class="image-link">Image: ${esc(alt)}</a>`
      : `<span class="embed">Image: ${esc(alt)}</span>`;
  };
  return md;
}

interface WikilinkMeta {
  target: string;
  alias?: string;
}

/** `[[target|alias]]` and `![[target]]` on one line. */
function wikilink(state: MarkdownIt.StateInline, silent: boolean): boolean {
  const embed = state.src.charCodeAt(state.pos) === 0x21; // !
  const open = state.pos + (embed ? 1 : 0);
  if (!state.src.startsWith('[[', open)) return false;
  const close = state.src.indexOf(']]', open + 2);
  if (close < 0) return false;
  const inner = state.src.slice(open + 2, close);
  if (!/^[^[\]\n]+$/.test(inner)) return false;
  if (!silent) {
    const bar = inner.indexOf('|');
    const meta: WikilinkMeta =
      bar < 0
        ? { target: inner.trim() }
        : { target: inner.slice(0, bar).trim(), alias: inner.slice(bar + 1).trim() };
    state.push(embed ? 'wikilink_embed' : 'wikilink', '', 0).meta = meta;
  }
  state.pos = close + 2;
  return true;
}

/**
 * A blockquote whose first line is `[!type] optional title` becomes a callout: `<div class="callout callout-type">`
 * with its title, or `<details>`/`<summary>` when foldable (`-` folded, `+` open). Runs after block parsing and before
 * inline parsing, so the title and the rest of the paragraph are parsed as usual.
 */
function callouts(state: MarkdownIt.StateCore): void {
  const tokens = state.tokens;
  for (let i = 0; i < tokens.length; i++) {
    const open = tokens[i];
    const inline = tokens[i + 2];
    if (open.type !== 'blockquote_open' || tokens[i + 1]?.type !== 'paragraph_open') continue;
    const m = CALLOUT_LINE.exec(inline.content);
    if (!m) continue;
    const type = m[1].toLowerCase();
    const foldable = m[2] !== '';
    const close = tokens.findIndex(
      (t, j) => j > i && t.type === 'blockquote_close' && t.level === open.level,
    );
    const tag = foldable ? 'details' : 'div';
    open.tag = tag;
    tokens[close].tag = tag;
    open.attrSet('class', `callout callout-${CALLOUT_ALIASES[type] ?? type}`);
    open.attrSet('data-callout', type);
    if (m[2] === '+') open.attrSet('open', '');

    const titleTag = foldable ? 'summary' : 'p';
    const titleOpen = new state.Token('callout_title_open', titleTag, 1);
    titleOpen.attrSet('class', 'callout-title');
    const title = new state.Token('inline', '', 0);
    title.content = m[3].trim() || type.charAt(0).toUpperCase() + type.slice(1);
    title.children = [];
    const titleClose = new state.Token('callout_title_close', titleTag, -1);
    for (const t of [titleOpen, title, titleClose]) t.level = open.level + 1;
    titleOpen.block = titleClose.block = true;

    const rest = inline.content.slice(m[0].length);
    // a title alone on its line: its paragraph goes, the callout's other blocks stay
    const removed = rest.trim() === '' ? 3 : 0;
    if (!removed) inline.content = rest;
    tokens.splice(i + 1, removed, titleOpen, title, titleClose);
  }
}

/** Headings start at level 3 (previews sit under the page's own headings); table alignment as a class. */
function previewMarkup(state: MarkdownIt.StateCore): void {
  for (const token of state.tokens) {
    if (token.type === 'heading_open' || token.type === 'heading_close') {
      token.tag = `h${Math.min(6, Number(token.tag.slice(1)) + 2)}`;
    } else if (token.type === 'th_open' || token.type === 'td_open') {
      const align = /^text-align:(left|center|right)$/.exec(token.attrGet('style') ?? '');
      token.attrs = (token.attrs ?? []).filter(([name]) => name !== 'style');
      if (align) token.attrSet('class', `align-${align[1]}`);
      if (token.type === 'th_open') token.attrSet('scope', 'col');
    } else if (token.type === 'inline') {
      for (const child of token.children ?? []) {
        if (child.type === 'link_open') child.attrSet('rel', 'noopener noreferrer');
      }
    }
  }
}

/** YAML front matter is the note's metadata, not its content. */
function withoutFrontMatter(markdown: string): string {
  const text = markdown.replace(/\r\n?/g, '\n');
  return text.replace(/^---\n[\s\S]*?\n---[ \t]*(?:\n|$)/, '');
}
