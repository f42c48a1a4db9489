import type { Observable } from 'rxjs';
import { EventLog } from './event-log';
import { LiveFeed, settled } from './live-feed';
import { TaskNotFoundError } from './task.errors';
import type { EventDraft } from './task-store';
import { asTaskEvent, assertTaskEventTypes, type TaskEvent } from './task-events';
import { isTerminal, type TaskEventRecord, type TaskStatus } from './task.types';

export interface InMemoryEventLogOptions {
  /**
   * Where task statuses live (e.g. the `InMemoryTaskStore`'s `taskStatus`): an unknown task's append is refused,
   * and a task is finished by its status. Without it every task exists, and one is finished once its last event is
   * `session_completed`.
   */
  taskStatus?: (taskId: string) => Promise<TaskStatus | undefined>;
}

/**
 * `EventLog` in memory, for unit tests: no disk, no Nest needed. Same semantics as the SQLite adapter
 * (`event-log.contract.ts` runs against both): event data is copied in as JSON, ids are gap-free per task, the live
 * side is the same in-process `LiveFeed`.
 */
export class InMemoryEventLog extends EventLog {
  /** Per task, its events: the event with id `n` at index `n - 1`. */
  private readonly logs = new Map<string, TaskEventRecord[]>();
  private readonly feed = new LiveFeed();

  constructor(private readonly options: InMemoryEventLogOptions = {}) {
    super();
  }

  /**
   * Stores `drafts` as the task's next events without publishing them (all or none): for tests that need an event
   * stored and never published, and stores built on this log that publish after their own step.
   */
  insert(taskId: string, drafts: readonly EventDraft[]): TaskEventRecord[] {
    assertTaskEventTypes(drafts);
    let log = this.logs.get(taskId);
    const first = (log?.length ?? 0) + 1;
    const records = drafts.map((e, i) => ({
      id: first + i,
      taskId,
      type: e.type,
      timestamp: e.timestamp,
      // as the SQLite log stores it (a value JSON cannot hold throws here, and nothing is stored)
      data: JSON.parse(JSON.stringify(e.data)) as Record<string, unknown>,
    }));
    if (!log) this.logs.set(taskId, (log = []));
    log.push(...records);
    return records;
  }

  async append(taskId: string, drafts: readonly EventDraft[]): Promise<TaskEvent[]> {
    if (this.options.taskStatus && (await this.options.taskStatus(taskId)) === undefined) {
      throw new TaskNotFoundError(taskId);
    }
    return this.feed.publish(this.insert(taskId, drafts));
  }

  after(taskId: string, afterId: number, limit = Infinity): Promise<TaskEvent[]> {
    const from = Math.max(0, afterId);
    return settled(() => (this.logs.get(taskId) ?? []).slice(from, from + limit).map(asTaskEvent));
  }

  publish(records: readonly TaskEventRecord[]): void {
    this.feed.publish(records);
  }

  live(taskId: string): Observable<TaskEvent> {
    return this.feed.forTask(taskId);
  }

  all(): Observable<TaskEvent> {
    return this.feed.all();
  }

  async finished(taskId: string): Promise<boolean> {
    if (this.options.taskStatus) return isTerminal((await this.options.taskStatus(taskId)) ?? 'failed');
    return this.logs.get(taskId)?.at(-1)?.type === 'session_completed';
  }

  get liveFeedCount(): number {
    return this.feed.count;
  }

  close(): number {
    return this.feed.close();
  }
}
