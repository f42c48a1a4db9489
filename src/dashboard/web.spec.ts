import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { escapeHtml, indexPage, KATEX_DIR, loginPage, PUBLIC_DIR } from './web';

describe('dashboard helpers', () => {
  it('escapes HTML and renders the login form with an optional error', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(loginPage()).toContain('<p role="alert" class="error"></p>');
    expect(loginPage('<b>bad</b>')).toContain('<p role="alert" class="error">&lt;b&gt;bad&lt;/b&gt;</p>');
  });
});

describe('the dashboard page (indexPage)', () => {
  const html = readFileSync(path.join(PUBLIC_DIR, 'index.html'), 'utf8');

  it('keeps "Sign out" when the server has an API token, drops it when it has none', () => {
    expect(indexPage(html, true)).toBe(html);
    expect(html).toContain('action="/logout"');
    const open = indexPage(html, false);
    expect(open).not.toContain('/logout');
    expect(open).not.toContain('Sign out');
    expect(open).toContain('<nav aria-label="Main">');
  });

  it('links the KaTeX stylesheet served from the katex package', () => {
    expect(html).toContain('<link rel="stylesheet" href="/ui/vendor/katex/katex.min.css">');
    expect(existsSync(path.join(KATEX_DIR, 'katex.min.css'))).toBe(true);
    expect(existsSync(path.join(KATEX_DIR, 'fonts', 'KaTeX_Main-Regular.woff2'))).toBe(true);
  });
});
