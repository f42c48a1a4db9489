import { formatTable } from './table';

describe('CLI tables', () => {
  it('pads columns, right-aligns the ones asked, flattens whitespace and trims line ends', () => {
    expect(formatTable(['A', 'B'], [['x\ny', 'long value']])).toBe('A    B\nx y  long value');
    expect(formatTable(['N', 'NAME'], [['7', 'a']], [true])).toBe('N  NAME\n7  a');
  });
});
