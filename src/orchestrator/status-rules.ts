import type { PerformanceMetrics, TaskRecord, TaskStore, TerminalStatus } from '../session';
import type { GroupAggregate, TaskAggregate } from './run/run.types';

type GroupOutcomeSummary = Awaited<ReturnType<TaskStore['resultSummary']>>[number];

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

/**
 * A task's final status: `cancelled` when a cancel stopped it; `completed` when every node completed;
 * `partial_failure` when some did; `failed` when none did (including a deadline that passed with nothing done).
 */
export function finalStatus(run: {
  stopReason: 'cancel' | 'deadline' | 'shutdown' | undefined;
  task: { totalNodes: number };
  completed: number;
  skipped: number;
}): TerminalStatus {
  if (run.stopReason === 'cancel') return 'cancelled';
  return settledStatus({ total: run.task.totalNodes, completed: run.completed, skipped: run.skipped }, false);
}

/**
 * A task's outcome counts per group and in all, from the store's summary; a group with nodes left has the task's
 * status (`pending`/`running`), a settled one its own (`settledStatus`).
 */
export function aggregate(task: TaskRecord, summary: readonly GroupOutcomeSummary[]): TaskAggregate {
  const groups: GroupAggregate[] = task.groups.map((g) => ({
    groupId: g.groupId,
    agentType: g.agentType,
    status: task.status,
    total: g.nodeIds.length,
    completed: 0,
    failed: 0,
    skipped: 0,
  }));
  for (const s of summary) groups[s.groupIndex][s.outcome] += s.count;
  for (const g of groups) {
    if (g.completed + g.failed + g.skipped === g.total)
      g.status = settledStatus(g, task.status === 'cancelled');
  }
  const sum = (k: 'completed' | 'failed' | 'skipped'): number => groups.reduce((n, g) => n + g[k], 0);
  return {
    taskId: task.taskId,
    status: task.status,
    total: task.totalNodes,
    completed: sum('completed'),
    failed: sum('failed'),
    skipped: sum('skipped'),
    groups,
  };
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
