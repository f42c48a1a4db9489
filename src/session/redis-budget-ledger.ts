import type { Redis } from 'ioredis';
import {
  accountOf,
  type BudgetAccount,
  BudgetLedger,
  type BudgetReservation,
  microUsd,
} from './budget-ledger';
import type { RedisEventLog } from './redis-event-log';
import { type RedisSessionKeys, runScript } from './redis-session-layout';

/**
 * `BudgetLedger` on Redis, for the distributed engine: one hash per task (`P:task:<id>:budget`: `s` spent, `R`
 * reserved, `r:<key>` each open reservation, in micro-dollars). Reserve and settle are one Lua script each, so the
 * check and the write are one step however many processes reserve for the same task at once; the hash goes with its
 * task when it expires. Runs on the `RedisEventLog`'s command connection: the log owns and quits it.
 */
export class RedisBudgetLedger extends BudgetLedger {
  private readonly redis: Redis;
  private readonly keys: RedisSessionKeys;

  constructor(events: RedisEventLog) {
    super();
    this.redis = events.redis;
    this.keys = events.keys;
  }

  async reserve(
    taskId: string,
    key: string,
    amountUsd: number,
    limitUsd: number,
  ): Promise<BudgetReservation> {
    const [granted, spent, reserved] = (await runScript(
      this.redis,
      'cbBudgetReserve',
      [this.keys.budget(taskId)],
      [key, String(microUsd(amountUsd, 'up')), String(microUsd(limitUsd, 'nearest'))],
    )) as [number, number, number];
    return { granted: granted === 1, account: accountOf(spent, reserved) };
  }

  async settle(taskId: string, key: string, costUsd: number): Promise<BudgetAccount> {
    const [spent, reserved] = (await runScript(
      this.redis,
      'cbBudgetSettle',
      [this.keys.budget(taskId)],
      [key, String(microUsd(costUsd, 'nearest'))],
    )) as [number, number];
    return accountOf(spent, reserved);
  }

  async account(taskId: string): Promise<BudgetAccount> {
    const [spent, reserved] = await this.redis.hmget(this.keys.budget(taskId), 's', 'R');
    return accountOf(Number(spent ?? 0), Number(reserved ?? 0));
  }
}
