import type { ReceivedEvent } from './harness';

type Json = Record<string, any>;

/**
 * What a batch did, without timing: its final status figures and its event sequence with progress ticks, ids,
 * timestamps and durations left out (sorted, as concurrent nodes finish in any order). Two runs of the same request
 * over the same canvas must give the same shape whatever learning memory does.
 */
export function batchShape(status: Json, events: ReceivedEvent[]): Json {
  return {
    status: status.status,
    total_nodes: status.total_nodes,
    completed_nodes: status.completed_nodes,
    failed_nodes: status.failed_nodes,
    skipped_nodes: status.skipped_nodes,
    progress_percent: status.progress_percent,
    groups: (status.groups as Json[]).map((g) => ({
      group_id: g.group_id,
      agent_type: g.agent_type,
      status: g.status,
      results: (g.results as Json[]).map((r) => r.node_id as string).sort(),
      errors: (g.errors as Json[]).map((e) => e.node_id as string).sort(),
    })),
    events: events
      .filter((e) => e.event !== 'progress_update')
      .map((e) => {
        const d = e.data.data as Record<string, string | number>;
        if (e.event === 'task_completed' || e.event === 'task_failed')
          return `${e.event}:${d.group_id}:${d.node_id}`;
        if (e.event === 'group_completed') return `${e.event}:${d.group_id}:${d.status}:${d.completed_nodes}`;
        if (e.event === 'session_completed')
          return `${e.event}:${d.status}:${d.success_count}:${d.failure_count}`;
        return e.event;
      })
      .sort(),
  };
}
