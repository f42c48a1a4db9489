import type { MemoryEvent, MemoryEventDraft, MemoryOutbox } from './memory-outbox';

/** One outbox to test, empty, and how to dispose of it. */
export interface MemoryOutboxUnderTest {
  outbox: MemoryOutbox;
  close(): void | Promise<void>;
}

const draft = (eventId: string, overrides: Partial<MemoryEventDraft> = {}): MemoryEventDraft => ({
  eventId,
  taskId: 't1',
  canvasPath: 'Biology/cells.canvas',
  nodeId: 'n1',
  agentType: 'oral-explanation',
  memoryType: 'explanation_generated',
  concept: 'Cell',
  createdAt: '2026-11-26T10:00:00.000Z',
  payload: { file_path: 'x.md', duration_ms: 12, group_id: 7 },
  ...overrides,
});

const at = (second: number): string => new Date(Date.UTC(2026, 10, 26, 10, 0, second)).toISOString();

const ids = (events: readonly MemoryEvent[]): string[] => events.map((e) => e.eventId);

/**
 * The behaviour every `MemoryOutbox` adapter shares, written once: a spec file calls it with a factory of empty
 * outboxes (`src/memory/memory-outbox.contract.spec.ts` runs it for SQLite on a real file and for the in-memory one).
 */
export function describeMemoryOutboxContract(
  name: string,
  make: () => MemoryOutboxUnderTest | Promise<MemoryOutboxUnderTest>,
): void {
  describe(`MemoryOutbox contract: ${name}`, () => {
    let subject: MemoryOutboxUnderTest;
    let outbox: MemoryOutbox;

    beforeEach(async () => {
      subject = await make();
      outbox = subject.outbox;
    });

    afterEach(async () => {
      await subject.close();
    });

    it('appends an event and reads it back, pending and never attempted', async () => {
      await expect(outbox.append(draft('e1'))).resolves.toBe(true);
      await expect(outbox.forTask('t1')).resolves.toEqual([
        { ...draft('e1'), deliveredAt: null, attempts: 0 },
      ]);
    });

    it('is idempotent by event id: a replay stores nothing and keeps the first version', async () => {
      await expect(outbox.append(draft('e1'))).resolves.toBe(true);
      await expect(outbox.append(draft('e1', { concept: 'changed' }))).resolves.toBe(false);
      const events = await outbox.forTask('t1');
      expect(events).toHaveLength(1);
      expect(events[0].concept).toBe('Cell');
      await expect(outbox.counts()).resolves.toEqual({ pending: 1, delivered: 0 });
    });

    it('keeps a null node id (canvas-level events)', async () => {
      await outbox.append(draft('e1', { nodeId: null, memoryType: 'canvas_opened' }));
      expect((await outbox.forTask('t1'))[0]).toMatchObject({ nodeId: null, memoryType: 'canvas_opened' });
    });

    it('hands out copies: changing what it returned or what was appended changes nothing stored', async () => {
      const appended = draft('e1');
      await outbox.append(appended);
      appended.concept = 'mutated';
      appended.payload.duration_ms = -1;
      const [read] = await outbox.forTask('t1');
      read.payload.duration_ms = -2;
      read.attempts = 99;
      const [pending] = await outbox.pendingBatch(10);
      pending.deliveredAt = 'mutated';
      await expect(outbox.forTask('t1')).resolves.toEqual([
        { ...draft('e1'), deliveredAt: null, attempts: 0 },
      ]);
    });

    it('lists only the given task, in delivery order (creation time, then id)', async () => {
      await outbox.append(draft('late', { createdAt: at(5) }));
      await outbox.append(draft('b-same', { createdAt: at(1) }));
      await outbox.append(draft('a-same', { createdAt: at(1) }));
      await outbox.append(draft('other-task', { taskId: 't2' }));
      expect(ids(await outbox.forTask('t1'))).toEqual(['a-same', 'b-same', 'late']);
      expect(ids(await outbox.forTask('t2'))).toEqual(['other-task']);
      await expect(outbox.forTask('none')).resolves.toEqual([]);
    });

    it('gives the oldest pending events in delivery order, at most the limit, across tasks', async () => {
      for (const [id, second, task] of [
        ['e5', 5, 't1'],
        ['e1', 1, 't2'],
        ['e4', 4, 't1'],
        ['e2', 2, 't1'],
        ['e3', 3, 't2'],
      ] as const) {
        await outbox.append(draft(id, { createdAt: at(second), taskId: task }));
      }
      expect(ids(await outbox.pendingBatch(2))).toEqual(['e1', 'e2']);
      expect(ids(await outbox.pendingBatch(10))).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
      await expect(outbox.pendingBatch(0)).resolves.toEqual([]);
    });

    it('marks events delivered: they leave the pending batch, count one attempt more, and keep the time', async () => {
      for (const i of [1, 2, 3]) await outbox.append(draft(`e${i}`, { createdAt: at(i) }));
      await expect(outbox.markDelivered(['e1', 'e2'], '2026-11-26T11:00:00.000Z')).resolves.toBe(2);
      expect(ids(await outbox.pendingBatch(10))).toEqual(['e3']);
      await expect(outbox.counts()).resolves.toEqual({ pending: 1, delivered: 2 });
      expect((await outbox.forTask('t1')).map((e) => [e.eventId, e.deliveredAt, e.attempts])).toEqual([
        ['e1', '2026-11-26T11:00:00.000Z', 1],
        ['e2', '2026-11-26T11:00:00.000Z', 1],
        ['e3', null, 0],
      ]);
    });

    it('leaves a delivered event as it was when marked again, and ignores unknown ids', async () => {
      await outbox.append(draft('e1'));
      await outbox.markDelivered(['e1'], 'first');
      await expect(outbox.markDelivered(['e1', 'unknown', 'e1'], 'second')).resolves.toBe(0);
      expect((await outbox.forTask('t1'))[0]).toMatchObject({ deliveredAt: 'first', attempts: 1 });
      await expect(outbox.markDelivered([], 'third')).resolves.toBe(0);
    });

    it('counts failed attempts on pending events only, and keeps them pending', async () => {
      await outbox.append(draft('e1', { createdAt: at(1) }));
      await outbox.append(draft('e2', { createdAt: at(2) }));
      await outbox.markDelivered(['e2'], 'done');
      await outbox.recordFailure(['e1', 'e2', 'unknown'], 'connect ECONNREFUSED');
      await outbox.recordFailure(['e1'], 'x'.repeat(5000));
      expect((await outbox.forTask('t1')).map((e) => [e.eventId, e.deliveredAt, e.attempts])).toEqual([
        ['e1', null, 2],
        ['e2', 'done', 1],
      ]);
      expect(ids(await outbox.pendingBatch(10))).toEqual(['e1']);
      // a delivery after failures counts them all
      await outbox.markDelivered(['e1'], 'later');
      expect((await outbox.forTask('t1'))[0]).toMatchObject({ deliveredAt: 'later', attempts: 3 });
    });

    it('counts pending and delivered events, and knows when the oldest pending one was created', async () => {
      await expect(outbox.counts()).resolves.toEqual({ pending: 0, delivered: 0 });
      await expect(outbox.oldestPendingCreatedAt()).resolves.toBeNull();
      await outbox.append(draft('e2', { createdAt: at(2) }));
      await outbox.append(draft('e1', { createdAt: at(1) }));
      await outbox.append(draft('e3', { createdAt: at(3) }));
      await expect(outbox.oldestPendingCreatedAt()).resolves.toBe(at(1));
      await outbox.markDelivered(['e1'], 'now');
      await expect(outbox.counts()).resolves.toEqual({ pending: 2, delivered: 1 });
      await expect(outbox.oldestPendingCreatedAt()).resolves.toBe(at(2));
      await outbox.markDelivered(['e2', 'e3'], 'now');
      await expect(outbox.counts()).resolves.toEqual({ pending: 0, delivered: 3 });
      await expect(outbox.oldestPendingCreatedAt()).resolves.toBeNull();
    });

    it('keeps events apart when many are appended at once', async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => outbox.append(draft(`e${i % 25}`, { nodeId: `n${i % 25}` }))),
      );
      expect(results.filter(Boolean)).toHaveLength(25);
      await expect(outbox.counts()).resolves.toEqual({ pending: 25, delivered: 0 });
    });
  });
}
