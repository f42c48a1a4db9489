import { AdaptiveLimit } from './adaptive-limit';

describe('AdaptiveLimit (AIMD)', () => {
  const make = (max = 12, enabled = true) => {
    let t = 1000;
    let inFlight = 0;
    const changes: number[] = [];
    const limit = new AdaptiveLimit(max, (n) => changes.push(n), {
      enabled,
      now: () => t,
      inFlight: () => inFlight,
      probeRuns: 2,
    });
    return {
      limit,
      changes,
      tick: (ms = 1) => (t += ms),
      now: () => t,
      setInFlight: (n: number) => (inFlight = n),
    };
  };

  it('halves on a 429 (never below 1), not again for requests started before the decrease', () => {
    const { limit, changes, tick, now } = make(12);
    const startedEarly = now();
    tick();
    limit.rateLimited(now());
    expect(limit.limit).toBe(6);
    limit.rateLimited(startedEarly); // same overload, seen by a request already in flight
    expect(limit.limit).toBe(6);
    for (let i = 0; i < 4; i++) {
      tick();
      limit.rateLimited(now());
    }
    expect(changes).toEqual([6, 3, 1]);
    expect(limit.limit).toBe(1);
    expect(limit.rateLimitedCount).toBe(6);
  });

  it('not again while more calls than the limit still hold a slot (the decrease has not taken effect)', () => {
    const { limit, tick, now, setInFlight } = make(12);
    tick();
    limit.rateLimited(now()); // 6
    setInFlight(9);
    tick();
    limit.rateLimited(now());
    expect(limit.limit).toBe(6);
    setInFlight(6);
    limit.rateLimited(now());
    expect(limit.limit).toBe(3);
  });

  it('climbs back one per success below the limit that drew the 429, then probes slowly, up to the maximum', () => {
    const { limit, tick, now } = make(12);
    for (let i = 0; i < 4; i++) limit.succeeded(); // at the maximum: nothing to do
    expect(limit.limit).toBe(12);
    tick();
    limit.rateLimited(now()); // ceiling 12 → 6
    limit.succeeded();
    expect(limit.limit).toBe(7);
    for (let i = 0; i < 4; i++) limit.succeeded();
    expect(limit.limit).toBe(11); // ceiling − 1, quickly
    for (let i = 0; i < 21; i++) limit.succeeded();
    expect(limit.limit).toBe(11); // probing needs 2 × 11 successes
    limit.succeeded();
    expect(limit.limit).toBe(12);
  });

  it('before any 429, and after a 429 resets the run, the increase waits for a full run', () => {
    const { limit, tick, now } = make(4);
    tick();
    limit.rateLimited(now()); // ceiling 4 → 2
    limit.succeeded(); // 3 (= ceiling − 1)
    limit.succeeded();
    limit.succeeded();
    tick();
    limit.rateLimited(now()); // ceiling 3 → 1, run reset
    expect(limit.limit).toBe(1);
    limit.succeeded();
    expect(limit.limit).toBe(2);
  });

  it('disabled, it only counts', () => {
    const { limit, changes, now } = make(8, false);
    limit.rateLimited(now());
    limit.succeeded();
    expect(limit.limit).toBe(8);
    expect(changes).toEqual([]);
    expect(limit.rateLimitedCount).toBe(1);
    const defaults = new AdaptiveLimit(2, () => undefined);
    defaults.rateLimited(Date.now());
    expect(defaults.limit).toBe(1);
  });
});
