import { resolveOptions } from '../config';
import type { TaskStore, TaskEventRecord, TaskStatus } from '../session';
import { TaskEventBus } from './task-event-bus';
import { type SseMessage, TaskEventStream } from './task-event-stream';

const TASK = 'task-1';

describe('TaskEventStream (the in-process Observable of a task’s events)', () => {
  let events: TaskEventRecord[];
  let status: TaskStatus;
  let bus: TaskEventBus;
  let streams: TaskEventStream;
  const append = (type: string): TaskEventRecord => {
    const e = { id: events.length + 1, taskId: TASK, type, timestamp: '2026-11-27T00:00:00.000Z', data: {} };
    events.push(e);
    return e;
  };
  const ids = (received: SseMessage[]) => received.flatMap((m) => ('id' in m ? [Number(m.id)] : []));

  beforeEach(() => {
    events = [];
    status = 'running';
    bus = new TaskEventBus();
    const store = {
      eventsAfter: (_task: string, after: number, limit = Infinity) =>
        events.filter((e) => e.id > after).slice(0, limit),
      taskStatus: () => status,
    } as unknown as TaskStore;
    streams = new TaskEventStream(store, bus, resolveOptions({ vaultRoot: '/v', dataDir: '/d' }));
  });
  afterEach(() => bus.close());

  it('replays the log after the id, follows live events, fills a gap from the log, completes after session_completed', () => {
    append('progress_update');
    append('task_completed');
    const received: SseMessage[] = [];
    let completed = false;
    streams.open(TASK, 1).subscribe({ next: (m) => received.push(m), complete: () => (completed = true) });
    expect(received[0]).toEqual({ comment: 'stream open' });
    expect(ids(received)).toEqual([2]);
    append('task_completed'); // stored, never published
    bus.publish([append('task_failed')]);
    expect(ids(received)).toEqual([2, 3, 4]);
    bus.publish([events[1]]); // a duplicate is dropped
    bus.publish([append('session_completed')]);
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

  it('replays a finished task and completes, also when asked to start past its end', () => {
    append('task_completed');
    append('session_completed');
    status = 'completed';
    const all: SseMessage[] = [];
    let completions = 0;
    streams.open(TASK, 0).subscribe({ next: (m) => all.push(m), complete: () => completions++ });
    streams.open(TASK, 5).subscribe({ complete: () => completions++ });
    expect(ids(all)).toEqual([1, 2]);
    expect(completions).toBe(2);
  });
});
