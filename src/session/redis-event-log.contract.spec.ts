import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { describeEventLogContract } from './event-log.contract';
import { RedisEventLog } from './redis-event-log';
import { RedisTaskStore } from './redis-task-store';

describeWithRedis('RedisEventLog contract', (url) => {
  describeEventLogContract('Redis (one stream per task, pub/sub live side)', () => {
    const prefix = uniquePrefix('event-log');
    const log = new RedisEventLog({ url, prefix, name: prefix });
    const store = new RedisTaskStore(log);
    return {
      log,
      addTask: async (taskId) => {
        await store.createTask({
          taskId,
          canvasPath: 'Biology/cells.canvas',
          maxConcurrent: 1,
          timeoutMs: 60_000,
          groups: [],
          createdAt: '2026-11-27T00:00:00.000Z',
        });
        await store.transition(taskId, 'running');
      },
      store: (taskId, drafts) => log.insert(taskId, drafts),
      finish: async (taskId) => {
        await store.transition(taskId, 'completed');
      },
      close: async () => {
        await log.shutdown();
        await deletePrefix(url, prefix);
      },
    };
  });
});
