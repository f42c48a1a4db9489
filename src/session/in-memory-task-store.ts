import { EventLog } from './event-log';
import { settled } from './live-feed';
import { IdempotencyKeyReusedError, TaskNotFoundError } from './task.errors';
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
import { assertTaskEventTypes } from './task-events';
import type {
  NewTask,
  NodeOutcome,
  NodeResultRecord,
  TaskEventRecord,
  TaskRecord,
  TaskStatus,
  TransitionPatch,
} from './task.types';
import { isTerminal, TASK_STATUSES } from './task.types';

/** One stored task: its record (`lastEventId` is read from the event log), with what only the store sees. */
interface Entry {
  task: Omit<TaskRecord, 'lastEventId'>;
  /** Insertion order (ties of `createdAt` list the later one first, as the SQLite adapter's rowid). */
  seq: number;
  requestHash: string | null;
  expiresAt: string | null;
  /** Per `groupIndex\0nodeId`: a replayed node replaces its earlier outcome. */
  results: Map<string, NodeResultRecord>;
  /** The highest event id seen so far; the log may hold later ones (appended to it directly). */
  lastEventId: number;
}

/**
 * `TaskStore` in memory, for unit tests: no disk, no Nest needed (`new InMemoryTaskStore(new InMemoryEventLog())`).
 * Same semantics as the SQLite adapter (`task-store.contract.ts` runs against both). Writes run one at a time; an
 * operation that appends events stores its outcome, then appends the events to the `EventLog` (which stores and
 * publishes them) and undoes the outcome if the log refuses them. Records are copied in and out: nothing is shared
 * with callers, as with a store across a network.
 */
export class InMemoryTaskStore extends TaskStore {
  private readonly tasks = new Map<string, Entry>();
  /** Idempotency key → task id. */
  private readonly keys = new Map<string, string>();
  private readonly durations = new Map<string, AgentDurationRecord>();
  private seq = 0;
  /** The write in progress: writes are chained, each atomic with respect to the others. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly events: EventLog) {
    super();
  }

  createTask(task: NewTask, idempotency?: IdempotencyClaim): Promise<{ task: TaskRecord; created: boolean }> {
    return this.write(async () => {
      if (idempotency) {
        const earlierId = this.keys.get(idempotency.key);
        const earlier = earlierId === undefined ? undefined : this.tasks.get(earlierId);
        if (earlier) {
          if (earlier.requestHash !== idempotency.requestHash) {
            throw new IdempotencyKeyReusedError(idempotency.key, earlier.task.taskId);
          }
          return { task: await this.record(earlier), created: false };
        }
      }
      if (this.tasks.has(task.taskId)) throw new Error(`A task with id ${task.taskId} exists already`);
      const entry: Entry = {
        task: {
          taskId: task.taskId,
          canvasPath: task.canvasPath,
          status: 'pending',
          maxConcurrent: task.maxConcurrent,
          timeoutMs: task.timeoutMs,
          groups: structuredClone(task.groups),
          totalNodes: task.groups.reduce((n, g) => n + g.nodeIds.length, 0),
          createdAt: task.createdAt,
          startedAt: null,
          completedAt: null,
          deadlineAt: null,
          errorMessage: null,
          metrics: null,
          idempotencyKey: idempotency?.key ?? null,
          resumeCount: 0,
          peakConcurrent: 0,
          cancelRequested: null,
          ...(task.cache === false && { cache: false }),
          budgetUsd: task.budgetUsd ?? null,
        },
        seq: ++this.seq,
        requestHash: idempotency?.requestHash ?? null,
        expiresAt: null,
        results: new Map(),
        lastEventId: 0,
      };
      this.tasks.set(task.taskId, entry);
      if (idempotency) this.keys.set(idempotency.key, task.taskId);
      return { task: await this.record(entry), created: true };
    });
  }

  async findTask(taskId: string): Promise<TaskRecord | undefined> {
    const entry = this.tasks.get(taskId);
    return entry && this.record(entry);
  }

  taskStatus(taskId: string): Promise<TaskStatus | undefined> {
    return settled(() => this.tasks.get(taskId)?.task.status);
  }

  async listTasks({ status, limit }: { status?: TaskStatus; limit: number }): Promise<TaskRecord[]> {
    const newestFirst = [...this.tasks.values()]
      .filter((e) => !status || e.task.status === status)
      .sort((a, b) => compare(b.task.createdAt, a.task.createdAt) || b.seq - a.seq)
      .slice(0, Math.max(0, limit));
    return Promise.all(newestFirst.map((e) => this.record(e)));
  }

  transition(
    taskId: string,
    to: TaskStatus,
    patch: TransitionPatch = {},
    events: readonly EventDraft[] = [],
  ): Promise<{ task: TaskRecord; events: TaskEventRecord[] }> {
    return this.write(async () => {
      const entry = this.entry(taskId);
      assertTransition(taskId, entry.task.status, to);
      const drafts = copyDrafts(events);
      const t = entry.task;
      const stored = await this.withEvents(entry, drafts, () => {
        t.status = to;
        t.startedAt = patch.startedAt ?? t.startedAt;
        t.completedAt = patch.completedAt ?? t.completedAt;
        t.deadlineAt = patch.deadlineAt ?? t.deadlineAt;
        entry.expiresAt = patch.expiresAt ?? entry.expiresAt;
        if (patch.errorMessage !== undefined) t.errorMessage = patch.errorMessage;
        if (patch.metrics) t.metrics = { ...patch.metrics };
      });
      return { task: await this.record(entry), events: stored };
    });
  }

  recordNodeResult(
    taskId: string,
    result: NodeResultRecord,
    events: readonly EventDraft[],
  ): Promise<TaskEventRecord[]> {
    return this.recordNodeResults(taskId, [result], events);
  }

  recordNodeResults(
    taskId: string,
    results: readonly NodeResultRecord[],
    events: readonly EventDraft[],
  ): Promise<TaskEventRecord[]> {
    return this.write(async () => {
      const entry = this.entry(taskId);
      const drafts = copyDrafts(events);
      const copies = results.map((r) => structuredClone(r));
      return this.withEvents(entry, drafts, () => {
        for (const r of copies) entry.results.set(`${r.groupIndex}\0${r.nodeId}`, r);
      });
    });
  }

  nodeResults(taskId: string): Promise<NodeResultRecord[]> {
    return settled(() =>
      this.results(taskId)
        .sort((a, b) => a.groupIndex - b.groupIndex || byFinish(a, b))
        .map((r) => structuredClone(r)),
    );
  }

  nodeCounts(taskId: string): Promise<NodeCounts> {
    return settled(() => {
      const counts: NodeCounts = { completed: 0, failed: 0, skipped: 0 };
      for (const r of this.results(taskId)) counts[r.outcome]++;
      return counts;
    });
  }

  resultSummary(taskId: string): Promise<GroupOutcomeSummary[]> {
    return settled(() => {
      const rows = new Map<string, GroupOutcomeSummary>();
      for (const r of this.results(taskId)) {
        const key = `${r.groupIndex}\0${r.outcome}`;
        let row = rows.get(key);
        if (!row) {
          row = {
            groupIndex: r.groupIndex,
            outcome: r.outcome,
            count: 0,
            inputTokens: 0,
            outputTokens: 0,
            sumDurationMs: 0,
          };
          rows.set(key, row);
        }
        row.count++;
        row.inputTokens += r.inputTokens;
        row.outputTokens += r.outputTokens;
        row.sumDurationMs += r.durationMs ?? 0;
      }
      return [...rows.values()].sort((a, b) => a.groupIndex - b.groupIndex || compare(a.outcome, b.outcome));
    });
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
      return this.results(taskId)
        .filter((r) => r.groupIndex === groupIndex && r.outcome === outcome)
        .sort(byFinish)
        .slice(Math.max(0, offset), Math.max(0, offset) + limit)
        .map((r) => structuredClone(r));
    });
  }

  async unfinishedTasks(): Promise<TaskRecord[]> {
    const oldestFirst = [...this.tasks.values()]
      .filter((e) => !isTerminal(e.task.status))
      .sort((a, b) => compare(a.task.createdAt, b.task.createdAt) || a.seq - b.seq);
    return Promise.all(oldestFirst.map((e) => this.record(e)));
  }

  markResumed(taskId: string, event: EventDraft): Promise<TaskEventRecord> {
    return this.write(async () => {
      const entry = this.entry(taskId);
      const [stored] = await this.withEvents(entry, copyDrafts([event]), () => {
        entry.task.resumeCount++;
      });
      return stored;
    });
  }

  recordPeak(taskId: string, peak: number): Promise<void> {
    return this.write(() => {
      const task = this.tasks.get(taskId)?.task;
      if (task) task.peakConcurrent = Math.max(task.peakConcurrent, peak);
    });
  }

  requestCancel(taskId: string, mode: 'graceful' | 'abort'): Promise<CancelRequest> {
    return this.write(async (): Promise<CancelRequest> => {
      const entry = this.tasks.get(taskId);
      if (!entry) return { outcome: 'not-found' };
      if (isTerminal(entry.task.status)) return { outcome: 'finished', task: await this.record(entry) };
      entry.task.cancelRequested ??= mode;
      return { outcome: 'requested', task: await this.record(entry) };
    });
  }

  deleteExpired(now: Date): Promise<string[]> {
    return this.write(() => {
      const limit = now.toISOString();
      const ids: string[] = [];
      for (const [id, entry] of this.tasks) {
        if (entry.expiresAt === null || entry.expiresAt > limit) continue;
        this.tasks.delete(id);
        if (entry.task.idempotencyKey !== null) this.keys.delete(entry.task.idempotencyKey);
        ids.push(id);
      }
      return ids;
    });
  }

  statusCounts(): Promise<Record<TaskStatus, number>> {
    return settled(() => {
      const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
      for (const { task } of this.tasks.values()) counts[task.status]++;
      return counts;
    });
  }

  agentDurations(): Promise<AgentDurationRecord[]> {
    return settled(() => [...this.durations.values()].map((d) => ({ ...d })));
  }

  saveAgentDurations(durations: AgentDurationRecord[]): Promise<boolean> {
    return this.write(() => {
      for (const d of durations) {
        const before = this.durations.get(d.agentType);
        // an estimate saved without output tokens keeps the ones learned before (as the other adapters do)
        const output =
          d.meanOutputTokens === undefined && before?.meanOutputTokens !== undefined
            ? { meanOutputTokens: before.meanOutputTokens, outputSamples: before.outputSamples }
            : {};
        this.durations.set(d.agentType, { ...d, ...output });
      }
      return true;
    });
  }

  /** Runs `fn` after every write before it has settled (whatever its outcome). */
  private write<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private entry(taskId: string): Entry {
    const entry = this.tasks.get(taskId);
    if (!entry) throw new TaskNotFoundError(taskId);
    return entry;
  }

  private results(taskId: string): NodeResultRecord[] {
    return [...(this.tasks.get(taskId)?.results.values() ?? [])];
  }

  /**
   * Applies `change`, then appends `drafts` to the log (stored and published there); when the log refuses them, the
   * change is undone, so the outcome and its events are stored together or not at all.
   */
  private async withEvents(
    entry: Entry,
    drafts: EventDraft[],
    change: () => void,
  ): Promise<TaskEventRecord[]> {
    const before = {
      task: structuredClone(entry.task),
      expiresAt: entry.expiresAt,
      results: new Map(entry.results),
    };
    change();
    if (!drafts.length) return [];
    try {
      const stored = await this.events.append(entry.task.taskId, drafts);
      entry.lastEventId = Math.max(entry.lastEventId, ...stored.map((e) => e.id));
      return stored;
    } catch (err) {
      Object.assign(entry, before);
      throw err;
    }
  }

  /** A copy of the task's record, with its last event id (events appended to the log directly included). */
  private async record(entry: Entry): Promise<TaskRecord> {
    for (;;) {
      const later = await this.events.after(entry.task.taskId, entry.lastEventId);
      if (!later.length) break;
      entry.lastEventId = later[later.length - 1].id;
    }
    return { ...structuredClone(entry.task), lastEventId: entry.lastEventId };
  }
}

/**
 * Copies of the drafts; throws (before anything is stored) a `TypeError` for a name outside the task-event vocabulary
 * or data that cannot be stored as JSON.
 */
function copyDrafts(drafts: readonly EventDraft[]): EventDraft[] {
  assertTaskEventTypes(drafts);
  return drafts.map((d) => ({
    type: d.type,
    timestamp: d.timestamp,
    data: JSON.parse(JSON.stringify(d.data)) as Record<string, unknown>,
  }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** In the order they finished, ties by node id. */
function byFinish(a: NodeResultRecord, b: NodeResultRecord): number {
  return compare(a.finishedAt, b.finishedAt) || compare(a.nodeId, b.nodeId);
}
