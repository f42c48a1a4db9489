import type { Redis } from 'ioredis';
import type { RedisEventLog } from './redis-event-log';
import {
  allowedFrom,
  eventTails,
  fieldsOf,
  type RedisSessionKeys,
  runScript,
  storedRecords,
  type TaskFields,
  toTask,
} from './redis-session-layout';
import { IdempotencyKeyReusedError, InvalidStateTransitionError, TaskNotFoundError } from './task.errors';
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
  NewTask,
  NodeOutcome,
  NodeResultRecord,
  TaskEventRecord,
  TaskRecord,
  TaskStatus,
  TransitionPatch,
} from './task.types';
import { TASK_STATUSES } from './task.types';

/** Expired tasks deleted per script run (each run blocks Redis a little; several runs take the rest). */
const DELETE_BATCH = 200;

/**
 * `TaskStore` on Redis, for the distributed engine: every process reads and writes the same tasks
 * (`redis-session-layout.ts` has the keys). Each write is one Lua script, the state machine's check inside it
 * (the statuses a move may start from are handed in): outcome and events are stored together or not at all, and
 * concurrent writes from any number of processes run one at a time. The events a write stored are published by
 * its script on the channel (every process's `RedisEventLog` feeds its live subscribers from it) and handed to
 * this process's feeds before the write resolves.
 *
 * Runs on the `RedisEventLog`'s command connection (`new RedisTaskStore(events)`): the log owns and quits it.
 */
export class RedisTaskStore extends TaskStore {
  private readonly redis: Redis;
  private readonly keys: RedisSessionKeys;

  constructor(private readonly events: RedisEventLog) {
    super();
    this.redis = events.redis;
    this.keys = events.keys;
  }

  async createTask(
    task: NewTask,
    idempotency?: IdempotencyClaim,
  ): Promise<{ task: TaskRecord; created: boolean }> {
    const fields: Record<string, string> = {
      id: task.taskId,
      canvas: task.canvasPath,
      status: 'pending',
      max: String(task.maxConcurrent),
      timeout: String(task.timeoutMs),
      groups: JSON.stringify(task.groups),
      total: String(task.groups.reduce((n, g) => n + g.nodeIds.length, 0)),
      created: task.createdAt,
      last: '0',
      resumes: '0',
      peak: '0',
    };
    if (task.cache === false) fields.nocache = '1';
    if (task.budgetUsd !== undefined) fields.budget = String(task.budgetUsd);
    if (idempotency) {
      fields.idem = idempotency.key;
      fields.hash = idempotency.requestHash;
    }
    const [outcome, detail] = (await runScript(
      this.redis,
      'cbSessionCreate',
      [
        this.keys.task(task.taskId),
        this.keys.tasks(),
        this.keys.tasksSeq(),
        this.keys.op(),
        idempotency ? this.keys.idempotency(idempotency.key) : '',
      ],
      [
        this.keys.prefix,
        task.taskId,
        idempotency?.requestHash ?? '',
        task.createdAt,
        ...Object.entries(fields).flat(),
      ],
    )) as [string, string[] | string | undefined];
    if (outcome === 'reused') {
      throw new IdempotencyKeyReusedError(idempotency?.key ?? '', detail as string);
    }
    if (outcome === 'exists') throw new Error(`A task with id ${task.taskId} exists already`);
    return { task: toTask(fieldsOf(detail as string[])), created: outcome === 'created' };
  }

  async findTask(taskId: string): Promise<TaskRecord | undefined> {
    const fields = (await this.redis.hgetall(this.keys.task(taskId))) as TaskFields;
    return fields.status ? toTask(fields) : undefined;
  }

  async taskStatus(taskId: string): Promise<TaskStatus | undefined> {
    return ((await this.redis.hget(this.keys.task(taskId), 'status')) ?? undefined) as TaskStatus | undefined;
  }

  async listTasks({ status, limit }: { status?: TaskStatus; limit: number }): Promise<TaskRecord[]> {
    if (limit <= 0) return [];
    return (await this.tasksIn([this.keys.tasks(status)], true, limit)).map((t) => t.task);
  }

  async transition(
    taskId: string,
    to: TaskStatus,
    patch: TransitionPatch = {},
    events: readonly EventDraft[] = [],
  ): Promise<{ task: TaskRecord; events: TaskEventRecord[] }> {
    const tails = eventTails(taskId, events);
    const pairs: string[] = [];
    const set = (field: string, value: string | undefined): void => {
      if (value !== undefined) pairs.push(field, value);
    };
    set('started', patch.startedAt);
    set('completed', patch.completedAt);
    set('deadline', patch.deadlineAt);
    set('error', patch.errorMessage ?? undefined);
    set('metrics', patch.metrics && JSON.stringify(patch.metrics));
    const reply = (await runScript(
      this.redis,
      'cbSessionTransition',
      [this.keys.task(taskId), this.keys.events(taskId), this.keys.op(), this.keys.expiring()],
      [
        this.keys.prefix,
        this.keys.channel,
        this.events.origin,
        taskId,
        to,
        allowedFrom(to),
        patch.errorMessage === null ? '1' : '0',
        patch.expiresAt ?? '',
        pairs.length,
        ...pairs,
        tails.length,
        ...tails,
      ],
    )) as [string, string[] | string, number];
    if (reply[0] === 'not-found') throw new TaskNotFoundError(taskId);
    if (reply[0] === 'invalid') throw new InvalidStateTransitionError(taskId, reply[1] as TaskStatus, to);
    const stored = storedRecords(reply[2], tails);
    await this.publish(stored);
    return { task: toTask(fieldsOf(reply[1] as string[])), events: stored };
  }

  recordNodeResult(
    taskId: string,
    result: NodeResultRecord,
    events: readonly EventDraft[],
  ): Promise<TaskEventRecord[]> {
    return this.recordNodeResults(taskId, [result], events);
  }

  async recordNodeResults(
    taskId: string,
    results: readonly NodeResultRecord[],
    events: readonly EventDraft[],
  ): Promise<TaskEventRecord[]> {
    const tails = eventTails(taskId, events);
    const resultArgs = results.flatMap((r) => [
      resultField(r.groupIndex, r.nodeId),
      JSON.stringify(storedResult(r)),
      sum(r.inputTokens),
      sum(r.outputTokens),
      sum(r.durationMs),
      `${r.groupIndex}\0${r.outcome}\0${r.finishedAt}\0${r.nodeId}`,
    ]);
    const first = (await runScript(
      this.redis,
      'cbSessionRecordResults',
      [
        this.keys.task(taskId),
        this.keys.events(taskId),
        this.keys.results(taskId),
        this.keys.resultMeta(taskId),
        this.keys.resultOrder(taskId),
        this.keys.summary(taskId),
        this.keys.op(),
      ],
      [this.keys.channel, this.events.origin, results.length, ...resultArgs, tails.length, ...tails],
    )) as number;
    if (first < 0) throw new TaskNotFoundError(taskId);
    const stored = storedRecords(first, tails);
    await this.publish(stored);
    return stored;
  }

  async nodeResults(taskId: string): Promise<NodeResultRecord[]> {
    const all = (await this.redis.hvals(this.keys.results(taskId))).map(
      (json) => JSON.parse(json) as NodeResultRecord,
    );
    return all.sort((a, b) => a.groupIndex - b.groupIndex || byFinish(a, b));
  }

  async nodeCounts(taskId: string): Promise<NodeCounts> {
    const counts: NodeCounts = { completed: 0, failed: 0, skipped: 0 };
    for (const row of await this.resultSummary(taskId)) counts[row.outcome] += row.count;
    return counts;
  }

  async resultSummary(taskId: string): Promise<GroupOutcomeSummary[]> {
    const sums = await this.redis.hgetall(this.keys.summary(taskId));
    const rows = new Map<string, GroupOutcomeSummary>();
    for (const [field, value] of Object.entries(sums)) {
      const [group, outcome, what] = field.split('\0');
      const key = `${group}\0${outcome}`;
      let row = rows.get(key);
      if (!row) {
        row = {
          groupIndex: Number(group),
          outcome: outcome as NodeOutcome,
          count: 0,
          inputTokens: 0,
          outputTokens: 0,
          sumDurationMs: 0,
        };
        rows.set(key, row);
      }
      const n = Number(value);
      if (what === 'n') row.count = n;
      else if (what === 'in') row.inputTokens = n;
      else if (what === 'out') row.outputTokens = n;
      else row.sumDurationMs = n;
    }
    // a group and outcome whose last node was replayed into another outcome keeps a row of zeros: left out
    return [...rows.values()]
      .filter((r) => r.count > 0)
      .sort((a, b) => a.groupIndex - b.groupIndex || compare(a.outcome, b.outcome));
  }

  async nodeResultsPage(
    taskId: string,
    groupIndex: number,
    outcome: NodeOutcome,
    offset: number,
    limit: number,
  ): Promise<NodeResultRecord[]> {
    if (limit <= 0) return [];
    const prefix = `${groupIndex}\0${outcome}\0`;
    const page = (await runScript(
      this.redis,
      'cbSessionResultsPage',
      [this.keys.resultOrder(taskId), this.keys.results(taskId)],
      [`[${prefix}`, `(${groupIndex}\0${outcome}\u0001`, Math.max(0, offset), limit],
    )) as string[];
    return page.map((json) => JSON.parse(json) as NodeResultRecord);
  }

  async unfinishedTasks(): Promise<TaskRecord[]> {
    const found = await this.tasksIn([this.keys.tasks('running'), this.keys.tasks('pending')], false, -1);
    return found.sort((a, b) => compare(a.member, b.member)).map((t) => t.task);
  }

  async markResumed(taskId: string, event: EventDraft): Promise<TaskEventRecord> {
    const tails = eventTails(taskId, [event]);
    const first = (await runScript(
      this.redis,
      'cbSessionMarkResumed',
      [this.keys.task(taskId), this.keys.events(taskId), this.keys.op()],
      [this.keys.channel, this.events.origin, tails.length, ...tails],
    )) as number;
    if (first < 0) throw new TaskNotFoundError(taskId);
    const stored = storedRecords(first, tails);
    await this.publish(stored);
    return stored[0];
  }

  async recordPeak(taskId: string, peak: number): Promise<void> {
    await runScript(this.redis, 'cbSessionRecordPeak', [this.keys.task(taskId)], [peak]);
  }

  async requestCancel(taskId: string, mode: 'graceful' | 'abort'): Promise<CancelRequest> {
    const [outcome, flat] = (await runScript(
      this.redis,
      'cbSessionRequestCancel',
      [this.keys.task(taskId)],
      [mode],
    )) as [string, string[] | undefined];
    if (outcome === 'not-found' || !flat) return { outcome: 'not-found' };
    const task = toTask(fieldsOf(flat));
    return outcome === 'finished' ? { outcome: 'finished', task } : { outcome: 'requested', task };
  }

  async deleteExpired(now: Date): Promise<string[]> {
    const deleted: string[] = [];
    for (;;) {
      const [looked, ...ids] = (await runScript(
        this.redis,
        'cbSessionDeleteExpired',
        [this.keys.expiring(), this.keys.tasks()],
        [this.keys.prefix, `(${now.toISOString()}\u0001`, DELETE_BATCH],
      )) as [number, ...string[]];
      deleted.push(...ids);
      if (looked < DELETE_BATCH) return deleted;
    }
  }

  async statusCounts(): Promise<Record<TaskStatus, number>> {
    const multi = this.redis.multi();
    for (const s of TASK_STATUSES) multi.zcard(this.keys.tasks(s));
    const replies = (await multi.exec()) ?? [];
    return Object.fromEntries(
      TASK_STATUSES.map((s, i) => {
        const [err, n] = replies[i] ?? [null, 0];
        if (err) throw err;
        return [s, Number(n)];
      }),
    ) as Record<TaskStatus, number>;
  }

  async agentDurations(): Promise<AgentDurationRecord[]> {
    const all = await this.redis.hgetall(this.keys.agentDurations());
    return Object.entries(all).map(([agentType, json]) => {
      const stored = JSON.parse(json) as Omit<AgentDurationRecord, 'agentType'>;
      return { agentType, ...stored };
    });
  }

  async saveAgentDurations(durations: AgentDurationRecord[]): Promise<boolean> {
    if (this.redis.status === 'end' || this.redis.status === 'close') return false;
    if (durations.length === 0) return true;
    // one script: every estimate or none; an estimate without output tokens keeps the ones stored before
    await runScript(
      this.redis,
      'cbSessionSaveDurations',
      [this.keys.agentDurations()],
      durations.flatMap((d) => [
        d.agentType,
        JSON.stringify({
          meanMs: d.meanMs,
          samples: d.samples,
          ...(d.meanOutputTokens !== undefined && {
            meanOutputTokens: d.meanOutputTokens,
            outputSamples: d.outputSamples ?? 0,
          }),
        }),
      ]),
    );
    return true;
  }

  /** To this process's live feeds (the script published them to the others). */
  private async publish(stored: readonly TaskEventRecord[]): Promise<void> {
    if (stored.length) await this.events.deliver(stored);
  }

  /** The tasks of these creation-order sets (newest or oldest first, `limit` per set), with their order member. */
  private async tasksIn(
    sets: string[],
    newestFirst: boolean,
    limit: number,
  ): Promise<{ member: string; task: TaskRecord }[]> {
    const flat = (await runScript(this.redis, 'cbSessionListTasks', sets, [
      this.keys.prefix,
      newestFirst ? '1' : '0',
      limit,
    ])) as (string | string[])[];
    const out: { member: string; task: TaskRecord }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      out.push({ member: flat[i] as string, task: toTask(fieldsOf(flat[i + 1] as string[])) });
    }
    return out;
  }
}

function resultField(groupIndex: number, nodeId: string): string {
  return `${groupIndex}\0${nodeId}`;
}

/** A number for the summary's sums (a missing or odd one counts 0). */
function sum(n: number | undefined): string {
  return Number.isFinite(n) ? String(n) : '0';
}

/** The stored fields of an outcome, as the SQLite adapter keeps them (absent optional fields left out). */
function storedResult(r: NodeResultRecord): NodeResultRecord {
  return {
    groupIndex: r.groupIndex,
    nodeId: r.nodeId,
    outcome: r.outcome,
    filePath: r.filePath,
    fileSize: r.fileSize,
    durationMs: r.durationMs,
    errorMessage: r.errorMessage,
    errorType: r.errorType,
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
    attempts: r.attempts,
    truncated: r.truncated,
    cached: r.cached || undefined,
    routing: r.routing,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** In the order they finished, ties by node id. */
function byFinish(a: NodeResultRecord, b: NodeResultRecord): number {
  return compare(a.finishedAt, b.finishedAt) || compare(a.nodeId, b.nodeId);
}
