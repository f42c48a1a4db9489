import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { filter, Observable, Subject } from 'rxjs';
import type { TaskEventRecord } from '../session/task.types';

/**
 * The live side of task events: every event is stored in the task's log first, then published here. SSE streams
 * replay the log and follow this Subject. In-process today; a cross-process stream can replace it.
 */
@Injectable()
export class TaskEventBus implements OnModuleDestroy {
  private readonly subject = new Subject<TaskEventRecord>();
  private liveFeeds = 0;

  publish(events: readonly TaskEventRecord[]): void {
    for (const e of events) this.subject.next(e);
  }

  forTask(taskId: string): Observable<TaskEventRecord> {
    return new Observable<TaskEventRecord>((subscriber) => {
      this.liveFeeds++;
      const sub = this.subject.pipe(filter((e) => e.taskId === taskId)).subscribe(subscriber);
      return () => {
        this.liveFeeds--;
        sub.unsubscribe();
      };
    });
  }

  /** Every published event of every task (for observers such as metrics; not counted as a live feed). */
  all(): Observable<TaskEventRecord> {
    return this.subject.asObservable();
  }

  /** Live per-task feeds open right now (one per connected SSE client). */
  get liveFeedCount(): number {
    return this.liveFeeds;
  }

  /**
   * Ends every live feed (SSE streams then end; their clients reconnect and replay from the log). Returns how many
   * feeds were open.
   */
  close(): number {
    const open = this.subject.observed ? this.liveFeeds : 0;
    this.subject.complete();
    return open;
  }

  onModuleDestroy(): void {
    this.close();
  }
}
