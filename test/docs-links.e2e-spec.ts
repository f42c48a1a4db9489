import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import MarkdownIt from 'markdown-it';

/**
 * The README and docs/*.md as a reader of a standalone clone follows them: every relative link and image points to a
 * file of this repository (and, with a `#fragment`, to a heading or `<a id>` of that page), nothing points outside
 * the repository, and every other link is to a public web site (http/https) or to the service itself on localhost.
 */

const REPO = path.resolve(__dirname, '..');
const md = new MarkdownIt({ html: true });

function pages(): string[] {
  const docs = path.join(REPO, 'docs');
  return [
    'README.md',
    ...readdirSync(docs)
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
}

/** GitHub's heading ids: lower case, punctuation dropped (`_` and `-` kept), spaces as `-`, repeats numbered. */
function anchorsOf(file: string): Set<string> {
  const tokens = md.parse(readFileSync(path.join(REPO, file), 'utf8'), {});
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (t.type === 'heading_open') {
      const text = (tokens[i + 1].children ?? [])
        .filter((c) => c.type === 'text' || c.type === 'code_inline')
        .map((c) => c.content)
        .join('');
      const base = text
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
        .replace(/ /g, '-');
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      ids.add(n ? `${base}-${n}` : base);
    }
    // explicit anchors, e.g. <a id="size-caps"></a>
    const html = t.type === 'inline' ? (t.children ?? []).map((c) => c.content).join('') : t.content;
    for (const m of html.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) ids.add(m[1]);
  });
  return ids;
}

/** Every link and image target of a page, outside code. */
function targetsOf(file: string): string[] {
  const out: string[] = [];
  const walk = (tokens: ReturnType<typeof md.parse>): void => {
    for (const t of tokens) {
      if (t.type === 'link_open') out.push(t.attrGet('href') ?? '');
      if (t.type === 'image') out.push(t.attrGet('src') ?? '');
      if (t.type === 'inline' || t.type === 'html_inline' || t.type === 'html_block') {
        for (const m of t.content.matchAll(/<(?:a|img)\s[^>]*(?:href|src)="([^"]+)"/g)) out.push(m[1]);
      }
      if (t.children) walk(t.children);
    }
  };
  walk(md.parse(readFileSync(path.join(REPO, file), 'utf8'), {}));
  return out;
}

/** What is wrong with one link of `file`, or undefined when it is fine. */
function problem(file: string, target: string): string | undefined {
  if (/^https?:\/\//i.test(target)) {
    const host = new URL(target).hostname;
    // the service a reader runs locally, or a public site
    if (host === '127.0.0.1' || host === 'localhost') return undefined;
    return host.includes('.') ? undefined : `"${target}" is not a public site`;
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return `"${target}": only http(s) links may leave the repository`;
  const [rel, fragment] = target.split('#', 2) as [string, string | undefined];
  const resolved = rel
    ? path.resolve(path.dirname(path.join(REPO, file)), decodeURI(rel))
    : path.join(REPO, file);
  const inRepo = path.relative(REPO, resolved);
  if (inRepo.startsWith('..') || path.isAbsolute(inRepo)) return `"${target}" leaves the repository`;
  if (!existsSync(resolved)) return `"${target}" does not exist`;
  if (fragment !== undefined) {
    if (statSync(resolved).isDirectory() || !resolved.endsWith('.md'))
      return `"${target}": a fragment of a non-page`;
    if (!anchorsOf(inRepo).has(fragment))
      return `"${target}": no heading or anchor "${fragment}" in ${inRepo}`;
  }
  return undefined;
}

describe('links of README.md and docs/*.md', () => {
  it.each(pages())('%s: every link resolves inside the repository or to a public site', (file) => {
    const targets = targetsOf(file);
    expect(targets.length).toBeGreaterThan(0);
    const problems = targets.map((t) => problem(file, t)).filter((p) => p !== undefined);
    expect(problems).toEqual([]);
  });

  it.each(pages())('%s: names no file of the wider project outside this repository', (file) => {
    expect(readFileSync(path.join(REPO, file), 'utf8')).not.toMatch(/\.\.\/shared\//);
  });

  it('the checker itself catches a dead page, a dead anchor and a link out of the repository', () => {
    expect(problem('README.md', 'docs/nowhere.md')).toMatch(/does not exist/);
    expect(problem('README.md', 'docs/events.md#no-such-heading')).toMatch(/no heading/);
    expect(problem('docs/api.md', '../../shared/design/API.md')).toMatch(/leaves the repository/);
    expect(problem('docs/api.md', 'file:///etc/passwd')).toMatch(/only http/);
    expect(problem('docs/events.md', '#progress_update')).toBeUndefined();
    expect(problem('docs/results.md', '#size-caps')).toBeUndefined();
  });
});
