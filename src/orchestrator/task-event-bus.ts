import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import type { TaskEventRecord } from '../session';
import { asTaskEvent, type TaskEvent } from './task-events';

/**
 * The live side of task events: every event is stored in the task's log first, then published here. SSE streams
 * replay the log and follow this Subject. In-process today; a cross-process stream can replace it.
 * Records of the log enter typed here (`asTaskEvent`): subscribers get `TaskEvent`s and narrow on `type`.
 */
@Injectable()
export class TaskEventBus implements OnModuleDestroy {
  private readonly subject = new Subject<TaskEvent>();
  /** One Subject per watched task, so an event reaches its own watchers without passing every other task's. */
  private readonly perTask = new Map<string, Subject<TaskEvent>>();
  private liveFeeds = 0;
  private ended = false;

  publish(records: readonly TaskEventRecord[]): void {
    for (const record of records) {
      const e = asTaskEvent(record);
      this.subject.next(e);
      this.perTask.get(e.taskId)?.next(e);
    }
  }

  forTask(taskId: string): Observable<TaskEvent> {
    return new Observable<TaskEvent>((subscriber) => {
      if (this.ended) {
        subscriber.complete();
        return undefined;
      }
      this.liveFeeds++;
      let feed = this.perTask.get(taskId);
      if (!feed) this.perTask.set(taskId, (feed = new Subject<TaskEvent>()));
      const sub = feed.subscribe(subscriber);
      return () => {
        this.liveFeeds--;
        sub.unsubscribe();
        if (!feed.observed) this.perTask.delete(taskId);
      };
    });
  }

  /** Every published event of every task (for observers such as metrics; not counted as a live feed). */
  all(): Observable<TaskEvent> {
    return this.subject.asObservable();
  }

  /**
   * Live per-task feeds open right now: one per task watched over SSE (however many clients), one per in-process
   * `TaskEventStream`.
   */
  get liveFeedCount(): number {
    return this.liveFeeds;
  }

  /**
   * Ends every live feed (SSE streams then end; their clients reconnect and replay from the log). Returns how many
   * feeds were open.
   */
  close(): number {
    const open = this.liveFeeds;
    this.ended = true;
    this.subject.complete();
    for (const feed of this.perTask.values()) feed.complete();
    this.perTask.clear();
    return open;
  }

  onModuleDestroy(): void {
    this.close();
  }
}
