import {
  accountOf,
  type BudgetAccount,
  BudgetLedger,
  type BudgetReservation,
  microUsd,
} from './budget-ledger';

/** `BudgetLedger` in memory, for unit tests and a host without a database: per task, spent and open reservations. */
export class InMemoryBudgetLedger extends BudgetLedger {
  private readonly tasks = new Map<string, { spent: number; reservations: Map<string, number> }>();

  reserve(taskId: string, key: string, amountUsd: number, limitUsd: number): Promise<BudgetReservation> {
    const t = this.task(taskId);
    const amount = microUsd(amountUsd, 'up');
    const granted =
      t.reservations.has(key) || t.spent + this.reserved(t) + amount <= microUsd(limitUsd, 'nearest');
    if (granted && !t.reservations.has(key)) t.reservations.set(key, amount);
    return Promise.resolve({ granted, account: accountOf(t.spent, this.reserved(t)) });
  }

  settle(taskId: string, key: string, costUsd: number): Promise<BudgetAccount> {
    const t = this.task(taskId);
    if (t.reservations.delete(key)) t.spent += microUsd(costUsd, 'nearest');
    return Promise.resolve(accountOf(t.spent, this.reserved(t)));
  }

  account(taskId: string): Promise<BudgetAccount> {
    const t = this.tasks.get(taskId);
    return Promise.resolve(t ? accountOf(t.spent, this.reserved(t)) : accountOf(0, 0));
  }

  private task(taskId: string): { spent: number; reservations: Map<string, number> } {
    let t = this.tasks.get(taskId);
    if (!t) this.tasks.set(taskId, (t = { spent: 0, reservations: new Map() }));
    return t;
  }

  private reserved(t: { reservations: Map<string, number> }): number {
    let sum = 0;
    for (const amount of t.reservations.values()) sum += amount;
    return sum;
  }
}
