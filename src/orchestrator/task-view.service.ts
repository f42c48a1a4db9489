import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { costOf, InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../config';
import {
  BudgetLedger,
  EventLog,
  InvalidTaskIdError,
  TaskNotFoundError,
  TaskStore,
  isTaskId,
  isTerminal,
  type NodeResultRecord,
  routingData,
  type TaskRecord,
  type TaskEventType,
  type TaskStatus,
} from '../session';
import { BatchOrchestrator, type LiveTaskInfo } from './batch-orchestrator.service';
import { taskBudget } from './cost/pricing';
import { Dispatcher } from './dispatch/dispatcher';
import { measureMetrics, runningProgressPercent, settledStatus } from './status-rules';
import {
  type GroupStatusDto,
  type NodeResultDto,
  type SchedulerStatusDto,
  type TaskStatusDto,
  type TaskSummaryDto,
  type TruncationDto,
  truncationView,
} from './dto/task-status.dto';

/** `{ agent_type, routing }` for a node of an `auto` group once routed, else nothing. */
function routingMember(r: NodeResultRecord): Pick<NodeResultDto, 'agent_type' | 'routing'> {
  if (!r.routing) return {};
  return {
    agent_type: r.routing.agentType,
    routing: routingData(r.routing),
  };
}

/** `{ truncated }` for a result the size caps cut, else nothing. */
function truncatedMember(r: NodeResultRecord): { truncated?: TruncationDto } {
  const truncated = truncationView(r.truncated);
  return truncated ? { truncated } : {};
}

/** Tasks up to this size list every result and error by default; larger ones a first page per group. */
export const FULL_LISTING_MAX_NODES = 10_000;
export const DEFAULT_PAGE_LIMIT = 1_000;

/**
 * A status built in the last STATUS_REUSE_MS is answered again (50 clients polling a running 10,000-node task would
 * otherwise rebuild it hundreds of times a second, taking CPU from the batch): counts may lag by that much. Events
 * other than node outcomes and progress end the reuse at once, so a cancel or the end shows immediately.
 */
const STATUS_REUSE_MS = 250;
const MAX_REUSED_VIEWS = 256;
/** Per event type: whether it changes only counts (a reused status may then stand); every type decided here. */
const COUNTS_ONLY: Readonly<Record<TaskEventType, boolean>> = {
  task_completed: true,
  task_failed: true,
  progress_update: true,
  group_completed: false,
  cancelled: false,
  error: false,
  resumed: false,
  session_completed: false,
};

interface ReusedView {
  until: number;
  /** Being built (the store answers asynchronously): concurrent requests share one build. */
  view: Promise<TaskStatusDto>;
  /** The view as UTF-8 JSON bytes, and their ETag, once a client asked for them. */
  serialized?: { body: Buffer; etag: string };
}

/** Which results and errors a status lists, per group. */
export interface StatusPage {
  offset?: number;
  limit?: number;
}

/** Builds the wire views of tasks (snake_case, as API.md) from the store and the live run state. */
@Injectable()
export class TaskViewService {
  constructor(
    private readonly store: TaskStore,
    private readonly orchestrator: BatchOrchestrator,
    private readonly dispatcher: Dispatcher,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
    events: EventLog,
    private readonly ledger: BudgetLedger,
  ) {
    // a cancel, an error, a group or the task ending changes more than counts: such a status is never reused
    events.all().subscribe((e) => {
      if (COUNTS_ONLY[e.type]) return;
      for (const key of this.recent.keys()) if (key.startsWith(`${e.taskId}\0`)) this.recent.delete(key);
    });
  }

  private readonly recent = new Map<string, ReusedView>();

  /** The task, or 400 for a malformed id and 404 for an unknown one. Reads only (a cancel goes to the orchestrator). */
  async find(taskId: string): Promise<TaskRecord> {
    if (!isTaskId(taskId)) throw new InvalidTaskIdError(taskId);
    const task = await this.store.findTask(taskId);
    if (!task) throw new TaskNotFoundError(taskId);
    return task;
  }

  /**
   * The task's status. Counts, token and duration totals come from one aggregate query, whatever the task's size;
   * `results`/`errors` are listed per group from `page.offset`, at most `page.limit` each (default: all of them for
   * tasks up to 10,000 nodes, the first 1,000 per group beyond — a 100,000-node task stays cheap to poll).
   */
  status(taskId: string, page: StatusPage = {}): Promise<TaskStatusDto> {
    return this.reused(taskId, page).view;
  }

  /** `status` as UTF-8 JSON bytes with a weak ETag of them, both made once per reused view. */
  async statusJson(taskId: string, page: StatusPage = {}): Promise<{ body: Buffer; etag: string }> {
    const entry = this.reused(taskId, page);
    const view = await entry.view;
    if (!entry.serialized) {
      // kept as UTF-8 bytes: sent as they are, not encoded again for every request
      const body = Buffer.from(JSON.stringify(view), 'utf8');
      const digest = createHash('sha1').update(body).digest('base64url');
      entry.serialized = { body, etag: `W/"${body.length.toString(16)}-${digest}"` };
    }
    return entry.serialized;
  }

  private reused(taskId: string, page: StatusPage): ReusedView {
    const key = `${taskId}\0${page.offset ?? ''}\0${page.limit ?? ''}`;
    const now = performance.now();
    const hit = this.recent.get(key);
    if (hit && hit.until > now) return hit;
    const entry: ReusedView = { until: now + STATUS_REUSE_MS, view: this.build(taskId, page) };
    if (this.recent.size >= MAX_REUSED_VIEWS) this.recent.clear();
    this.recent.set(key, entry);
    // a failed build (unknown task, store error) is not reused
    entry.view.catch(() => {
      if (this.recent.get(key) === entry) this.recent.delete(key);
    });
    return entry;
  }

  private async build(taskId: string, page: StatusPage): Promise<TaskStatusDto> {
    const task = await this.find(taskId);
    const offset = page.offset ?? 0;
    const limit = page.limit ?? (task.totalNodes > FULL_LISTING_MAX_NODES ? DEFAULT_PAGE_LIMIT : Infinity);
    const live = await this.orchestrator.live(taskId);
    const counts = { completed: 0, failed: 0, skipped: 0 };
    const byGroup = task.groups.map(() => ({ completed: 0, failed: 0, skipped: 0 }));
    let inputTokens = 0;
    let outputTokens = 0;
    let sumDurationMs = 0;
    let ran = 0;
    for (const r of await this.store.resultSummary(taskId)) {
      counts[r.outcome] += r.count;
      if (byGroup[r.groupIndex]) byGroup[r.groupIndex][r.outcome] += r.count;
      inputTokens += r.inputTokens;
      outputTokens += r.outputTokens;
      if (r.outcome !== 'skipped') {
        sumDurationMs += r.sumDurationMs;
        ran += r.count;
      }
    }
    const listed = async (
      groupIndex: number,
      outcome: 'completed' | 'failed',
    ): Promise<NodeResultRecord[]> => {
      const total = byGroup[groupIndex][outcome];
      const n = Math.max(0, Math.min(limit, total - offset));
      return n > 0 ? this.store.nodeResultsPage(taskId, groupIndex, outcome, offset, n) : [];
    };
    const pages = await Promise.all(
      task.groups.map(async (_, i) => ({
        results: await listed(i, 'completed'),
        errors: await listed(i, 'failed'),
      })),
    );
    const groups = task.groups.map((g, i): GroupStatusDto => {
      const { completed, failed, skipped } = byGroup[i];
      return {
        group_id: g.groupId,
        agent_type: g.agentType,
        status: groupStatus(
          task.status,
          g.nodeIds.length,
          completed,
          failed,
          skipped,
          live?.groupsStarted[i] ?? 0,
        ),
        total_nodes: g.nodeIds.length,
        completed_nodes: completed,
        failed_nodes: failed,
        skipped_nodes: skipped,
        // which nodes the group runs (a dashboard draws their states on the canvas); not in a summary, nor beyond a
        // full listing
        ...(limit > 0 && task.totalNodes <= FULL_LISTING_MAX_NODES && { node_ids: g.nodeIds }),
        ...(live && {
          running: live.groupsRunning[i].map((r) => ({
            node_id: r.nodeId,
            started_at: new Date(r.startedAt).toISOString(),
          })),
        }),
        results: pages[i].results.map((r) => ({
          node_id: r.nodeId,
          file_path: r.filePath ?? '',
          file_size: r.fileSize ?? 0,
          duration_ms: r.durationMs ?? 0,
          usage: this.usage(r.inputTokens, r.outputTokens),
          attempts: r.attempts ?? 1,
          ...truncatedMember(r),
          ...(r.cached && { cached: true as const }),
          ...routingMember(r),
        })),
        errors: pages[i].errors.map((r) => ({
          node_id: r.nodeId,
          error_message: r.errorMessage ?? '',
          error_type: r.errorType ?? 'AGENT_ERROR',
          attempts: r.attempts ?? 1,
          usage: this.usage(r.inputTokens, r.outputTokens),
          ...routingMember(r),
        })),
      };
    });
    const paged =
      offset > 0 || byGroup.some((c) => c.completed > limit || c.failed > limit)
        ? { results_page: { offset, limit: Number.isFinite(limit) ? limit : null } }
        : {};
    const scheduler = live ? { scheduler: await this.schedulerView(live) } : {};
    const budget = await taskBudget(this.ledger, task);
    return {
      task_id: task.taskId,
      canvas_path: task.canvasPath,
      status: task.status,
      progress_percent: progressPercent(task, counts.completed + counts.failed + counts.skipped),
      total_groups: task.groups.length,
      total_nodes: task.totalNodes,
      completed_nodes: counts.completed,
      failed_nodes: counts.failed,
      skipped_nodes: counts.skipped,
      max_concurrent: task.maxConcurrent,
      timeout: task.timeoutMs / 1000,
      created_at: task.createdAt,
      started_at: task.startedAt,
      completed_at: task.completedAt,
      error_message: task.errorMessage,
      groups,
      performance_metrics: {
        ...(task.metrics ?? liveMetrics(task, live, sumDurationMs, ran)),
        concurrency_limit: (await this.dispatcher.state()).limit,
      },
      usage: this.usage(inputTokens, outputTokens),
      ...(budget && { budget }),
      ...paged,
      ...scheduler,
    };
  }

  private async schedulerView(live: LiveTaskInfo): Promise<SchedulerStatusDto> {
    const s = await this.orchestrator.schedulerState();
    return {
      policy: s.policy,
      waiting_for_slot: live.waitingForSlot,
      global_limit: s.limit,
      global_capacity: s.capacity,
      global_in_use: s.inUse,
      global_waiting: s.waiting,
      estimated_duration_ms: Object.fromEntries(Object.entries(s.estimates).map(([k, e]) => [k, e.meanMs])),
    };
  }

  /** Token counts, with `cost_usd` when a price table is configured. */
  private usage(input: number, output: number): TaskStatusDto['usage'] {
    const prices = this.options.tokenPrices;
    return {
      input_tokens: input,
      output_tokens: output,
      ...(prices && { cost_usd: costOf(prices, input, output) }),
    };
  }

  async list(filter: { status?: TaskStatus; limit?: number }): Promise<TaskSummaryDto[]> {
    const tasks = await this.store.listTasks({ status: filter.status, limit: filter.limit ?? 20 });
    const counts = await Promise.all(tasks.map((task) => this.store.nodeCounts(task.taskId)));
    return tasks.map((task, i) => {
      const c = counts[i];
      return {
        task_id: task.taskId,
        canvas_path: task.canvasPath,
        status: task.status,
        progress_percent: progressPercent(task, c.completed + c.failed + c.skipped),
        total_groups: task.groups.length,
        total_nodes: task.totalNodes,
        completed_nodes: c.completed,
        failed_nodes: c.failed,
        skipped_nodes: c.skipped,
        created_at: task.createdAt,
        completed_at: task.completedAt,
      };
    });
  }
}

function progressPercent(task: TaskRecord, settled: number): number {
  if (isTerminal(task.status)) return 100;
  return runningProgressPercent(settled, task.totalNodes);
}

function groupStatus(
  taskStatus: TaskStatus,
  total: number,
  completed: number,
  failed: number,
  skipped: number,
  started: number,
): TaskStatus {
  if (completed + failed + skipped === total)
    return settledStatus({ total, completed, skipped }, taskStatus === 'cancelled');
  if (taskStatus === 'cancelled') return 'cancelled';
  return started > 0 || completed + failed > 0 ? 'running' : 'pending';
}

function liveMetrics(
  task: TaskRecord,
  live: LiveTaskInfo | undefined,
  sumDurationMs: number,
  ran: number,
): Omit<TaskStatusDto['performance_metrics'], 'concurrency_limit'> {
  return measureMetrics({
    wallMs: task.startedAt ? Math.max(0, Date.now() - Date.parse(task.startedAt)) : 0,
    sumDurationMs,
    ran,
    maxConcurrent: task.maxConcurrent,
    totalNodes: task.totalNodes,
    peak: live?.peakConcurrent ?? task.peakConcurrent,
  });
}
