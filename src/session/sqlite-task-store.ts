import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import { SqliteDatabase } from '../database';
import { EventLog } from './event-log';
import { settled } from './live-feed';
import { IdempotencyKeyReusedError, TaskNotFoundError } from './task.errors';
import { insertTaskEvents } from './sqlite-event-log';
import { assertTransition } from './state-machine';
import {
  type AgentDurationRecord,
  type CancelRequest,
  type EventDraft,
  type GroupOutcomeSummary,
  type IdempotencyClaim,
  type NodeCounts,
  TaskStore,
} from './task-store';
import type {
  GroupSpec,
  NewTask,
  NodeErrorType,
  NodeOutcome,
  NodeResultRecord,
  NodeTruncation,
  NodeRouting,
  PerformanceMetrics,
  TaskEventRecord,
  TaskRecord,
  TaskStatus,
  TransitionPatch,
} from './task.types';
import { isTerminal, TASK_STATUSES } from './task.types';

/** A task's columns plus its last event id, read from the primary key of its events. */
const TASK_COLUMNS =
  'SELECT tasks.*, (SELECT coalesce(max(e.event_id), 0) FROM task_events e WHERE e.task_id = tasks.task_id) AS last_event_seq FROM tasks';

interface TaskRow {
  task_id: string;
  canvas_path: string;
  status: TaskStatus;
  max_concurrent: number;
  timeout_ms: number;
  groups_json: string;
  total_nodes: number;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  deadline_at: string | null;
  error_message: string | null;
  metrics_json: string | null;
  /** The task's last event id (computed from its events; the `last_event_id` column is no longer kept). */
  last_event_seq: number;
  idempotency_key: string | null;
  request_hash: string | null;
  resume_count: number;
  peak_concurrent: number;
  cancel_requested: 'graceful' | 'abort' | null;
  result_cache: number;
  budget_usd: number | null;
}

interface ResultRow {
  group_index: number;
  node_id: string;
  outcome: NodeOutcome;
  file_path: string | null;
  file_size: number | null;
  duration_ms: number | null;
  error_message: string | null;
  error_type: NodeErrorType | null;
  input_tokens: number;
  output_tokens: number;
  attempts: number | null;
  truncated_json: string | null;
  cached: number | null;
  routing_json: string | null;
  started_at: string | null;
  finished_at: string;
}

/**
 * `TaskStore` on the embedded SQLite database. Statements are prepared once. better-sqlite3 is synchronous: each
 * operation is one transaction, its result handed back as a settled promise (a throw becomes a rejection). Events
 * stored by an operation are published on the `EventLog` once their transaction committed.
 */
@Injectable()
export class SqliteTaskStore extends TaskStore {
  private readonly s: Record<string, Statement>;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly events: EventLog,
  ) {
    super();
    const h = db.handle;
    this.s = {
      insertTask: h.prepare(
        `INSERT INTO tasks (task_id, canvas_path, status, max_concurrent, timeout_ms, groups_json, total_nodes, created_at, idempotency_key, request_hash, result_cache, budget_usd)
         VALUES (@task_id, @canvas_path, 'pending', @max_concurrent, @timeout_ms, @groups_json, @total_nodes, @created_at, @idempotency_key, @request_hash, @result_cache, @budget_usd)`,
      ),
      byKey: h.prepare(`${TASK_COLUMNS} WHERE idempotency_key = ?`),
      byId: h.prepare(`${TASK_COLUMNS} WHERE task_id = ?`),
      statusById: h.prepare('SELECT status FROM tasks WHERE task_id = ?').pluck(),
      list: h.prepare(`${TASK_COLUMNS} ORDER BY created_at DESC, rowid DESC LIMIT ?`),
      listByStatus: h.prepare(
        `${TASK_COLUMNS} WHERE status = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      ),
      update: h.prepare(
        `UPDATE tasks SET status = @status,
           started_at = coalesce(@started_at, started_at), completed_at = coalesce(@completed_at, completed_at),
           deadline_at = coalesce(@deadline_at, deadline_at), expires_at = coalesce(@expires_at, expires_at),
           error_message = CASE WHEN @set_error THEN @error_message ELSE error_message END,
           metrics_json = coalesce(@metrics_json, metrics_json)
         WHERE task_id = @task_id`,
      ),
      upsertResult: h.prepare(
        `INSERT INTO node_results (task_id, group_index, node_id, outcome, file_path, file_size, duration_ms, error_message, error_type, input_tokens, output_tokens, attempts, truncated_json, cached, routing_json, started_at, finished_at)
         VALUES (@task_id, @group_index, @node_id, @outcome, @file_path, @file_size, @duration_ms, @error_message, @error_type, @input_tokens, @output_tokens, @attempts, @truncated_json, @cached, @routing_json, @started_at, @finished_at)
         ON CONFLICT (task_id, group_index, node_id) DO UPDATE SET outcome = excluded.outcome, file_path = excluded.file_path,
           file_size = excluded.file_size, duration_ms = excluded.duration_ms, error_message = excluded.error_message,
           error_type = excluded.error_type, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
           attempts = excluded.attempts, truncated_json = excluded.truncated_json, cached = excluded.cached, routing_json = excluded.routing_json,
           started_at = excluded.started_at, finished_at = excluded.finished_at`,
      ),
      results: h.prepare(
        'SELECT * FROM node_results WHERE task_id = ? ORDER BY group_index, finished_at, node_id',
      ),
      counts: h.prepare('SELECT outcome, count(*) AS n FROM node_results WHERE task_id = ? GROUP BY outcome'),
      summary: h.prepare(
        `SELECT group_index, outcome, count(*) AS n, total(input_tokens) AS input_tokens,
                total(output_tokens) AS output_tokens, total(duration_ms) AS duration_ms
         FROM node_results WHERE task_id = ? GROUP BY group_index, outcome`,
      ),
      page: h.prepare(
        `SELECT * FROM node_results WHERE task_id = ? AND group_index = ? AND outcome = ?
         ORDER BY finished_at, node_id LIMIT ? OFFSET ?`,
      ),
      unfinished: h.prepare(
        `${TASK_COLUMNS} WHERE status IN ('pending', 'running') ORDER BY created_at, rowid`,
      ),
      resumed: h.prepare('UPDATE tasks SET resume_count = resume_count + 1 WHERE task_id = ?'),
      peak: h.prepare('UPDATE tasks SET peak_concurrent = max(peak_concurrent, ?) WHERE task_id = ?'),
      cancelRequested: h.prepare(
        'UPDATE tasks SET cancel_requested = coalesce(cancel_requested, ?) WHERE task_id = ?',
      ),
      expired: h.prepare('SELECT task_id FROM tasks WHERE expires_at IS NOT NULL AND expires_at <= ?'),
      deleteTask: h.prepare('DELETE FROM tasks WHERE task_id = ?'),
      deleteLedger: h.prepare('DELETE FROM budget_ledger WHERE task_id = ?'),
      statusCounts: h.prepare('SELECT status, count(*) AS n FROM tasks GROUP BY status'),
      agentDurations: h.prepare(
        'SELECT agent_type, mean_ms, samples, mean_output_tokens, output_samples FROM agent_duration_estimates',
      ),
      saveAgentDuration: h.prepare(
        `INSERT INTO agent_duration_estimates (agent_type, mean_ms, samples, updated_at, mean_output_tokens, output_samples)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent_type) DO UPDATE SET mean_ms = excluded.mean_ms, samples = excluded.samples, updated_at = excluded.updated_at,
           mean_output_tokens = coalesce(excluded.mean_output_tokens, mean_output_tokens),
           output_samples = coalesce(excluded.output_samples, output_samples)`,
      ),
    };
  }

  agentDurations(): Promise<AgentDurationRecord[]> {
    return settled(() => {
      const rows = this.s.agentDurations.all() as {
        agent_type: string;
        mean_ms: number;
        samples: number;
        mean_output_tokens: number | null;
        output_samples: number | null;
      }[];
      return rows.map((r) => ({
        agentType: r.agent_type,
        meanMs: r.mean_ms,
        samples: r.samples,
        ...(r.mean_output_tokens !== null && {
          meanOutputTokens: r.mean_output_tokens,
          outputSamples: r.output_samples ?? 0,
        }),
      }));
    });
  }

  saveAgentDurations(durations: AgentDurationRecord[]): Promise<boolean> {
    return settled(() => {
      if (!this.db.handle.open) return false;
      const now = new Date().toISOString();
      this.db.transaction(() => {
        for (const d of durations)
          this.s.saveAgentDuration.run(
            d.agentType,
            d.meanMs,
            d.samples,
            now,
            d.meanOutputTokens ?? null,
            d.meanOutputTokens === undefined ? null : (d.outputSamples ?? 0),
          );
      });
      return true;
    });
  }

  createTask(task: NewTask, idempotency?: IdempotencyClaim): Promise<{ task: TaskRecord; created: boolean }> {
    return settled(() =>
      this.db.transaction(() => {
        if (idempotency) {
          const existing = this.s.byKey.get(idempotency.key) as TaskRow | undefined;
          if (existing) {
            if (existing.request_hash !== idempotency.requestHash) {
              throw new IdempotencyKeyReusedError(idempotency.key, existing.task_id);
            }
            return { task: toTask(existing), created: false };
          }
        }
        this.s.insertTask.run({
          task_id: task.taskId,
          canvas_path: task.canvasPath,
          max_concurrent: task.maxConcurrent,
          timeout_ms: task.timeoutMs,
          groups_json: JSON.stringify(task.groups),
          total_nodes: task.groups.reduce((n, g) => n + g.nodeIds.length, 0),
          created_at: task.createdAt,
          idempotency_key: idempotency?.key ?? null,
          request_hash: idempotency?.requestHash ?? null,
          result_cache: task.cache === false ? 0 : 1,
          budget_usd: task.budgetUsd ?? null,
        });
        return { task: this.get(task.taskId), created: true };
      }),
    );
  }

  findTask(taskId: string): Promise<TaskRecord | undefined> {
    return settled(() => this.find(taskId));
  }

  taskStatus(taskId: string): Promise<TaskStatus | undefined> {
    return settled(() => this.s.statusById.get(taskId) as TaskStatus | undefined);
  }

  statusCounts(): Promise<Record<TaskStatus, number>> {
    return settled(() => {
      const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
      for (const row of this.s.statusCounts.all() as { status: TaskStatus; n: number }[])
        counts[row.status] = row.n;
      return counts;
    });
  }

  listTasks({ status, limit }: { status?: TaskStatus; limit: number }): Promise<TaskRecord[]> {
    return settled(() => {
      const rows = (status ? this.s.listByStatus.all(status, limit) : this.s.list.all(limit)) as TaskRow[];
      return rows.map(toTask);
    });
  }

  transition(
    taskId: string,
    to: TaskStatus,
    patch: TransitionPatch = {},
    events: readonly EventDraft[] = [],
  ): Promise<{ task: TaskRecord; events: TaskEventRecord[] }> {
    return settled(() => {
      const done = this.db.transaction(() => {
        const current = this.get(taskId);
        assertTransition(taskId, current.status, to);
        this.s.update.run({
          task_id: taskId,
          status: to,
          started_at: patch.startedAt ?? null,
          completed_at: patch.completedAt ?? null,
          deadline_at: patch.deadlineAt ?? null,
          expires_at: patch.expiresAt ?? null,
          set_error: patch.errorMessage !== undefined ? 1 : 0,
          error_message: patch.errorMessage ?? null,
          metrics_json: patch.metrics ? JSON.stringify(patch.metrics) : null,
        });
        const stored = this.insertEvents(taskId, events);
        return { task: this.get(taskId), events: stored };
      });
      this.publish(done.events);
      return done;
    });
  }

  recordNodeResult(
    taskId: string,
    result: NodeResultRecord,
    events: readonly EventDraft[],
  ): Promise<TaskEventRecord[]> {
    return settled(() => this.recordResults(taskId, [result], events));
  }

  unfinishedTasks(): Promise<TaskRecord[]> {
    return settled(() => (this.s.unfinished.all() as TaskRow[]).map(toTask));
  }

  markResumed(taskId: string, event: EventDraft): Promise<TaskEventRecord> {
    return settled(() => {
      const stored = this.db.transaction(() => {
        this.s.resumed.run(taskId);
        return this.insertEvents(taskId, [event]);
      });
      this.publish(stored);
      return stored[0];
    });
  }

  recordPeak(taskId: string, peak: number): Promise<void> {
    return settled(() => {
      this.s.peak.run(peak, taskId);
    });
  }

  recordNodeResults(
    taskId: string,
    results: readonly NodeResultRecord[],
    events: readonly EventDraft[],
  ): Promise<TaskEventRecord[]> {
    return settled(() => this.recordResults(taskId, results, events));
  }

  requestCancel(taskId: string, mode: 'graceful' | 'abort'): Promise<CancelRequest> {
    return settled(() =>
      this.db.transaction((): CancelRequest => {
        const task = this.find(taskId);
        if (!task) return { outcome: 'not-found' };
        if (isTerminal(task.status)) return { outcome: 'finished', task };
        this.s.cancelRequested.run(mode, taskId);
        return { outcome: 'requested', task: { ...task, cancelRequested: task.cancelRequested ?? mode } };
      }),
    );
  }

  nodeResults(taskId: string): Promise<NodeResultRecord[]> {
    return settled(() => (this.s.results.all(taskId) as ResultRow[]).map(toResultRecord));
  }

  resultSummary(taskId: string): Promise<GroupOutcomeSummary[]> {
    return settled(() =>
      (
        this.s.summary.all(taskId) as {
          group_index: number;
          outcome: NodeOutcome;
          n: number;
          input_tokens: number;
          output_tokens: number;
          duration_ms: number;
        }[]
      ).map((r) => ({
        groupIndex: r.group_index,
        outcome: r.outcome,
        count: r.n,
        inputTokens: r.input_tokens,
        outputTokens: r.output_tokens,
        sumDurationMs: r.duration_ms,
      })),
    );
  }

  nodeResultsPage(
    taskId: string,
    groupIndex: number,
    outcome: NodeOutcome,
    offset: number,
    limit: number,
  ): Promise<NodeResultRecord[]> {
    return settled(() => {
      if (limit <= 0) return [];
      return (this.s.page.all(taskId, groupIndex, outcome, limit, offset) as ResultRow[]).map(toResultRecord);
    });
  }

  nodeCounts(taskId: string): Promise<NodeCounts> {
    return settled(() => {
      const counts: NodeCounts = { completed: 0, failed: 0, skipped: 0 };
      for (const r of this.s.counts.all(taskId) as { outcome: NodeOutcome; n: number }[])
        counts[r.outcome] = r.n;
      return counts;
    });
  }

  deleteExpired(now: Date): Promise<string[]> {
    return settled(() =>
      this.db.transaction(() => {
        const ids = (this.s.expired.all(now.toISOString()) as { task_id: string }[]).map((r) => r.task_id);
        for (const id of ids) {
          this.s.deleteTask.run(id);
          this.s.deleteLedger.run(id);
        }
        return ids;
      }),
    );
  }

  /** Stores the results and their events in one transaction, then publishes the events. */
  private recordResults(
    taskId: string,
    results: readonly NodeResultRecord[],
    events: readonly EventDraft[],
  ): TaskEventRecord[] {
    const stored = this.db.transaction(() => {
      results.forEach((r) => this.upsert(taskId, r));
      return this.insertEvents(taskId, events);
    });
    this.publish(stored);
    return stored;
  }

  private publish(stored: readonly TaskEventRecord[]): void {
    if (stored.length) this.events.publish(stored);
  }

  private find(taskId: string): TaskRecord | undefined {
    const row = this.s.byId.get(taskId) as TaskRow | undefined;
    return row && toTask(row);
  }

  private get(taskId: string): TaskRecord {
    const task = this.find(taskId);
    if (!task) throw new TaskNotFoundError(taskId);
    return task;
  }

  /** The event log's own write, inside the caller's transaction (published by the caller once it committed). */
  private insertEvents(taskId: string, drafts: readonly EventDraft[]): TaskEventRecord[] {
    return insertTaskEvents(this.db, taskId, drafts);
  }

  private upsert(taskId: string, r: NodeResultRecord): void {
    this.s.upsertResult.run({
      task_id: taskId,
      group_index: r.groupIndex,
      node_id: r.nodeId,
      outcome: r.outcome,
      file_path: r.filePath ?? null,
      file_size: r.fileSize ?? null,
      duration_ms: r.durationMs ?? null,
      error_message: r.errorMessage ?? null,
      error_type: r.errorType ?? null,
      input_tokens: r.inputTokens,
      output_tokens: r.outputTokens,
      attempts: r.attempts ?? null,
      truncated_json: r.truncated ? JSON.stringify(r.truncated) : null,
      cached: r.cached ? 1 : null,
      routing_json: r.routing ? JSON.stringify(r.routing) : null,
      started_at: r.startedAt ?? null,
      finished_at: r.finishedAt,
    });
  }
}

function toTask(row: TaskRow): TaskRecord {
  return {
    taskId: row.task_id,
    canvasPath: row.canvas_path,
    status: row.status,
    maxConcurrent: row.max_concurrent,
    timeoutMs: row.timeout_ms,
    groups: JSON.parse(row.groups_json) as GroupSpec[],
    totalNodes: row.total_nodes,
    createdAt: row.created_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    deadlineAt: row.deadline_at,
    errorMessage: row.error_message,
    metrics: row.metrics_json ? (JSON.parse(row.metrics_json) as PerformanceMetrics) : null,
    lastEventId: row.last_event_seq,
    idempotencyKey: row.idempotency_key,
    resumeCount: row.resume_count,
    peakConcurrent: row.peak_concurrent,
    cancelRequested: row.cancel_requested,
    ...(row.result_cache === 0 && { cache: false }),
    budgetUsd: row.budget_usd,
  };
}

function toResultRecord(r: ResultRow): NodeResultRecord {
  return {
    groupIndex: r.group_index,
    nodeId: r.node_id,
    outcome: r.outcome,
    ...(r.file_path !== null && { filePath: r.file_path }),
    ...(r.file_size !== null && { fileSize: r.file_size }),
    ...(r.duration_ms !== null && { durationMs: r.duration_ms }),
    ...(r.error_message !== null && { errorMessage: r.error_message }),
    ...(r.error_type !== null && { errorType: r.error_type }),
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    ...(r.attempts !== null && { attempts: r.attempts }),
    ...(r.truncated_json !== null && { truncated: JSON.parse(r.truncated_json) as NodeTruncation }),
    ...(r.cached === 1 && { cached: true }),
    ...(r.routing_json && { routing: JSON.parse(r.routing_json) as NodeRouting }),
    ...(r.started_at !== null && { startedAt: r.started_at }),
    finishedAt: r.finished_at,
  };
}
