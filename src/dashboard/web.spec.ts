import { escapeHtml, loginPage } from './web';

describe('dashboard helpers', () => {
  it('escapes HTML and renders the login form with an optional error', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(loginPage()).toContain('<p role="alert" class="error"></p>');
    expect(loginPage('<b>bad</b>')).toContain('<p role="alert" class="error">&lt;b&gt;bad&lt;/b&gt;</p>');
  });
});
