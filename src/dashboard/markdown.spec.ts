import { escapeHtml, renderMarkdown } from './public/markdown.js';

describe('dashboard markdown renderer', () => {
  it('renders headings (from level 3), paragraphs, lists, quotes, code, tables and inline markup', () => {
    const html = renderMarkdown(
      [
        '---',
        'tags: [x]',
        '---',
        '# Title',
        '',
        'Some **bold**, *italic*, _also_ and `code <b>`.',
        'next line',
        '',
        '- one',
        '- [x] two',
        '',
        '1. first',
        '2) second',
        '',
        '> quoted',
        '> more',
        '',
        '```',
        '<script>alert(1)</script>',
        '```',
        '',
        '| A | B |',
        '|---|:-:|',
        '| 1 | [[Note]] |',
        '',
        '***',
        '[site](https://example.org/?a=1&b=2) [mail](mailto:a@b.c) [rel](notes/x.md) [[Wiki]] ![[Img.png|alias]]',
      ].join('\r\n'),
    );
    expect(html).not.toContain('tags:');
    expect(html).toContain('<h3>Title</h3>');
    expect(html).toContain(
      '<p>Some <strong>bold</strong>, <em>italic</em>, <em>also</em> and <code>code &lt;b&gt;</code>.<br>next line</p>',
    );
    expect(html).toContain('<ul><li>one</li><li>two</li></ul>');
    expect(html).toContain('<ol><li>first</li><li>second</li></ol>');
    expect(html).toContain('<blockquote>quoted<br>more</blockquote>');
    expect(html).toContain('<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></pre>');
    expect(html).toContain(
      '<table><thead><tr><th scope="col">A</th><th scope="col">B</th></tr></thead><tbody><tr><td>1</td><td><span class="wikilink">Note</span></td></tr></tbody></table>',
    );
    expect(html).toContain('<hr>');
    expect(html).toContain('<a href="https://example.org/?a=1&amp;b=2" rel="noopener noreferrer">site</a>');
    expect(html).toContain('<a href="mailto:a@b.c" rel="noopener noreferrer">mail</a>');
    expect(html).toContain('<a href="notes/x.md" rel="noopener noreferrer">rel</a>');
    expect(html).toContain('<span class="wikilink">Wiki</span> <span class="wikilink">alias</span>');
  });

  it('never lets markup or script URLs through', () => {
    const html = renderMarkdown(
      '<img src=x onerror=alert(1)> [x](javascript:alert(1)) [y](data:text/html,hi) "quoted" \'single\'\n\n# <i>h</i>',
    );
    expect(html).not.toMatch(/<img|<i>|href="javascript|href="data/);
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&quot;quoted&quot; &#39;single&#39;');
    expect(html).toContain('<h3>&lt;i&gt;h&lt;/i&gt;</h3>');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
