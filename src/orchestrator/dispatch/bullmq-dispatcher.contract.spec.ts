import { deletePrefix, describeWithRedis, uniquePrefix } from '../../../test/support/redis';
import { BullmqDispatcher } from './bullmq-dispatcher';
import { describeDispatcherContract } from './dispatcher.contract';
import type { Dispatcher } from './dispatcher';

describeWithRedis('BullmqDispatcher', (url) => {
  const prefixes = new Map<Dispatcher, string>();

  describeDispatcherContract(
    'BullmqDispatcher',
    async ({ capacity, policy }) => {
      const prefix = uniquePrefix('dispatch');
      const dispatcher = new BullmqDispatcher({
        redisUrl: url,
        prefix,
        capacity,
        policy,
        instanceId: 'contract',
        lockDurationMs: 1_000,
        stalledIntervalMs: 500,
      });
      prefixes.set(dispatcher, prefix);
      await dispatcher.start();
      return dispatcher;
    },
    async (dispatcher) => {
      await dispatcher.close(0, new Error('the test is over'));
      await deletePrefix(url, prefixes.get(dispatcher) as string);
      prefixes.delete(dispatcher);
    },
    // a job holds its global slot in the queue until it ends
    { releasesAgentSlotsEarly: false },
  );
});
