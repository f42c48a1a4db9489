import type { ProviderFeedback } from '../../agent/agent-runner';

/**
 * AIMD on the process-wide concurrency limit, fed by the agent runner: a 429 halves the limit (at least 1), a run
 * of successes as long as the current limit raises it by one, never above `max`. All the requests that were in
 * flight when the limit dropped see the same overload, so a 429 from a request started before the last decrease
 * does not halve again. Disabled, it only counts.
 */
export class AdaptiveLimit implements ProviderFeedback {
  private current: number;
  private successes = 0;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  /** 429s reported since start (every one, counted even when they do not lower the limit). */
  rateLimitedCount = 0;

  constructor(
    readonly max: number,
    private readonly onChange: (limit: number) => void,
    readonly enabled = true,
    private readonly now: () => number = Date.now,
  ) {
    this.current = max;
  }

  /** The effective limit right now. */
  get limit(): number {
    return this.current;
  }

  rateLimited(startedAt: number): void {
    this.rateLimitedCount++;
    this.successes = 0;
    if (!this.enabled || startedAt < this.lastDecreaseAt) return;
    this.lastDecreaseAt = this.now();
    this.set(Math.max(1, Math.floor(this.current / 2)));
  }

  succeeded(): void {
    if (!this.enabled || this.current >= this.max) return;
    if (++this.successes >= this.current) {
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
