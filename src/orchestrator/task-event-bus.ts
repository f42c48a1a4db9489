import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { filter, type Observable, Subject } from 'rxjs';
import type { TaskEventRecord } from '../session/task.types';

/**
 * The live side of task events: every event is stored in the task's log first, then published here. SSE streams
 * replay the log and follow this Subject. In-process today; a cross-process stream can replace it.
 */
@Injectable()
export class TaskEventBus implements OnModuleDestroy {
  private readonly subject = new Subject<TaskEventRecord>();

  publish(events: readonly TaskEventRecord[]): void {
    for (const e of events) this.subject.next(e);
  }

  forTask(taskId: string): Observable<TaskEventRecord> {
    return this.subject.pipe(filter((e) => e.taskId === taskId));
  }

  /** Ends every live feed (SSE streams then end; their clients reconnect and replay from the log). */
  close(): void {
    this.subject.complete();
  }

  onModuleDestroy(): void {
    this.close();
  }
}
