import { effectiveCapacity } from './orchestrator.module';

describe('effectiveCapacity', () => {
  it('is GLOBAL_MAX_CONCURRENT, or the runner’s own capacity when that is smaller', () => {
    expect(effectiveCapacity(12, undefined)).toBe(12);
    expect(effectiveCapacity(12, 2)).toBe(2);
    expect(effectiveCapacity(3, 8)).toBe(3);
  });

  it('ignores a capacity that is not a positive integer', () => {
    expect(effectiveCapacity(12, 0)).toBe(12);
    expect(effectiveCapacity(12, 1.5)).toBe(12);
    expect(effectiveCapacity(12, Number.NaN)).toBe(12);
  });
});
