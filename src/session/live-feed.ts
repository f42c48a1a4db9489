import { Observable, Subject } from 'rxjs';
import { asTaskEvent, type TaskEvent } from './task-events';
import type { TaskEventRecord } from './task.types';

/** `fn()` as a settled promise (a throw becomes a rejection): a synchronous adapter answering an async port. */
export function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * The live side of an in-process event log (both adapters of `EventLog` use it): what is published goes to the
 * task's subscribers and to the observers of every task. Records enter typed here (`asTaskEvent`); an event keeps
 * its identity from the store to every subscriber (the SSE fan-out frames it once, keyed by the object).
 * A cross-process adapter (Redis) replaces it with its own subscription.
 */
export class LiveFeed {
  private readonly everything = new Subject<TaskEvent>();
  /** One Subject per watched task, so an event reaches its own watchers without passing every other task's. */
  private readonly perTask = new Map<string, Subject<TaskEvent>>();
  private feeds = 0;
  private ended = false;

  /** Publishes `records` in order; returns them typed. */
  publish(records: readonly TaskEventRecord[]): TaskEvent[] {
    const events = records.map(asTaskEvent);
    for (const e of events) {
      this.everything.next(e);
      this.perTask.get(e.taskId)?.next(e);
    }
    return events;
  }

  /** The task's events published from now on; completes at once when the feed has closed. */
  forTask(taskId: string): Observable<TaskEvent> {
    return new Observable<TaskEvent>((subscriber) => {
      if (this.ended) {
        subscriber.complete();
        return undefined;
      }
      this.feeds++;
      let feed = this.perTask.get(taskId);
      if (!feed) this.perTask.set(taskId, (feed = new Subject<TaskEvent>()));
      const sub = feed.subscribe(subscriber);
      return () => {
        this.feeds--;
        sub.unsubscribe();
        if (!feed.observed) this.perTask.delete(taskId);
      };
    });
  }

  /** Every published event of every task (not counted as a live feed). */
  all(): Observable<TaskEvent> {
    return this.everything.asObservable();
  }

  /** Per-task subscriptions open now. */
  get count(): number {
    return this.feeds;
  }

  /** Completes every subscription (later ones complete at once); returns how many per-task ones were open. */
  close(): number {
    const open = this.feeds;
    this.ended = true;
    this.everything.complete();
    for (const feed of this.perTask.values()) feed.complete();
    this.perTask.clear();
    return open;
  }
}
