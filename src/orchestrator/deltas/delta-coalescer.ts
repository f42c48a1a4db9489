/**
 * Longest a running node's text waits before it goes out as a `task_output_delta` (so at most 1000 / this deltas per
 * second per node): readers see text grow a few times a second, and a batch of many streaming nodes does not flood
 * its subscribers (nor Redis, in the distributed engine) with one message per token.
 */
export const DELTA_INTERVAL_MS = 250;

/**
 * One running node's partial text, coalesced: the first chunk goes out at once, later ones wait until
 * `intervalMs` after the last emission and go out together (concatenated), with their `offset` (characters of the
 * node's output before them). A restart (a retried provider call) drops what is pending and starts again at offset 0.
 * While `wanted()` says nobody could receive it, the text is not kept (the offset still counts it). `close()` sends
 * what is pending and ignores anything later (a runner that did not stop at its abort).
 */
export class DeltaCoalescer {
  private pending = '';
  /** Offset of `pending`'s first character; `total`: characters of the output so far. */
  private start = 0;
  private total = 0;
  private lastAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly emit: (text: string, offset: number) => void,
    private readonly wanted: () => boolean = () => true,
    private readonly intervalMs = DELTA_INTERVAL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  push(chunk: string, restart = false): void {
    if (this.closed) return;
    if (restart) {
      this.pending = '';
      this.start = 0;
      this.total = 0;
    }
    if (!chunk) return;
    this.total += chunk.length;
    if (!this.wanted()) {
      this.pending = '';
      this.start = this.total;
      return;
    }
    this.pending += chunk;
    if (this.timer) return;
    const wait = this.lastAt + this.intervalMs - this.now();
    if (wait <= 0) return this.flush();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
    this.timer.unref();
  }

  /** Sends what is pending now (the node's agent phase ended) and takes nothing more. */
  close(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
    this.closed = true;
  }

  private flush(): void {
    if (!this.pending) return;
    const text = this.pending;
    const offset = this.start;
    this.pending = '';
    this.start = this.total;
    this.lastAt = this.now();
    this.emit(text, offset);
  }
}
