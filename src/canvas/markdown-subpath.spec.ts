import { markdownSubpath } from './markdown-subpath';

const md = (...lines: string[]): string => lines.join('\n');

describe('markdownSubpath', () => {
  describe('#Heading', () => {
    const NOTE = md(
      '# Title #',
      'intro',
      '## A',
      'a text',
      '### A.1',
      'a1 text',
      '## B',
      'b text',
      '# Next',
      'next text',
    );

    it('gives the whole note for an empty subpath', () => {
      expect(markdownSubpath(NOTE, '#')).toBe(NOTE);
      expect(markdownSubpath(NOTE, '')).toBe(NOTE);
    });

    it('ends a section at the next heading of the same or a higher level', () => {
      expect(markdownSubpath(NOTE, '#A')).toBe(md('## A', 'a text', '### A.1', 'a1 text'));
      expect(markdownSubpath(NOTE, '#B')).toBe(md('## B', 'b text'));
      expect(markdownSubpath(NOTE, '#Next')).toBe(md('# Next', 'next text'));
    });

    it('drops an ATX closing sequence from the heading text', () => {
      expect(markdownSubpath(NOTE, '#Title')).toMatch(/^# Title #\nintro\n## A/);
    });

    it('accepts a subpath without its leading #', () => {
      expect(markdownSubpath(NOTE, 'B')).toBe(md('## B', 'b text'));
    });

    it('looks for nested headings only inside the parent section', () => {
      expect(markdownSubpath(NOTE, '#Title#A#A.1')).toBe(md('### A.1', 'a1 text'));
      expect(markdownSubpath(NOTE, '#Next#A')).toBeUndefined();
      expect(markdownSubpath(NOTE, '#Missing')).toBeUndefined();
      expect(markdownSubpath(NOTE, '#::')).toBeUndefined();
    });

    it('handles CRLF notes', () => {
      expect(markdownSubpath(NOTE.replace(/\n/g, '\r\n'), '#B')).toBe(md('## B', 'b text'));
    });

    it('does not take fenced code (``` or ~~~, with longer closers) or front matter for headings', () => {
      const note = md(
        '---',
        '# meta',
        '---',
        '~~~~',
        '# in tilde code',
        '~~~',
        '~~~~~',
        '````js',
        '# in code',
        '````',
        '## Real',
        'x',
      );
      expect(markdownSubpath(note, '#meta')).toBeUndefined();
      expect(markdownSubpath(note, '#in tilde code')).toBeUndefined();
      expect(markdownSubpath(note, '#in code')).toBeUndefined();
      expect(markdownSubpath(note, '#Real')).toBe(md('## Real', 'x'));
    });

    it('takes a `---` after a blank line for a rule, not a setext heading', () => {
      const note = md('Para', '', '---', 'Sub', '---', 'under');
      expect(markdownSubpath(note, '#Para')).toBeUndefined();
      expect(markdownSubpath(note, '#Sub')).toBe(md('Sub', '---', 'under'));
    });

    it('treats an unterminated front matter as text', () => {
      expect(markdownSubpath(md('---', '# H', 'x'), '#H')).toBe(md('# H', 'x'));
    });
  });

  describe('#^blockid', () => {
    it('ignores block ids with characters Obsidian does not allow', () => {
      expect(markdownSubpath('x ^a.b', '#^a.b')).toBeUndefined();
      expect(markdownSubpath('x ^a', '#^')).toBeUndefined();
    });

    it('matches ids exactly first, then ignoring case', () => {
      expect(markdownSubpath(md('one ^ABC', '', 'two ^abc'), '#^abc')).toBe('two');
      expect(markdownSubpath('one ^ABC', '#^Abc')).toBe('one');
    });

    it('does not find ids in code', () => {
      expect(markdownSubpath(md('```', 'x ^id', '```'), '#^id')).toBeUndefined();
    });

    it('gives a whole fenced code block above a standalone id', () => {
      const note = md('text', '```', 'code', '', 'more', '```', '', '^code1');
      expect(markdownSubpath(note, '#^code1')).toBe(md('```', 'code', '', 'more', '```'));
    });

    it('gives nothing for a standalone id with no block above it', () => {
      expect(markdownSubpath(md('', '^lonely'), '#^lonely')).toBeUndefined();
    });

    it('gives a heading carrying the id', () => {
      expect(markdownSubpath(md('para', '## Head ^h1', 'body'), '#^h1')).toBe('## Head');
    });

    it('stops a paragraph at the heading above it', () => {
      expect(markdownSubpath(md('# H', 'line 1', 'line 2 ^p'), '#^p')).toBe(md('line 1', 'line 2'));
    });

    it('gives an ordered list item with its continuation and children, not its siblings', () => {
      const note = md('1. first', '2. second', '   continued ^li', '   - child', '3. third');
      expect(markdownSubpath(note, '#^li')).toBe(md('2. second', '   continued', '   - child'));
    });

    it('gives a nested list item with its own children only', () => {
      const note = md('- top', '\t- inner ^in', '\t\t- leaf', '\t- sibling');
      expect(markdownSubpath(note, '#^in')).toBe(md('\t- inner', '\t\t- leaf'));
    });

    it('gives a quote carrying the id', () => {
      expect(markdownSubpath(md('> quoted', '> more ^q'), '#^q')).toBe(md('> quoted', '> more'));
    });
  });
});
