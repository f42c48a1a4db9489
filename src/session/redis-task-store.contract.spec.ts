import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { RedisEventLog } from './redis-event-log';
import { RedisTaskStore } from './redis-task-store';
import { describeTaskStoreContract } from './task-store.contract';

describeWithRedis('RedisTaskStore contract', (url) => {
  describeTaskStoreContract('RedisTaskStore (Lua scripts)', () => {
    const prefix = uniquePrefix('task-store');
    const events = new RedisEventLog({ url, prefix, name: prefix });
    return {
      store: new RedisTaskStore(events),
      events,
      close: async () => {
        await events.shutdown();
        await deletePrefix(url, prefix);
      },
    };
  });
});
