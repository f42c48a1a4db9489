import { corsOptions, escapeHtml, loginPage } from './web';

describe('dashboard helpers', () => {
  it('escapes HTML and renders the login form with an optional error', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(loginPage()).toContain('<p role="alert" class="error"></p>');
    expect(loginPage('<b>bad</b>')).toContain('<p role="alert" class="error">&lt;b&gt;bad&lt;/b&gt;</p>');
  });

  it('allows exactly the configured CORS origins', () => {
    const { origin } = corsOptions(['app://obsidian.md']);
    const ask = (o: string | undefined): boolean | undefined => {
      let allowed: boolean | undefined;
      origin(o, (_, a) => (allowed = a));
      return allowed;
    };
    expect([ask('app://obsidian.md'), ask('app://obsidian.md.evil'), ask(undefined)]).toEqual([
      true,
      false,
      false,
    ]);
  });
});
