import type { PerformanceMetrics, TerminalStatus } from '../session';

/**
 * Status of a finished group (or, with the task's counts, of a finished task): `cancelled` when a cancel left
 * nodes unstarted, `completed` when every node completed, `partial_failure` when some did, else `failed`.
 */
export function settledStatus(
  c: { total: number; completed: number; skipped: number },
  cancelled: boolean,
): TerminalStatus {
  if (cancelled && c.skipped > 0) return 'cancelled';
  if (c.completed === c.total) return 'completed';
  return c.completed > 0 ? 'partial_failure' : 'failed';
}

/** `progress_percent` of a task that is not terminal yet: 100 is kept for the end. */
export function runningProgressPercent(settled: number, total: number): number {
  return Math.min(99, Math.floor((settled / total) * 100));
}

/**
 * The measured metrics (API.md): wall time, mean duration of the nodes that ran, and
 * `parallel_efficiency` = Σ node durations / (wall time × min(max_concurrent, total_nodes)).
 */
export function measureMetrics(m: {
  wallMs: number;
  sumDurationMs: number;
  ran: number;
  maxConcurrent: number;
  totalNodes: number;
  peak: number;
}): PerformanceMetrics {
  const slots = Math.min(m.maxConcurrent, m.totalNodes);
  return {
    total_duration_seconds: round(m.wallMs / 1000, 3),
    average_duration_per_node: m.ran ? round(m.sumDurationMs / m.ran / 1000, 3) : 0,
    parallel_efficiency: m.wallMs > 0 && slots > 0 ? round(m.sumDurationMs / (m.wallMs * slots), 4) : 0,
    peak_concurrent: m.peak,
  };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
