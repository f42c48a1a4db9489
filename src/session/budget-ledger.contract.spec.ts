import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { SqliteDatabase } from '../database';
import { describeBudgetLedgerContract } from './budget-ledger.contract';
import { InMemoryBudgetLedger } from './in-memory-budget-ledger';
import { SqliteBudgetLedger } from './sqlite-budget-ledger';

describeBudgetLedgerContract('SqliteBudgetLedger (real SQLite file)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'budget-ledger-contract-'));
  const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const db = new SqliteDatabase(resolveOptions({ vaultRoot: dir, dataDir: dir }));
  return {
    ledger: new SqliteBudgetLedger(db),
    // another provider instance on the same database (statements of its own)
    another: () => new SqliteBudgetLedger(db),
    close: () => {
      db.onApplicationShutdown();
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeBudgetLedgerContract('InMemoryBudgetLedger', () => ({
  ledger: new InMemoryBudgetLedger(),
  close: () => undefined,
}));
