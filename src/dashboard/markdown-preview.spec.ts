import { renderPreview } from './markdown-preview';

describe('result previews (renderPreview)', () => {
  it('renders CommonMark and GFM: headings from level 3, emphasis, lists, code, tables with alignment, links', () => {
    const html = renderPreview(
      [
        '---',
        'tags: [x]',
        '---',
        '# Title',
        '',
        'Some **bold**, *italic*, ~~gone~~ and `code <b>`.',
        'next line',
        '',
        '- one',
        '- two',
        '',
        '```js',
        '<script>alert(1)</script>',
        '```',
        '',
        '| A | B | C | D |',
        '|:--|:-:|--:|---|',
        '| 1 | 2 | 3 | 4 |',
        '',
        '##### five',
        '###### six',
        '',
        '[site](https://example.org/?a=1&b=2) [rel](notes/x.md) https://auto.example',
      ].join('\r\n'),
    );
    expect(html).not.toContain('tags:');
    expect(html).toContain('<h3>Title</h3>');
    expect(html).toContain(
      '<p>Some <strong>bold</strong>, <em>italic</em>, <s>gone</s> and <code>code &lt;b&gt;</code>.<br>\nnext line</p>',
    );
    expect(html).toContain('<ul>\n<li>one</li>\n<li>two</li>\n</ul>');
    expect(html).toContain(
      '<pre><code class="language-js">&lt;script&gt;alert(1)&lt;/script&gt;\n</code></pre>',
    );
    expect(html).toContain(
      '<th class="align-left" scope="col">A</th>\n<th class="align-center" scope="col">B</th>\n' +
        '<th class="align-right" scope="col">C</th>\n<th scope="col">D</th>',
    );
    expect(html).toContain('<td class="align-left">1</td>\n<td class="align-center">2</td>');
    expect(html).toContain('<td>4</td>');
    expect(html).toContain('<h6>five</h6>\n<h6>six</h6>');
    expect(html).toContain('<a href="https://example.org/?a=1&amp;b=2" rel="noopener noreferrer">site</a>');
    expect(html).toContain('<a href="notes/x.md" rel="noopener noreferrer">rel</a>');
    expect(html).toContain(
      '<a href="https://auto.example" rel="noopener noreferrer">https://auto.example</a>',
    );
    expect(html).not.toMatch(/\sstyle=/);
  });

  it('renders $…$ and $$…$$ with KaTeX, its layout styles as data-style, errors shown in place', () => {
    const html = renderPreview(
      'Inline $x^2$ costs $5 and $6.\n\n$$\n\\frac{a}{b}\n$$\n\nBad $\\nosuchmacro$ and $\\frac{a$',
    );
    expect(html).toMatch(/<span class="katex"><span class="katex-mathml"><math/);
    expect(html).toContain('<annotation encoding="application/x-tex">x^2</annotation>');
    expect(html).toContain('costs $5 and $6.');
    expect(html).toMatch(/<p class='katex-block'><span class="katex-display">/);
    expect(html).toContain('class="mfrac"');
    expect(html).toContain('data-style="height:');
    // an unknown command in red, a parse error as its source in red with the message as title
    expect(html).toContain('<span class="mord" data-style="color:#cc0000;">\\nosuchmacro</span>');
    expect(html).toMatch(
      /<span class="katex-error" title="ParseError: [^"]+" data-style="color:#cc0000">\\frac\{a<\/span>/,
    );
    expect(html).not.toMatch(/\sstyle=/);
  });

  it('keeps KaTeX untrusting and bounded: no \\href, no \\htmlStyle, no macro bomb', () => {
    const html = renderPreview(
      '$\\href{javascript:alert(1)}{x}$ $\\htmlStyle{color:red}{y}$ $\\def\\a{\\a\\a}\\a$ $\\rule{1000em}{1000em}$',
    );
    expect(html).not.toContain('href="javascript');
    expect(html).not.toMatch(/style="color:red/);
    expect(html).toContain('data-style="color:#cc0000;">\\href</span>');
    expect(html).toContain('data-style="color:#cc0000;">\\htmlStyle</span>');
    expect(html).toMatch(/class="katex-error" title="ParseError: KaTeX parse error: Too many expansions/);
    // maxSize: the rule is clamped to 50em
    expect(html).toContain('border-right-width:50em');
  });

  it('renders Obsidian and GitHub callouts: titles, default titles, aliases, foldable, nested', () => {
    const html = renderPreview(
      [
        '> [!note] My *title*',
        '> body **b**',
        '',
        '> [!WARNING]',
        '> careful',
        '',
        '> [!summary]- Folded',
        '> - hidden item',
        '',
        '> [!tip]+',
        '> open',
        '',
        '> [!my-own]',
        '',
        '> plain quote',
        '> > [!info] Inner',
        '> > inner body',
        '',
        '> - a list first',
      ].join('\n'),
    );
    expect(html).toContain(
      '<div class="callout callout-note" data-callout="note">\n<p class="callout-title">My <em>title</em></p>\n<p>body <strong>b</strong></p>\n</div>',
    );
    expect(html).toContain(
      '<div class="callout callout-warning" data-callout="warning">\n<p class="callout-title">Warning</p>\n<p>careful</p>\n</div>',
    );
    expect(html).toContain(
      '<details class="callout callout-abstract" data-callout="summary">\n<summary class="callout-title">Folded</summary>\n<ul>\n<li>hidden item</li>\n</ul>\n</details>',
    );
    expect(html).toContain('<details class="callout callout-tip" data-callout="tip" open="">');
    expect(html).toContain(
      '<div class="callout callout-my-own" data-callout="my-own">\n<p class="callout-title">My-own</p>\n</div>',
    );
    expect(html).toContain(
      '<blockquote>\n<p>plain quote</p>\n<div class="callout callout-info" data-callout="info">',
    );
    expect(html).toContain('<blockquote>\n<ul>\n<li>a list first</li>');
  });

  it('renders footnotes with ids of their own', () => {
    const html = renderPreview('Claim[^1] and inline^[side note].\n\n[^1]: The source.');
    expect(html).toContain(
      '<sup class="footnote-ref"><a href="#fn-preview-1" id="fnref-preview-1">[1]</a></sup>',
    );
    expect(html).toContain('<li id="fn-preview-1" class="footnote-item"><p>The source.');
    expect(html).toContain('<a href="#fnref-preview-1" class="footnote-backref">');
    expect(html).toContain('<li id="fn-preview-2" class="footnote-item"><p>side note');
  });

  it('shows wikilinks as names and embeds as placeholders, never loading another file', () => {
    const html = renderPreview(
      '[[Note]] [[Folder/Other|shown]] ![[Embedded note]] ![[pic.PNG]] [[open only [[]] [[a\nb]] ![x [[y]] z](https://e.org/p.png)',
    );
    expect(html).toContain('<span class="wikilink" title="Link to Note">Note</span>');
    expect(html).toContain('<span class="wikilink" title="Link to Folder/Other">shown</span>');
    expect(html).toContain('<span class="embed">Embedded note: Embedded note</span>');
    expect(html).toContain('<span class="embed">Embedded image: pic.PNG</span>');
    expect(html).toContain('[[open only [[]] [[a<br>\nb]]');
    // inside an image's text (parsed in silent mode first): the alternative text keeps the plain words
    expect(html).toMatch(/href="https:\/\/e.org\/p.png"[^>]*>Image: x {1,2}z<\/a>/);
  });

  it('loads no image from elsewhere: a link for http(s), a placeholder for vault paths, data: images inline', () => {
    const png = 'data:image/png;base64,iVBORw0KGgo=';
    const html = renderPreview(
      `![remote](https://e.org/a.png) ![local](img/a.png) ![](img/b.png) ![dot](${png})`,
    );
    expect(html).toContain(
      '<a href="https://e.org/a.png" rel="noopener noreferrer" target="_blank" class="image-link">Image: remote</a>',
    );
    expect(html).toContain('<span class="embed">Image: local</span>');
    expect(html).toContain('<span class="embed">Image: img/b.png</span>');
    expect(html).toContain(`<img src="${png}" alt="dot">`);
  });

  it('never lets markup, handlers or script URLs through', () => {
    const html = renderPreview(
      [
        '<script>window.pwned = 1</script>',
        '',
        '<img src=x onerror="window.pwned = 2">',
        '',
        '[x](javascript:alert(1)) [y](data:text/html,hi) [z](vbscript:x) ![i](javascript:alert(1))',
        '',
        '# <i>h</i> "quoted" \'single\'',
        '',
        '[[<b>x</b>|<i>y</i>]]',
      ].join('\n'),
    );
    expect(html).not.toMatch(/<script|<img|<i>|<b>|href="(javascript|data|vbscript)/);
    expect(html).toContain('&lt;script&gt;window.pwned = 1&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=&quot;window.pwned = 2&quot;&gt;');
    expect(html).toContain("<h3>&lt;i&gt;h&lt;/i&gt; &quot;quoted&quot; 'single'</h3>");
    expect(html).toContain('title="Link to &lt;b&gt;x&lt;/b&gt;">&lt;i&gt;y&lt;/i&gt;</span>');
  });
});
