import { Injectable } from '@nestjs/common';
import { Observable } from 'rxjs';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../config';
import { TaskStore, isTerminal, type TaskEventRecord } from '../session';
import { TaskEventBus } from './task-event-bus';
import type { WireTaskEvent } from './task-events';

/**
 * One SSE message as Nest's `@Sse()` writes it: an event with id and its `data:` already serialized (JSON of a
 * `WireEvent`), or a comment.
 */
export type SseMessage = { id: string; type: string; data: string } | { comment: string };

/** The `data:` of every event: `{ type, task_id, timestamp, data }`, typed by its `type`. */
export type WireEvent = WireTaskEvent;

/** Events read from the log at a time when a client replays it. */
export const REPLAY_PAGE = 1000;

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
 * A task's event stream for one client: the stored log after `afterId`, then the live events, each exactly once and
 * in id order (a gap in the live feed is filled from the log). Completes after `session_completed`. The batch never
 * runs in here: unsubscribing only stops this client's feed.
 */
@Injectable()
export class TaskEventStream {
  constructor(
    private readonly store: TaskStore,
    private readonly bus: TaskEventBus,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
  ) {}

  open(taskId: string, afterId: number): Observable<SseMessage> {
    return new Observable<SseMessage>((subscriber) => {
      let last = afterId;
      let replaying = true;
      const buffered: TaskEventRecord[] = [];

      const send = (e: TaskEventRecord): void => {
        if (subscriber.closed || e.id <= last) return;
        if (e.id > last + 1) {
          for (const missed of this.store.eventsAfter(taskId, last, e.id - last - 1)) send(missed);
          if (e.id <= last) return;
        }
        last = e.id;
        subscriber.next({ id: String(e.id), type: e.type, data: wireJson(e) });
        if (e.type === 'session_completed') subscriber.complete();
      };

      const live = this.bus.forTask(taskId).subscribe({
        next: (e) => (replaying ? buffered.push(e) : send(e)),
        complete: () => subscriber.complete(), // the service is shutting down
      });
      subscriber.next({ comment: 'stream open' });
      for (;;) {
        const page = this.store.eventsAfter(taskId, last, REPLAY_PAGE);
        page.forEach(send);
        if (page.length < REPLAY_PAGE || subscriber.closed) break;
      }
      replaying = false;
      buffered.splice(0).forEach(send);
      // A finished task whose log was replayed up to (or past) its end: nothing more will come.
      if (!subscriber.closed && isTerminal(this.store.taskStatus(taskId) ?? 'failed')) subscriber.complete();

      const keepAlive = setInterval(
        () => subscriber.next({ comment: 'keep-alive' }),
        this.options.keepAliveIntervalMs,
      );
      keepAlive.unref();
      return () => {
        clearInterval(keepAlive);
        live.unsubscribe();
      };
    });
  }
}
