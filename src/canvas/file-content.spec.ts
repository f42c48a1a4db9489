import { embedReference, isBinaryPath, looksBinary, SNIFF_BYTES } from './file-content';

describe('isBinaryPath', () => {
  it.each(['a.png', 'b.JPG', 'dir/c.pdf', 'd.mp3', 'e.MOV', 'f.webm', 'g.svg', 'h.docx'])(
    '%s is binary',
    (file) => expect(isBinaryPath(file)).toBe(true),
  );

  it.each(['a.md', 'b.txt', 'c.canvas', 'd.py', 'no-extension', 'png', '.pdf.md'])('%s is not', (file) =>
    expect(isBinaryPath(file)).toBe(false),
  );
});

describe('looksBinary', () => {
  it('finds a NUL byte in the first 8 KiB only', () => {
    expect(looksBinary(Buffer.from('text\0'))).toBe(true);
    expect(looksBinary(Buffer.concat([Buffer.alloc(SNIFF_BYTES - 1, 'a'), Buffer.from([0])]))).toBe(true);
    expect(looksBinary(Buffer.concat([Buffer.alloc(SNIFF_BYTES, 'a'), Buffer.from([0])]))).toBe(false);
    expect(looksBinary(Buffer.from('plain text, 中文'))).toBe(false);
    expect(looksBinary(Buffer.alloc(0))).toBe(false);
  });

  it('recognizes a PDF by its signature', () => {
    expect(looksBinary(Buffer.from('%PDF-1.7\n'))).toBe(true);
    expect(looksBinary(Buffer.from('% PDF notes'))).toBe(false);
  });
});

describe('embedReference', () => {
  it('references the file, with its subpath when there is one', () => {
    expect(embedReference('img/a.png', undefined)).toBe('![[img/a.png]]');
    expect(embedReference('docs/b.pdf', '#page=2')).toBe('![[docs/b.pdf#page=2]]');
  });
});
