import { Observable } from 'rxjs';
import type { TaskEvent } from './task-events';
import type { EventDraft } from './task-store';
import type { TaskEventRecord } from './task.types';

/** Events read from the log at a time when a reader replays it. */
export const REPLAY_PAGE = 1000;

/**
 * Port: every task's event log — stored events with ids assigned gap-free per task (1, 2, 3, …), read back after an
 * id, and followed live. Producers never publish by hand: `append` stores and publishes, and the `TaskStore`'s
 * atomic operations that append events (outcome + its events in one step) hand what they stored to `publish`.
 * Records enter typed (`TaskEvent`, see `asTaskEvent`): readers narrow on `type`.
 * Adapters: SQLite + an in-process `LiveFeed` (embedded engine), in-memory (unit tests); every adapter passes
 * `event-log.contract.ts`. Everything that reads is async (a Redis adapter answers over the network).
 *
 * `follow` is the one replay-then-live core: the stored log after an id, then the live events, each once and in id
 * order (a gap in the live feed is filled from the log), ending after `session_completed` or once a finished task's
 * log is read to its end. It is written here once, over `after`, `live` and `finished`: in-process consumers
 * (`TaskEventStream.open()`) take it as it is; the SSE fan-out, which serves many clients from one shared live feed,
 * runs each client's catch-up through the same `replayLog` (see there).
 */
export abstract class EventLog {
  /**
   * Stores `drafts` (built by `taskEvent`) as the task's next events (ids follow its last one, with no gap however
   * many appends run at once) and publishes them. Rejects with `TaskNotFoundError` for an unknown task and with
   * a `TypeError` for an event name outside the vocabulary (then nothing is stored).
   */
  abstract append(taskId: string, drafts: readonly EventDraft[]): Promise<TaskEvent[]>;
  /** Stored events with `id > afterId`, in id order, at most `limit` (all without one). */
  abstract after(taskId: string, afterId: number, limit?: number): Promise<TaskEvent[]>;
  /**
   * Makes events a `TaskStore` operation stored (in the same transaction as their outcome) visible to live
   * subscribers. An adapter whose subscribers read the log itself may do nothing.
   */
  abstract publish(records: readonly TaskEventRecord[]): void;
  /** The task's events published from now on (not the stored ones); completes when the log closes. */
  abstract live(taskId: string): Observable<TaskEvent>;
  /** Every task's events published from now on (observers such as views; not counted as a live feed). */
  abstract all(): Observable<TaskEvent>;
  /**
   * The events this process stores, from now on (per-process figures: metrics). In one process, `all()`; where
   * several processes share the log, only this one's, so the processes' counters add up instead of repeating.
   */
  stored(): Observable<TaskEvent> {
    return this.all();
  }
  /**
   * Whether the task has finished (a terminal status, or it is gone): every event it will ever have is stored, so a
   * reader that has read its log to the end has everything.
   */
  abstract finished(taskId: string): Promise<boolean>;
  /** Live feeds open now (one per `live` subscription: per followed task for SSE, however many clients). */
  abstract get liveFeedCount(): number;
  /** Ends every live feed (subscribers reconnect and replay later); returns how many were open. */
  abstract close(): number;

  /**
   * The replay-then-live core (see the class comment). The live feed is joined first and what it brings waits while
   * the log is read, so nothing published during an (async) page read is lost, and nothing read from the log is
   * sent twice. Errors of the log's reads end the stream with that error. Completes when the log closes.
   */
  follow(taskId: string, afterId: number): Observable<TaskEvent> {
    return new Observable<TaskEvent>((subscriber) => {
      let last = afterId;
      /** Live events in the order published (ids ascending); those before `head` were handled. */
      const queue: TaskEvent[] = [];
      let head = 0;
      let busy = false;
      let replayed = false;
      const emit = (e: TaskEvent): void => {
        if (e.id > last) {
          last = e.id;
          subscriber.next(e);
        }
        if (e.type === 'session_completed') subscriber.complete();
      };
      const reader: LogReader = {
        get last() {
          return last;
        },
        get done() {
          return subscriber.closed;
        },
        take: (events) => {
          events.forEach(emit);
          return !subscriber.closed;
        },
        // live events wait in `queue` while the log is read: none goes by this reader
        passedBy: () => 0,
      };
      /** Replays once, then hands out the queue in order, filling a gap from the log; one run at a time. */
      const run = async (): Promise<void> => {
        if (busy) return; // the run in progress takes what was queued
        busy = true;
        try {
          if (!replayed && (await replayLog(this, taskId, reader)) !== 'live') {
            subscriber.complete();
            return;
          }
          replayed = true;
          while (head < queue.length && !subscriber.closed) {
            const e = queue[head++];
            if (e.id > last + 1 && (await replayLog(this, taskId, reader, e.id - 1)) === 'ended') {
              subscriber.complete();
              return;
            }
            emit(e);
          }
          queue.length = 0;
          head = 0;
        } catch (err) {
          subscriber.error(err);
        } finally {
          busy = false;
        }
      };
      const live = this.live(taskId).subscribe({
        next: (e) => {
          queue.push(e);
          void run();
        },
        complete: () => subscriber.complete(), // the log is closing: the consumer replays later
      });
      void run();
      return () => live.unsubscribe();
    });
  }
}

/**
 * A reader of a task's log that `replayLog` brings up to date: `follow`'s subscriber, or one SSE client of the
 * fan-out.
 */
export interface LogReader {
  /** The id of the last event it has. */
  readonly last: number;
  /** It is closed or ended: reading stops. */
  readonly done: boolean;
  /** Takes the log's next events (ids `last + 1`, … in order); false to stop for now (its buffer is full). */
  take(events: readonly TaskEvent[]): boolean;
  /**
   * The highest id that went out live, without this reader, while it read (the fan-out's rounds skip a client that
   * reads): past it, the log is read again, since those events may have been stored after the page was read.
   */
  passedBy(): number;
}

/**
 * How a replay ended: `live` (the reader has every stored event up to `upTo`, or, without one, every event stored
 * and every one that went by it: it takes the live feed from here), `ended` (it got `session_completed`, or the task
 * is finished and its log was read to the end: nothing more will come), `stopped` (`take` said so, or it is done).
 */
export type ReplayEnd = 'live' | 'ended' | 'stopped';

/**
 * The replay half of replay-then-live, the one piece `follow` and the SSE fan-out share: reads the log after
 * `reader.last` a page at a time into the reader, re-reading after a page while events went by it, until it has
 * caught up. Without `upTo` it then asks whether the task finished (and if so reads once more: a finished task's
 * events are all stored). With `upTo` it fills a gap: reads up to that id, no further.
 */
export async function replayLog(
  log: EventLog,
  taskId: string,
  reader: LogReader,
  upTo = Infinity,
): Promise<ReplayEnd> {
  let finished = false;
  /** Pages in a row that brought nothing new. */
  let idle = 0;
  for (;;) {
    const limit = Math.min(REPLAY_PAGE, upTo - reader.last);
    if (limit <= 0) return 'live';
    const page = await log.after(taskId, reader.last, limit);
    if (reader.done) return 'stopped';
    const fresh = page[0] && page[0].id <= reader.last ? page.filter((e) => e.id > reader.last) : page;
    const end = fresh.findIndex((e) => e.type === 'session_completed');
    if (end >= 0) {
      reader.take(fresh.slice(0, end + 1));
      return 'ended';
    }
    if (fresh.length > 0 && !reader.take(fresh)) return 'stopped';
    if (page.length === limit) continue; // a full page: there may be more
    if (upTo !== Infinity) return 'live';
    idle = fresh.length > 0 ? 0 : idle + 1;
    // Events went out while this page was read: they were stored before, a read started now has them. (Twice
    // nothing new while behind: they are not in the log, e.g. the task was deleted; the question below settles it.)
    const behind = reader.last < reader.passedBy() && idle < 2;
    if (behind) continue;
    if (finished) return 'ended';
    finished = await log.finished(taskId);
    if (reader.done) return 'stopped';
    // not finished: caught up unless events went by during the question; finished: one more read, to the end
    if (!finished && (reader.last >= reader.passedBy() || idle >= 2)) return 'live';
  }
}
