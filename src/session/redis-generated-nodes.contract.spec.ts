import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { describeGeneratedNodesContract } from './generated-nodes.contract';
import { RedisEventLog } from './redis-event-log';
import { RedisGeneratedNodes } from './redis-generated-nodes';

describeWithRedis('RedisGeneratedNodes contract', (url) => {
  describeGeneratedNodesContract('RedisGeneratedNodes (one hash per canvas)', () => {
    const prefix = uniquePrefix('generated');
    const logs = [new RedisEventLog({ url, prefix, name: prefix })];
    return {
      store: new RedisGeneratedNodes(logs[0]),
      // a restarted process: its own connections to the same Redis and prefix
      reopen: () => {
        logs.push(new RedisEventLog({ url, prefix, name: `${prefix}-again` }));
        return new RedisGeneratedNodes(logs[logs.length - 1]);
      },
      close: async () => {
        await Promise.all(logs.map((l) => l.shutdown()));
        await deletePrefix(url, prefix);
      },
    };
  });
});
