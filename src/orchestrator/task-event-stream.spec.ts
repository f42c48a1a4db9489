import { resolveOptions } from '../config';
import { InMemoryEventLog, type EventDraft, type TaskEventRecord, type TaskStatus } from '../session';
import { type SseMessage, TaskEventStream } from './task-event-stream';

const TASK = 'task-1';
const T0 = '2026-11-27T00:00:00.000Z';

/** Lets the log's (async) reads and what they trigger run. */
const settle = async (): Promise<void> => {
  for (let turn = 0; turn < 20; turn++) await new Promise((r) => setImmediate(r));
};

describe('TaskEventStream (the in-process Observable of a task’s events)', () => {
  let status: TaskStatus;
  let log: InMemoryEventLog;
  let streams: TaskEventStream;
  const draft = (type: string): EventDraft => ({ type, timestamp: T0, data: {} });
  /** Stores an event without publishing it. */
  const append = (type: string): TaskEventRecord => log.insert(TASK, [draft(type)])[0];
  const ids = (received: SseMessage[]) => received.flatMap((m) => ('id' in m ? [Number(m.id)] : []));

  beforeEach(() => {
    status = 'running';
    log = new InMemoryEventLog({ taskStatus: () => Promise.resolve(status) });
    streams = new TaskEventStream(log, resolveOptions({ vaultRoot: '/v', dataDir: '/d' }));
  });
  afterEach(() => log.close());

  it('replays the log after the id, follows live events, fills a gap from the log, completes after session_completed', async () => {
    append('progress_update');
    append('task_completed');
    const received: SseMessage[] = [];
    let completed = false;
    streams.open(TASK, 1).subscribe({ next: (m) => received.push(m), complete: () => (completed = true) });
    expect(received[0]).toEqual({ comment: 'stream open' });
    await settle();
    expect(ids(received)).toEqual([2]);
    append('task_completed'); // stored, never published
    log.publish([append('task_failed')]);
    await settle();
    expect(ids(received)).toEqual([2, 3, 4]);
    log.publish(await log.after(TASK, 1, 1)); // a duplicate is dropped
    log.publish([append('session_completed')]);
    await settle();
    expect(ids(received)).toEqual([2, 3, 4, 5]);
    expect(completed).toBe(true);
    const last = received.at(-1);
    expect(last && 'data' in last && JSON.parse(last.data)).toEqual({
      type: 'session_completed',
      task_id: TASK,
      timestamp: '2026-11-27T00:00:00.000Z',
      data: {},
    });
  });

  it('replays a finished task and completes, also when asked to start past its end', async () => {
    append('task_completed');
    append('session_completed');
    status = 'completed';
    const all: SseMessage[] = [];
    let completions = 0;
    streams.open(TASK, 0).subscribe({ next: (m) => all.push(m), complete: () => completions++ });
    streams.open(TASK, 5).subscribe({ complete: () => completions++ });
    await settle();
    expect(ids(all)).toEqual([1, 2]);
    expect(completions).toBe(2);
  });
});
