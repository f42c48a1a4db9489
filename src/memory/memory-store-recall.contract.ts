import { randomUUID } from 'node:crypto';
import type { MemoryEventDraft } from './memory-outbox';
import type { MemoryStore, RecalledMemoryEvent } from './memory-store';

/** One store to test, and how to dispose of it. The store may hold other tests' events (a shared Neo4j). */
export interface MemoryStoreUnderTest {
  store: MemoryStore;
  close(): void | Promise<void>;
}

const at = (ms: number): string => new Date(Date.UTC(2026, 10, 26, 10, 0, 0, ms)).toISOString();

/** A node's learning event of `taskId` (or the batch's own `canvas_opened` when `nodeId` is null). */
function event(taskId: string, eventId: string, nodeId: string | null, ms: number): MemoryEventDraft {
  return {
    eventId,
    taskId,
    canvasPath: 'Biology/cells.canvas',
    nodeId,
    agentType: nodeId === null ? 'canvas-orchestrator' : 'oral-explanation',
    memoryType: nodeId === null ? 'canvas_opened' : 'explanation_generated',
    concept: nodeId === null ? 'Biology/cells.canvas' : `Concept of ${nodeId}`,
    createdAt: at(ms),
    payload:
      nodeId === null ? { total_nodes: 3 } : { group_id: 'g1', file_path: `${nodeId}.md`, duration_ms: ms },
  };
}

/** What `recall` must give back for a delivered event. */
function recalled(e: MemoryEventDraft): RecalledMemoryEvent {
  return {
    eventId: e.eventId,
    taskId: e.taskId,
    type: e.memoryType,
    agentType: e.agentType,
    canvasPath: e.canvasPath,
    nodeId: e.nodeId,
    concept: e.concept,
    createdAt: e.createdAt,
    payload: expect.objectContaining(e.payload) as Record<string, unknown>,
  };
}

/**
 * The read side every `MemoryStore` with `recall` shares, written once: `src/memory/memory-store-recall.contract.spec.ts`
 * runs it for the embedded store (always) and for Neo4j (when NEO4J_URI is reachable).
 */
export function describeMemoryStoreRecallContract(
  name: string,
  make: () => MemoryStoreUnderTest | Promise<MemoryStoreUnderTest>,
): void {
  describe(`MemoryStore recall contract: ${name}`, () => {
    let subject: MemoryStoreUnderTest;
    let store: MemoryStore;
    /** Task ids of this test only (a shared store keeps other runs' events). */
    let t1: string;
    let t2: string;
    const recall: MemoryStore['recall'] = (query, signal) => store.recall!(query, signal);

    beforeEach(async () => {
      subject = await make();
      store = subject.store;
      t1 = randomUUID();
      t2 = randomUUID();
    });
    afterEach(() => subject.close());

    it('has a read side', () => {
      expect(typeof store.recall).toBe('function');
    });

    it('knows nothing of a task it never got', async () => {
      expect(await recall({ taskId: t1 })).toEqual([]);
      expect(await recall({ taskId: t1, nodeIds: ['n1'] })).toEqual([]);
    });

    it("gives back a task's events as delivered, in delivery order (creation time, then id), none of another task's", async () => {
      const mine = [
        event(t1, `${t1}-b`, 'n2', 5),
        event(t1, `${t1}-open`, null, 0),
        event(t1, `${t1}-a`, 'n1', 5),
        event(t1, `${t1}-c`, 'n1', 9),
      ];
      const theirs = [event(t2, `${t2}-a`, 'n1', 1), event(t2, `${t2}-open`, null, 0)];
      expect(await store.deliver([...mine, ...theirs])).toEqual({ stored: 6 });
      expect(await recall({ taskId: t1 })).toEqual([mine[1], mine[2], mine[0], mine[3]].map(recalled));
      expect(await recall({ taskId: t2 })).toEqual([theirs[1], theirs[0]].map(recalled));
    });

    it('with nodeIds: only the events about those nodes, and the task’s own events (no node)', async () => {
      const events = [
        event(t1, `${t1}-open`, null, 0),
        event(t1, `${t1}-1`, 'n1', 1),
        event(t1, `${t1}-2`, 'n2', 2),
        event(t1, `${t1}-3`, 'n3', 3),
      ];
      await store.deliver(events);
      expect(await recall({ taskId: t1, nodeIds: ['n3', 'n1', 'unknown'] })).toEqual(
        [events[0], events[1], events[3]].map(recalled),
      );
      expect(await recall({ taskId: t1, nodeIds: [] })).toEqual([recalled(events[0])]);
    });

    it('holds an event delivered twice once', async () => {
      const e = event(t1, `${t1}-1`, 'n1', 1);
      await store.deliver([e]);
      await store.deliver([e, e]);
      expect(await recall({ taskId: t1 })).toEqual([recalled(e)]);
    });

    it('keeps a concept and node id with quotes, accents and CJK as they were', async () => {
      const e = { ...event(t1, `${t1}-1`, 'nœud "1"', 1), concept: '细胞膜 — "Membrane" \'s' };
      await store.deliver([e]);
      expect(await recall({ taskId: t1, nodeIds: ['nœud "1"'] })).toEqual([recalled(e)]);
    });
  });
}
