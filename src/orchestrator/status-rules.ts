import type { TerminalStatus } from '../session/task.types';

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
