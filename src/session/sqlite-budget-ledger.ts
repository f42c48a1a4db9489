import { Injectable } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import { SqliteDatabase } from '../database';
import {
  accountOf,
  type BudgetAccount,
  BudgetLedger,
  type BudgetReservation,
  microUsd,
} from './budget-ledger';
import { settled } from './live-feed';

/** The spent amount's entry; every other entry of a task is an open reservation, `r:<key>`. */
const SPENT = 's';

/**
 * `BudgetLedger` on the embedded SQLite database (`budget_ledger`, migration 8): one row per task and entry — its
 * spent amount, and each open reservation — in micro-dollars. Each step is one transaction; the rows go with their
 * task when it expires (`SqliteTaskStore.deleteExpired`).
 */
@Injectable()
export class SqliteBudgetLedger extends BudgetLedger {
  private readonly s: Record<string, Statement>;

  constructor(private readonly db: SqliteDatabase) {
    super();
    const h = db.handle;
    this.s = {
      sums: h.prepare(
        `SELECT coalesce(sum(CASE WHEN entry = '${SPENT}' THEN amount_micro_usd END), 0) AS spent,
                coalesce(sum(CASE WHEN entry <> '${SPENT}' THEN amount_micro_usd END), 0) AS reserved
         FROM budget_ledger WHERE task_id = ?`,
      ),
      get: h.prepare('SELECT amount_micro_usd FROM budget_ledger WHERE task_id = ? AND entry = ?').pluck(),
      put: h.prepare('INSERT INTO budget_ledger (task_id, entry, amount_micro_usd) VALUES (?, ?, ?)'),
      drop: h.prepare('DELETE FROM budget_ledger WHERE task_id = ? AND entry = ?'),
      spend: h.prepare(
        `INSERT INTO budget_ledger (task_id, entry, amount_micro_usd) VALUES (?, '${SPENT}', ?)
         ON CONFLICT (task_id, entry) DO UPDATE SET amount_micro_usd = amount_micro_usd + excluded.amount_micro_usd`,
      ),
    };
  }

  reserve(taskId: string, key: string, amountUsd: number, limitUsd: number): Promise<BudgetReservation> {
    return settled(() =>
      this.db.transaction((): BudgetReservation => {
        const { spent, reserved } = this.sums(taskId);
        const entry = `r:${key}`;
        if (this.s.get.get(taskId, entry) !== undefined)
          return { granted: true, account: accountOf(spent, reserved) };
        const amount = microUsd(amountUsd, 'up');
        if (spent + reserved + amount > microUsd(limitUsd, 'nearest'))
          return { granted: false, account: accountOf(spent, reserved) };
        this.s.put.run(taskId, entry, amount);
        return { granted: true, account: accountOf(spent, reserved + amount) };
      }),
    );
  }

  settle(taskId: string, key: string, costUsd: number): Promise<BudgetAccount> {
    return settled(() =>
      this.db.transaction((): BudgetAccount => {
        const entry = `r:${key}`;
        if (this.s.get.get(taskId, entry) !== undefined) {
          this.s.drop.run(taskId, entry);
          const cost = microUsd(costUsd, 'nearest');
          if (cost > 0) this.s.spend.run(taskId, cost);
        }
        const { spent, reserved } = this.sums(taskId);
        return accountOf(spent, reserved);
      }),
    );
  }

  account(taskId: string): Promise<BudgetAccount> {
    return settled(() => {
      const { spent, reserved } = this.sums(taskId);
      return accountOf(spent, reserved);
    });
  }

  private sums(taskId: string): { spent: number; reserved: number } {
    return this.s.sums.get(taskId) as { spent: number; reserved: number };
  }
}
