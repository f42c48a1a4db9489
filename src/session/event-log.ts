import type { Observable } from 'rxjs';
import type { EventDraft } from './task-store';
import type { TaskEventRecord } from './task.types';

/**
 * Port: every task's event log — stored events with ids assigned gap-free per task (1, 2, 3, …), read back after an
 * id, and followed live. Producers never publish by hand: `append` stores and publishes, and the `TaskStore`'s
 * atomic operations that append events (outcome + its events in one step) hand what they stored to `publish`.
 * Adapters: SQLite + an in-process Subject (embedded engine), in-memory (unit tests); every adapter passes
 * `event-log.contract.ts`.
 *
 * `follow` is the one replay-then-live core: the stored log after an id, then the live events, each once and in id
 * order (a gap in the live feed is filled from the log), ending after `session_completed`. The SSE fan-out and
 * in-process consumers (`TaskEventStream.open()`) both build on it.
 */
export abstract class EventLog {
  /** Stores `drafts` as the task's next events (ids follow its last one) and publishes them. */
  abstract append(taskId: string, drafts: readonly EventDraft[]): Promise<TaskEventRecord[]>;
  /** Stored events with `id > afterId`, in id order, at most `limit`. */
  abstract after(taskId: string, afterId: number, limit?: number): Promise<TaskEventRecord[]>;
  /**
   * Makes events a `TaskStore` operation stored (in the same transaction as their outcome) visible to live
   * subscribers. An adapter whose subscribers read the log itself may do nothing.
   */
  abstract publish(records: readonly TaskEventRecord[]): void;
  /** The task's events published from now on (not the stored ones); completes when the log closes. */
  abstract live(taskId: string): Observable<TaskEventRecord>;
  /** Every task's events published from now on (observers such as metrics). */
  abstract all(): Observable<TaskEventRecord>;
  /** The replay-then-live core (see the class comment); a finished task's stream ends once its log is read. */
  abstract follow(taskId: string, afterId: number): Observable<TaskEventRecord>;
  /** Live feeds open now (one per followed task, however many clients). */
  abstract get liveFeedCount(): number;
  /** Ends every live feed (subscribers reconnect and replay later); returns how many were open. */
  abstract close(): number;
}
