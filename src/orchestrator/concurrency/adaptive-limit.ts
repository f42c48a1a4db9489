import type { ProviderFeedback } from '../../agent';

export interface AdaptiveLimitOptions {
  /** Off: the limit stays at `max`; 429s are only counted. Default on. */
  enabled?: boolean;
  /** Calls holding a slot right now (in flight or sleeping before a retry). */
  inFlight?: () => number;
  now?: () => number;
  /** Above the last 429's limit, +1 needs `probeRuns` × limit successes. Default 8. */
  probeRuns?: number;
}

/**
 * AIMD on the process-wide concurrency limit, fed by the agent runner.
 * - Multiplicative decrease: a 429 halves the limit (at least 1). A 429 does not halve it again while the
 *   previous decrease has not taken effect: from a request started before it, or while more calls than the limit
 *   still hold a slot (the excess draining, or sleeping before its retry).
 * - Additive increase: +1 after a run of successes, never above `max`. Below the limit that last drew a 429 the run
 *   is one success (back quickly to what the provider is known to take); at or above it — and before any 429 — the
 *   run is `probeRuns` × the limit (probe for more capacity slowly). Halving alone, with a run as long as the limit,
 *   leaves a quarter of a hard capacity unused on average; this keeps the provider near its capacity with a 429
 *   only every few round trips.
 * Disabled, it only counts.
 */
export class AdaptiveLimit implements ProviderFeedback {
  private current: number;
  private successes = 0;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  /** The limit at which the provider last answered 429. */
  private ceiling: number | undefined;
  /** 429s reported since start (every one, counted even when they do not lower the limit). */
  rateLimitedCount = 0;

  readonly enabled: boolean;
  private readonly inFlight: () => number;
  private readonly now: () => number;
  private readonly probeRuns: number;

  constructor(
    readonly max: number,
    private readonly onChange: (limit: number) => void,
    options: AdaptiveLimitOptions = {},
  ) {
    this.current = max;
    this.enabled = options.enabled ?? true;
    this.inFlight = options.inFlight ?? (() => 0);
    this.now = options.now ?? Date.now;
    this.probeRuns = options.probeRuns ?? 8;
  }

  /** The effective limit right now. */
  get limit(): number {
    return this.current;
  }

  rateLimited(startedAt: number): void {
    this.rateLimitedCount++;
    this.successes = 0;
    if (!this.enabled || startedAt < this.lastDecreaseAt || this.inFlight() > this.current) return;
    this.lastDecreaseAt = this.now();
    this.ceiling = this.current;
    this.set(Math.max(1, Math.floor(this.current / 2)));
  }

  succeeded(): void {
    if (!this.enabled || this.current >= this.max) return;
    const run =
      this.ceiling !== undefined && this.current + 1 < this.ceiling ? 1 : this.probeRuns * this.current;
    if (++this.successes >= run) {
      this.successes = 0;
      this.set(this.current + 1);
    }
  }

  private set(limit: number): void {
    if (limit === this.current) return;
    this.current = limit;
    this.onChange(limit);
  }
}
