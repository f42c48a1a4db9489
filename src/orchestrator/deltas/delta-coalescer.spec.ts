import { DELTA_INTERVAL_MS, DeltaCoalescer } from './delta-coalescer';

describe('DeltaCoalescer', () => {
  let sent: Array<[string, number]>;
  let wanted: boolean;
  let coalescer: DeltaCoalescer;
  beforeEach(() => {
    jest.useFakeTimers();
    sent = [];
    wanted = true;
    coalescer = new DeltaCoalescer(
      (text, offset) => sent.push([text, offset]),
      () => wanted,
    );
  });
  afterEach(() => jest.useRealTimers());

  it('sends the first chunk at once, then what arrives within the interval together, with its offset', () => {
    coalescer.push('Hel');
    expect(sent).toEqual([['Hel', 0]]);
    coalescer.push('lo');
    coalescer.push(', ');
    expect(sent).toHaveLength(1);
    jest.advanceTimersByTime(DELTA_INTERVAL_MS - 1);
    expect(sent).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(sent).toEqual([
      ['Hel', 0],
      ['lo, ', 3],
    ]);
    coalescer.push('world');
    jest.advanceTimersByTime(DELTA_INTERVAL_MS);
    coalescer.push('!');
    coalescer.close();
    expect(sent.map(([t]) => t).join('')).toBe('Hello, world!');
    expect(sent.at(-1)).toEqual(['!', 12]);
    coalescer.push('late');
    jest.advanceTimersByTime(DELTA_INTERVAL_MS * 4);
    expect(sent.at(-1)).toEqual(['!', 12]);
  });

  it('sends at most one delta per interval however many chunks arrive (a token stream)', () => {
    for (let ms = 0; ms < 1_000; ms++) {
      coalescer.push('x');
      jest.advanceTimersByTime(1);
    }
    coalescer.close();
    expect(sent.length).toBeLessThanOrEqual(1_000 / DELTA_INTERVAL_MS + 1);
    expect(sent.map(([t]) => t).join('')).toBe('x'.repeat(1_000));
    // each delta starts where the one before ended
    sent.forEach(([, offset], i) => i > 0 && expect(offset).toBe(sent[i - 1][1] + sent[i - 1][0].length));
  });

  it('a restart drops what is pending and starts again at offset 0', () => {
    coalescer.push('first try');
    coalescer.push(' goes on');
    coalescer.push('Second', true);
    jest.advanceTimersByTime(DELTA_INTERVAL_MS);
    expect(sent).toEqual([
      ['first try', 0],
      ['Second', 0],
    ]);
    coalescer.push('', true);
    coalescer.push('Third');
    jest.advanceTimersByTime(DELTA_INTERVAL_MS);
    expect(sent.at(-1)).toEqual(['Third', 0]);
  });

  it('keeps no text while nobody wants it, and counts it in the offsets', () => {
    wanted = false;
    coalescer.push('unseen ');
    jest.advanceTimersByTime(DELTA_INTERVAL_MS);
    expect(sent).toEqual([]);
    wanted = true;
    coalescer.push('seen');
    expect(sent).toEqual([['seen', 7]]);
    coalescer.close();
    coalescer.close();
    expect(sent).toHaveLength(1);
  });
});
