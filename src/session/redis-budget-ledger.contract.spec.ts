import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { describeBudgetLedgerContract } from './budget-ledger.contract';
import { RedisBudgetLedger } from './redis-budget-ledger';
import { RedisEventLog } from './redis-event-log';

describeWithRedis('RedisBudgetLedger contract', (url) => {
  describeBudgetLedgerContract('RedisBudgetLedger (one hash per task, Lua)', () => {
    const prefix = uniquePrefix('budget');
    const logs = [new RedisEventLog({ url, prefix, name: prefix })];
    return {
      ledger: new RedisBudgetLedger(logs[0]),
      // another process: its own connection to the same Redis and prefix
      another: () => {
        logs.push(new RedisEventLog({ url, prefix, name: `${prefix}-${logs.length}` }));
        return new RedisBudgetLedger(logs[logs.length - 1]);
      },
      close: async () => {
        await Promise.all(logs.map((l) => l.shutdown()));
        await deletePrefix(url, prefix);
      },
    };
  });
});
