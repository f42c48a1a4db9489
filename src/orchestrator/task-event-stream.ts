import { Injectable } from '@nestjs/common';
import { Observable } from 'rxjs';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../config';
import { EventLog, type TaskEventRecord, type WireTaskEvent } from '../session';

/**
 * One SSE message as Nest's `@Sse()` writes it: an event with id and its `data:` already serialized (JSON of a
 * `WireEvent`), or a comment.
 */
export type SseMessage = { id: string; type: string; data: string } | { comment: string };

/** The `data:` of every event: `{ type, task_id, timestamp, data }`, typed by its `type`. */
export type WireEvent = WireTaskEvent;

/**
 * The `data:` of an event, serialized once however many clients watch the task (a live event is one object fanned
 * out to every subscriber; 1,000 watchers would otherwise cost 1,000 `JSON.stringify` calls per event).
 */
const serialized = new WeakMap<TaskEventRecord, string>();
export function wireJson(e: TaskEventRecord): string {
  let json = serialized.get(e);
  if (json === undefined) {
    // a `WireEvent`, members in the wire's order; the payload as it was stored
    json = JSON.stringify({ type: e.type, task_id: e.taskId, timestamp: e.timestamp, data: e.data });
    serialized.set(e, json);
  }
  return json;
}

/**
 * A task's event stream for one in-process client, as SSE messages: `EventLog.follow` (the stored log after
 * `afterId`, then the live events, each exactly once and in id order; completes after `session_completed`), opened
 * by a comment and kept alive by comments. The batch never runs in here: unsubscribing only stops this client's
 * feed.
 */
@Injectable()
export class TaskEventStream {
  constructor(
    private readonly log: EventLog,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
  ) {}

  open(taskId: string, afterId: number): Observable<SseMessage> {
    return new Observable<SseMessage>((subscriber) => {
      subscriber.next({ comment: 'stream open' });
      const events = this.log.follow(taskId, afterId).subscribe({
        next: (e) => subscriber.next({ id: String(e.id), type: e.type, data: wireJson(e) }),
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      const keepAlive = setInterval(
        () => subscriber.next({ comment: 'keep-alive' }),
        this.options.keepAliveIntervalMs,
      );
      keepAlive.unref();
      return () => {
        clearInterval(keepAlive);
        events.unsubscribe();
      };
    });
  }
}
