import type { BudgetLedger } from './budget-ledger';

/** One ledger to test, empty, and how to dispose of it. */
export interface BudgetLedgerUnderTest {
  ledger: BudgetLedger;
  /** A second handle on the same data (another process of the distributed engine, or a restart); absent in memory. */
  another?: () => BudgetLedger | Promise<BudgetLedger>;
  close(): void | Promise<void>;
}

/**
 * The behaviour every `BudgetLedger` adapter shares, written once: `budget-ledger.contract.spec.ts` runs it for
 * SQLite on a real file and for the in-memory one, `redis-budget-ledger.contract.spec.ts` for Redis.
 */
export function describeBudgetLedgerContract(
  name: string,
  make: () => BudgetLedgerUnderTest | Promise<BudgetLedgerUnderTest>,
): void {
  describe(`BudgetLedger contract: ${name}`, () => {
    let subject: BudgetLedgerUnderTest;
    let ledger: BudgetLedger;

    beforeEach(async () => {
      subject = await make();
      ledger = subject.ledger;
    });

    afterEach(async () => {
      await subject.close();
    });

    it('has an empty account for a task that never reserved', async () => {
      expect(await ledger.account('t')).toEqual({ spentUsd: 0, reservedUsd: 0 });
    });

    it('grants reservations while spent + reserved stays within the limit, then refuses', async () => {
      expect(await ledger.reserve('t', 'a', 0.4, 1)).toEqual({
        granted: true,
        account: { spentUsd: 0, reservedUsd: 0.4 },
      });
      expect(await ledger.reserve('t', 'b', 0.6, 1)).toEqual({
        granted: true,
        account: { spentUsd: 0, reservedUsd: 1 },
      });
      // exactly at the limit is allowed; a micro-dollar more is not
      expect(await ledger.reserve('t', 'c', 0.000001, 1)).toEqual({
        granted: false,
        account: { spentUsd: 0, reservedUsd: 1 },
      });
      expect(await ledger.account('t')).toEqual({ spentUsd: 0, reservedUsd: 1 });
    });

    it('settles a reservation to the actual cost, which may be more or less than reserved', async () => {
      await ledger.reserve('t', 'a', 0.5, 1);
      await ledger.reserve('t', 'b', 0.3, 1);
      expect(await ledger.settle('t', 'a', 0.2)).toEqual({ spentUsd: 0.2, reservedUsd: 0.3 });
      expect(await ledger.settle('t', 'b', 0.45)).toEqual({ spentUsd: 0.65, reservedUsd: 0 });
      // what is left: 0.35
      expect((await ledger.reserve('t', 'c', 0.36, 1)).granted).toBe(false);
      expect((await ledger.reserve('t', 'c', 0.35, 1)).granted).toBe(true);
    });

    it('releases a reservation at no cost', async () => {
      await ledger.reserve('t', 'a', 0.9, 1);
      expect((await ledger.reserve('t', 'b', 0.2, 1)).granted).toBe(false);
      expect(await ledger.release('t', 'a')).toEqual({ spentUsd: 0, reservedUsd: 0 });
      expect((await ledger.reserve('t', 'b', 0.2, 1)).granted).toBe(true);
    });

    it('grants a key with an open reservation again without reserving twice', async () => {
      await ledger.reserve('t', 'a', 0.5, 1);
      expect(await ledger.reserve('t', 'a', 0.5, 1)).toEqual({
        granted: true,
        account: { spentUsd: 0, reservedUsd: 0.5 },
      });
    });

    it('settles only an open reservation: a second settlement of the same key counts nothing', async () => {
      await ledger.reserve('t', 'a', 0.5, 1);
      await ledger.settle('t', 'a', 0.25);
      expect(await ledger.settle('t', 'a', 0.25)).toEqual({ spentUsd: 0.25, reservedUsd: 0 });
      expect(await ledger.settle('t', 'never', 3)).toEqual({ spentUsd: 0.25, reservedUsd: 0 });
      // a key settled before may reserve again (a node run again spends again)
      expect((await ledger.reserve('t', 'a', 0.5, 1)).granted).toBe(true);
      expect(await ledger.account('t')).toEqual({ spentUsd: 0.25, reservedUsd: 0.5 });
    });

    it('keeps tasks apart', async () => {
      await ledger.reserve('t1', 'a', 1, 1);
      expect((await ledger.reserve('t2', 'a', 1, 1)).granted).toBe(true);
      await ledger.settle('t2', 'a', 0.1);
      expect(await ledger.account('t1')).toEqual({ spentUsd: 0, reservedUsd: 1 });
      expect(await ledger.account('t2')).toEqual({ spentUsd: 0.1, reservedUsd: 0 });
    });

    it('keeps micro-dollars exact: reservations rounded up, costs to the nearest', async () => {
      // 0.1 + 0.2 in floating point is 0.30000000000000004: the ledger still fits them in 0.3
      await ledger.reserve('t', 'a', 0.1, 0.3);
      expect((await ledger.reserve('t', 'b', 0.2, 0.3)).granted).toBe(true);
      // a reservation of a fraction of a micro-dollar takes a whole one
      expect(await ledger.reserve('t2', 'a', 0.0000001, 1)).toEqual({
        granted: true,
        account: { spentUsd: 0, reservedUsd: 0.000001 },
      });
      expect(await ledger.settle('t2', 'a', 0.0000004)).toEqual({ spentUsd: 0, reservedUsd: 0 });
    });

    it('with a zero budget, grants only free nodes', async () => {
      expect((await ledger.reserve('t', 'a', 0.000001, 0)).granted).toBe(false);
      expect((await ledger.reserve('t', 'b', 0, 0)).granted).toBe(true);
    });

    it('never grants past the limit when many reservations race (all through one ledger or several handles)', async () => {
      const others = subject.another ? [await subject.another(), await subject.another()] : [ledger];
      const handles = [ledger, ...others];
      const replies = await Promise.all(
        Array.from({ length: 40 }, (_, i) => handles[i % handles.length].reserve('race', `n${i}`, 0.1, 1)),
      );
      expect(replies.filter((r) => r.granted)).toHaveLength(10);
      expect(await ledger.account('race')).toEqual({ spentUsd: 0, reservedUsd: 1 });
    });

    it('is seen alike by another handle on the same data', async () => {
      await ledger.reserve('t', 'a', 0.5, 1);
      const other = subject.another ? await subject.another() : ledger;
      expect(await other.account('t')).toEqual({ spentUsd: 0, reservedUsd: 0.5 });
      expect(await other.settle('t', 'a', 0.4)).toEqual({ spentUsd: 0.4, reservedUsd: 0 });
      expect(await ledger.account('t')).toEqual({ spentUsd: 0.4, reservedUsd: 0 });
    });
  });
}
