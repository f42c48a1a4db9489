import type { Observable } from 'rxjs';
import { type EventLog, REPLAY_PAGE } from './event-log';
import { TaskNotFoundError } from './task.errors';
import type { EventDraft } from './task-store';
import { taskEvent, type TaskEvent } from './task-events';
import type { TaskEventRecord } from './task.types';

/** One empty event log to test, with what the contract needs to arrange around it. */
export interface EventLogUnderTest {
  log: EventLog;
  /** Creates a running task (the log refuses events of a task it does not know). */
  addTask(taskId: string): void | Promise<void>;
  /** Stores events without publishing them, as a `TaskStore` operation does before it hands them to `publish`. */
  store(taskId: string, drafts: readonly EventDraft[]): TaskEventRecord[] | Promise<TaskEventRecord[]>;
  /** Gives the task a terminal status. */
  finish(taskId: string): void | Promise<void>;
  close(): void | Promise<void>;
}

const T0 = '2026-11-27T00:00:00.000Z';

/** A valid event whose payload carries `n` (to tell events apart). */
const resumed = (n: number): EventDraft =>
  taskEvent('resumed', T0, { resume_count: n, completed_nodes: 0, failed_nodes: 0, remaining_nodes: 0 });
const completed = (): EventDraft =>
  taskEvent('session_completed', T0, {
    status: 'completed',
    total_duration: 1,
    success_count: 1,
    failure_count: 0,
    performance_metrics: {
      total_duration_seconds: 1,
      average_duration_per_node: 1,
      parallel_efficiency: 1,
      peak_concurrent: 1,
    },
  });

/** What a subscription received, and whether it ended. */
interface Received {
  events: TaskEvent[];
  ids: () => number[];
  completed: boolean;
  error?: unknown;
  unsubscribe(): void;
}

function receive(source: Observable<TaskEvent>): Received {
  const received: Received = {
    events: [],
    ids: () => received.events.map((e) => e.id),
    completed: false,
    unsubscribe: () => sub.unsubscribe(),
  };
  const sub = source.subscribe({
    next: (e) => received.events.push(e),
    complete: () => (received.completed = true),
    error: (err: unknown) => (received.error = err),
  });
  return received;
}

/**
 * Lets pending reads and the work they trigger run: 200 turns of the event loop, or, given a condition, until
 * `done()` holds (within a generous bound: a network adapter's reads take many turns on a loaded machine).
 */
async function settle(done?: () => boolean): Promise<void> {
  for (let turn = 0; turn < 200 && !done?.(); turn++) await new Promise((r) => setImmediate(r));
  for (const until = Date.now() + 10_000; done && !done() && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 2));
  }
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * The behaviour every `EventLog` adapter shares, written once: a spec file calls it with a factory of empty logs
 * (`src/session/event-log.contract.spec.ts` runs it for SQLite on a real file and for the in-memory one).
 */
export function describeEventLogContract(
  name: string,
  make: () => EventLogUnderTest | Promise<EventLogUnderTest>,
): void {
  describe(`EventLog contract: ${name}`, () => {
    let subject: EventLogUnderTest;
    let log: EventLog;

    beforeEach(async () => {
      subject = await make();
      log = subject.log;
      await subject.addTask('t1');
      await subject.addTask('t2');
    });
    afterEach(async () => {
      log.close();
      await subject.close();
    });

    describe('append / after', () => {
      it('numbers events 1, 2, 3 … per task, independently, with no gap under concurrent appends', async () => {
        const appends = Array.from({ length: 40 }, (_, i) =>
          log.append(i % 3 === 0 ? 't2' : 't1', [resumed(i), resumed(i)].slice(0, 1 + (i % 2))),
        );
        const results = await Promise.all(appends);
        for (const batch of results) {
          // one append's events are consecutive
          expect(batch.map((e) => e.id)).toEqual(range(batch[0].id, batch[0].id + batch.length - 1));
        }
        const t1 = results.flat().filter((e) => e.taskId === 't1');
        const t2 = results.flat().filter((e) => e.taskId === 't2');
        expect(t1.map((e) => e.id).sort((a, b) => a - b)).toEqual(range(1, t1.length));
        expect(t2.map((e) => e.id).sort((a, b) => a - b)).toEqual(range(1, t2.length));
        expect((await log.after('t1', 0)).map((e) => e.id)).toEqual(range(1, t1.length));
        expect((await log.after('t2', 0)).map((e) => e.id)).toEqual(range(1, t2.length));
        // what append returned is what is stored
        expect(await log.after('t1', 0)).toEqual([...t1].sort((a, b) => a.id - b.id));
      });

      it('continues the ids of events a store stored itself', async () => {
        await subject.store('t1', [resumed(1), resumed(2)]);
        expect((await log.append('t1', [resumed(3)]))[0].id).toBe(3);
      });

      it('reads the events after an id, in order, at most a limit', async () => {
        for (let i = 1; i <= 10; i++) await log.append('t1', [resumed(i)]);
        expect((await log.after('t1', 7)).map((e) => e.id)).toEqual([8, 9, 10]);
        expect((await log.after('t1', 2, 3)).map((e) => e.id)).toEqual([3, 4, 5]);
        expect(await log.after('t1', 10)).toEqual([]);
        expect(await log.after('t1', 4, 1)).toEqual([{ id: 5, taskId: 't1', ...resumed(5) }]);
        expect(await log.after('t2', 0)).toEqual([]);
        expect(await log.after('nobody', 0)).toEqual([]);
      });

      it('round-trips event data as JSON, not as the object handed in', async () => {
        const draft = taskEvent('error', T0, {
          error_type: 'EXECUTION_ERROR',
          message: '导数 ∂',
          recoverable: false,
        });
        await log.append('t1', [draft]);
        draft.data.message = 'changed afterwards';
        expect((await log.after('t1', 0))[0].data).toEqual({
          error_type: 'EXECUTION_ERROR',
          message: '导数 ∂',
          recoverable: false,
        });
      });

      it('refuses an unknown task, and an event outside the vocabulary (storing nothing)', async () => {
        await expect(log.append('ghost', [resumed(1)])).rejects.toThrow(TaskNotFoundError);
        await expect(
          log.append('t1', [resumed(1), { type: 'not_an_event', timestamp: T0, data: {} }]),
        ).rejects.toThrow(TypeError);
        expect(await log.after('t1', 0)).toEqual([]);
      });
    });

    describe('live', () => {
      it('gets only what is published from now on, for its task; all() gets every task', async () => {
        await log.append('t1', [resumed(1)]);
        const live = receive(log.live('t1'));
        const all = receive(log.all());
        await log.append('t1', [resumed(2), resumed(3)]);
        await log.append('t2', [resumed(1)]);
        const stored = await subject.store('t1', [resumed(4)]);
        await settle();
        expect(live.ids()).toEqual([2, 3]); // stored alone is not published
        log.publish(stored);
        expect(live.ids()).toEqual([2, 3, 4]);
        expect(live.events[2]).toEqual({ id: 4, taskId: 't1', ...resumed(4) });
        expect(all.events.map((e) => `${e.taskId}:${e.id}`)).toEqual(['t1:2', 't1:3', 't2:1', 't1:4']);
        live.unsubscribe();
        all.unsubscribe();
      });

      it('counts one live feed per subscription, until it ends', () => {
        expect(log.liveFeedCount).toBe(0);
        const a = receive(log.live('t1'));
        const b = receive(log.live('t1'));
        const c = receive(log.live('t2'));
        const all = receive(log.all());
        expect(log.liveFeedCount).toBe(3);
        a.unsubscribe();
        c.unsubscribe();
        expect(log.liveFeedCount).toBe(1);
        b.unsubscribe();
        all.unsubscribe();
        expect(log.liveFeedCount).toBe(0);
      });

      it('close() ends every feed (follow too) and says how many were open; later ones end at once', async () => {
        const a = receive(log.live('t1'));
        const all = receive(log.all());
        const followed = receive(log.follow('t2', 0));
        await settle();
        expect(log.close()).toBe(2);
        expect([a.completed, all.completed, followed.completed]).toEqual([true, true, true]);
        expect(log.liveFeedCount).toBe(0);
        const late = receive(log.live('t1'));
        const lateFollow = receive(log.follow('t1', 0));
        expect(late.completed).toBe(true);
        await settle(() => lateFollow.completed);
        expect(lateFollow.completed).toBe(true);
        expect(log.liveFeedCount).toBe(0);
      });
    });

    describe('follow (replay, then live)', () => {
      it('replays the log after the id, then follows live events, each once and in order', async () => {
        await log.append('t1', [resumed(1), resumed(2), resumed(3)]);
        const followed = receive(log.follow('t1', 1));
        await settle(() => followed.events.length === 2);
        expect(followed.ids()).toEqual([2, 3]);
        expect(log.liveFeedCount).toBe(1);
        await log.append('t1', [resumed(4)]);
        await log.append('t2', [resumed(1)]);
        await settle(() => followed.events.length === 3);
        log.publish(await log.after('t1', 1, 1)); // published again: not sent twice
        await log.append('t1', [resumed(5)]);
        await settle(() => followed.events.length === 4);
        expect(followed.ids()).toEqual([2, 3, 4, 5]);
        expect(followed.events.map((e) => e.taskId)).toEqual(['t1', 't1', 't1', 't1']);
        expect(followed.completed).toBe(false);
        followed.unsubscribe();
        expect(log.liveFeedCount).toBe(0);
      });

      it('fills a gap in the live feed from the log', async () => {
        const followed = receive(log.follow('t1', 0));
        await settle();
        await subject.store('t1', [resumed(1), resumed(2)]); // stored, never published
        await log.append('t1', [resumed(3)]);
        await settle(() => followed.events.length === 3);
        expect(followed.ids()).toEqual([1, 2, 3]);
      });

      it('misses nothing and doubles nothing appended while it replays a log of several pages', async () => {
        const stored = REPLAY_PAGE * 2 + 500;
        for (let i = 0; i < stored; i += 500) {
          await subject.store('t1', range(i + 1, i + 500).map(resumed));
        }
        // appends land while each page read is under way: before, during and after the read of the rows
        const after = log.after.bind(log);
        let appended = 0;
        let reading = 0;
        const spy = jest.spyOn(log, 'after').mockImplementation(async (taskId, afterId, limit) => {
          reading++;
          const early = log.append('t1', [resumed(-1)]);
          const page = await after(taskId, afterId, limit);
          await early;
          await log.append('t1', [resumed(-2)]);
          appended += 2;
          reading--;
          return page;
        });
        const followed = receive(log.follow('t1', 0));
        await settle(() => appended >= 8);
        spy.mockRestore();
        await settle(() => reading === 0); // a read that began before the restore still appends its two
        await log.append('t1', [resumed(-3)]);
        const total = stored + appended + 1;
        await settle(() => followed.events.length >= total);
        expect(followed.ids()).toEqual(range(1, total));
        expect(followed.error).toBeUndefined();
      });

      it('completes after session_completed, live or replayed', async () => {
        const live = receive(log.follow('t1', 0));
        await settle();
        await log.append('t1', [resumed(1), completed()]);
        await settle(() => live.completed);
        expect(live.ids()).toEqual([1, 2]);
        expect(live.completed).toBe(true);
        expect(log.liveFeedCount).toBe(0);
        // still running as far as its status goes: the log's session_completed ends the replay
        const replayed = receive(log.follow('t1', 0));
        await settle(() => replayed.completed);
        expect(replayed.ids()).toEqual([1, 2]);
        expect(replayed.completed).toBe(true);
      });

      it('completes for a finished task once its log is read, also when asked to start past its end', async () => {
        await log.append('t1', [resumed(1), resumed(2)]);
        await subject.finish('t1');
        const all = receive(log.follow('t1', 0));
        const past = receive(log.follow('t1', 5));
        await settle(() => all.completed && past.completed);
        expect(all.ids()).toEqual([1, 2]);
        expect(all.completed).toBe(true);
        expect(past.ids()).toEqual([]);
        expect(past.completed).toBe(true);
        expect(await log.finished('t1')).toBe(true);
        expect(await log.finished('t2')).toBe(false);
      });

      it('keeps following a running task whose log is read (a start past its end waits for the end)', async () => {
        await log.append('t1', [resumed(1)]);
        const past = receive(log.follow('t1', 5));
        await settle();
        expect(past.completed).toBe(false);
        await log.append('t1', [resumed(2), completed()]);
        await settle(() => past.completed);
        expect(past.ids()).toEqual([]);
        expect(past.completed).toBe(true);
      });

      it('ends with the error when the log cannot be read', async () => {
        jest.spyOn(log, 'after').mockRejectedValue(new Error('the database connection is not open'));
        const followed = receive(log.follow('t1', 0));
        await settle(() => followed.error !== undefined);
        expect(followed.error).toEqual(new Error('the database connection is not open'));
        expect(log.liveFeedCount).toBe(0);
      });
    });
  });
}
