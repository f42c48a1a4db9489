import type { ResolvedCanvasBatchOptions } from '../config';
import type { MemoryRecallService, TaskMemoryView } from '../memory';
import { TaskMemoryController } from './task-memory.controller';
import type { TaskViewService } from './task-view.service';

const view = (over: Partial<TaskMemoryView>): TaskMemoryView => ({
  task_id: 't1',
  store: 'embedded',
  target: 'SQLite /srv/data/canvas-batch.sqlite (table memory_events)',
  store_read: 'ok',
  store_error: null,
  events: 0,
  delivered: 0,
  pending: 0,
  failing: 0,
  session_events: [],
  concepts: [],
  page: { offset: 0, limit: 100, total: 0, next_offset: null },
  ...over,
});

describe('TaskMemoryController', () => {
  const options = { vaultRoot: '/srv/vault', dataDir: '/srv/data' } as ResolvedCanvasBatchOptions;

  it('checks the task first, passes the page on, and shows no absolute server path', async () => {
    const find = jest.fn(() => Promise.resolve({}));
    const forTask = jest
      .fn()
      .mockResolvedValueOnce(view({}))
      .mockResolvedValueOnce(
        view({ store_read: 'unavailable', store_error: 'SQLITE_IOERR: /srv/data/canvas-batch.sqlite' }),
      );
    const controller = new TaskMemoryController(
      { find } as unknown as TaskViewService,
      { forTask } as unknown as MemoryRecallService,
      options,
    );
    await expect(controller.memory('t1', { offset: 2, limit: 5 })).resolves.toMatchObject({
      target: 'SQLite <DATA_DIR>/canvas-batch.sqlite (table memory_events)',
      store_error: null,
    });
    expect(find).toHaveBeenCalledWith('t1');
    expect(forTask).toHaveBeenCalledWith('t1', { offset: 2, limit: 5 });
    await expect(controller.memory('t1', {})).resolves.toMatchObject({
      store_error: 'SQLITE_IOERR: <DATA_DIR>/canvas-batch.sqlite',
    });
  });

  it('an unknown task: the lookup’s error, and the memory is not read', async () => {
    const forTask = jest.fn();
    const controller = new TaskMemoryController(
      { find: () => Promise.reject(new Error('Task t9 not found')) } as unknown as TaskViewService,
      { forTask } as unknown as MemoryRecallService,
      options,
    );
    await expect(controller.memory('t9', {})).rejects.toThrow('Task t9 not found');
    expect(forTask).not.toHaveBeenCalled();
  });
});
