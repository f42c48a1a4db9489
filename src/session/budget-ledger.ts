/** A budgeted task's money as its ledger holds it: spent (actual usage) and reserved (nodes running now), in USD. */
export interface BudgetAccount {
  spentUsd: number;
  reservedUsd: number;
}

/** What a reservation found: granted (or refused) and the account after it. */
export interface BudgetReservation {
  granted: boolean;
  account: BudgetAccount;
}

/**
 * Port: the reservation ledger of budgeted tasks (`budget_usd`). Before a node's agent call its expected cost is
 * reserved — granted only while spent + reserved + that cost stays within the limit, checked and recorded in one
 * atomic step, so the processes of the distributed engine never overspend together — and after the call the
 * reservation is settled to the usage's actual cost (released, at no cost, when nothing was billed). Amounts are
 * kept in whole micro-dollars (reservations rounded up, costs to the nearest). Adapters: SQLite (embedded engine),
 * Redis (distributed engine, one Lua script per step), in-memory (unit tests); every adapter passes
 * `budget-ledger.contract.ts`.
 */
export abstract class BudgetLedger {
  /**
   * Reserves `amountUsd` for `key` (one node of the task) if spent + reserved + amount ≤ `limitUsd`. A key with an
   * open reservation is granted again without reserving twice (a job run again after a crash).
   */
  abstract reserve(
    taskId: string,
    key: string,
    amountUsd: number,
    limitUsd: number,
  ): Promise<BudgetReservation>;
  /**
   * Closes `key`'s open reservation and adds `costUsd` to the spent amount. A key without an open reservation
   * changes nothing (a settlement sent twice counts once).
   */
  abstract settle(taskId: string, key: string, costUsd: number): Promise<BudgetAccount>;
  /** Closes `key`'s open reservation at no cost (the node failed before anything was billed). */
  release(taskId: string, key: string): Promise<BudgetAccount> {
    return this.settle(taskId, key, 0);
  }
  /** The task's account (zeros for a task that never reserved). */
  abstract account(taskId: string): Promise<BudgetAccount>;
}

/** USD → whole micro-dollars: a reservation rounds up (never reserves less than expected), a cost to the nearest. */
export function microUsd(usd: number, round: 'up' | 'nearest'): number {
  const micro = usd * 1e6;
  // a float product such as 0.1 * 1e6 = 100000.00000000001 is not rounded up to the next micro-dollar
  return Math.max(0, round === 'up' ? Math.ceil(micro - 1e-6) : Math.round(micro));
}

/** The account in USD from micro-dollars. */
export function accountOf(spentMicro: number, reservedMicro: number): BudgetAccount {
  return { spentUsd: spentMicro / 1e6, reservedUsd: reservedMicro / 1e6 };
}
