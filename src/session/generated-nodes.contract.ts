import type { GeneratedNodes } from './generated-nodes';

/** One store to test, empty, and how to dispose of it. */
export interface GeneratedNodesUnderTest {
  store: GeneratedNodes;
  /**
   * The same data opened again as a restarted process opens it (a new database handle, a new connection); absent
   * for a store that keeps nothing beyond its object (in memory). The store before it is closed first.
   */
  reopen?: () => GeneratedNodes | Promise<GeneratedNodes>;
  close(): void | Promise<void>;
}

const CANVAS = 'Biology/cells.canvas';

/**
 * The behaviour every `GeneratedNodes` adapter shares, written once: `generated-nodes.contract.spec.ts` runs it for
 * SQLite on a real file and for the in-memory one, `redis-generated-nodes.contract.spec.ts` for Redis.
 */
export function describeGeneratedNodesContract(
  name: string,
  make: () => GeneratedNodesUnderTest | Promise<GeneratedNodesUnderTest>,
): void {
  describe(`GeneratedNodes contract: ${name}`, () => {
    let subject: GeneratedNodesUnderTest;
    let store: GeneratedNodes;

    beforeEach(async () => {
      subject = await make();
      store = subject.store;
    });

    afterEach(async () => {
      await subject.close();
    });

    it('knows nothing of a canvas it never recorded', async () => {
      expect(await store.inCanvas(CANVAS)).toEqual({ nodes: [], edges: [] });
    });

    it('keeps the cards and edges a task added, each kind sorted by id, with the task', async () => {
      await store.record(CANVAS, 't1', { nodeIds: ['n3', 'n1', 'n2'], edgeIds: ['e2', 'e1'] });
      expect(await store.inCanvas(CANVAS)).toEqual({
        nodes: [
          { id: 'n1', taskId: 't1' },
          { id: 'n2', taskId: 't1' },
          { id: 'n3', taskId: 't1' },
        ],
        edges: [
          { id: 'e1', taskId: 't1' },
          { id: 'e2', taskId: 't1' },
        ],
      });
    });

    it('adds later records to earlier ones', async () => {
      await store.record(CANVAS, 't1', { nodeIds: ['a'], edgeIds: ['ea'] });
      await store.record(CANVAS, 't2', { nodeIds: ['b'], edgeIds: [] });
      await store.record(CANVAS, 't2', { nodeIds: [], edgeIds: ['eb'] });
      expect(await store.inCanvas(CANVAS)).toEqual({
        nodes: [
          { id: 'a', taskId: 't1' },
          { id: 'b', taskId: 't2' },
        ],
        edges: [
          { id: 'ea', taskId: 't1' },
          { id: 'eb', taskId: 't2' },
        ],
      });
    });

    it('is idempotent: recording an id again stores it once and keeps the task that recorded it first', async () => {
      await store.record(CANVAS, 't1', { nodeIds: ['a', 'b'], edgeIds: ['e'] });
      await store.record(CANVAS, 't1', { nodeIds: ['a', 'b'], edgeIds: ['e'] });
      await store.record(CANVAS, 't9', { nodeIds: ['b', 'a', 'b'], edgeIds: ['e', 'e'] });
      expect(await store.inCanvas(CANVAS)).toEqual({
        nodes: [
          { id: 'a', taskId: 't1' },
          { id: 'b', taskId: 't1' },
        ],
        edges: [{ id: 'e', taskId: 't1' }],
      });
    });

    it('records nothing for empty lists', async () => {
      await store.record(CANVAS, 't1', { nodeIds: [], edgeIds: [] });
      expect(await store.inCanvas(CANVAS)).toEqual({ nodes: [], edges: [] });
    });

    it('keeps a node and an edge of the same id apart', async () => {
      await store.record(CANVAS, 't1', { nodeIds: ['same'], edgeIds: [] });
      await store.record(CANVAS, 't2', { nodeIds: [], edgeIds: ['same'] });
      expect(await store.inCanvas(CANVAS)).toEqual({
        nodes: [{ id: 'same', taskId: 't1' }],
        edges: [{ id: 'same', taskId: 't2' }],
      });
    });

    it('keeps each canvas apart, by its exact path', async () => {
      const paths = [
        CANVAS,
        'biology/cells.canvas',
        'Biology/cells.canvas ',
        'cells.canvas',
        'Biology',
        'Math/a:b.canvas',
        'Math/a',
        'Mathématiques/微积分 ✓.canvas',
      ];
      for (const [i, p] of paths.entries()) {
        await store.record(p, `t${i}`, { nodeIds: [`n${i}`], edgeIds: [`e${i}`] });
      }
      for (const [i, p] of paths.entries()) {
        expect({ p, items: await store.inCanvas(p) }).toEqual({
          p,
          items: { nodes: [{ id: `n${i}`, taskId: `t${i}` }], edges: [{ id: `e${i}`, taskId: `t${i}` }] },
        });
      }
      expect(await store.inCanvas('Math')).toEqual({ nodes: [], edges: [] });
    });

    it('keeps ids and task ids exactly as given (any characters)', async () => {
      const odd = ['0123456789abcdef', 'with space', 'colon:inside', 'é✓😀', '__proto__', 'n:x', ''];
      await store.record(CANVAS, 'task:ü', { nodeIds: odd, edgeIds: odd });
      const { nodes, edges } = await store.inCanvas(CANVAS);
      const expected = [...odd].sort().map((id) => ({ id, taskId: 'task:ü' }));
      expect(nodes).toEqual(expected);
      expect(edges).toEqual(expected);
    });

    it('loses nothing when many records run at once', async () => {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          store.record(CANVAS, `t${i % 4}`, { nodeIds: [`n${i}`, `m${i}`], edgeIds: [`e${i}`] }),
        ),
      );
      const { nodes, edges } = await store.inCanvas(CANVAS);
      expect(nodes).toHaveLength(80);
      expect(edges).toHaveLength(40);
      expect(nodes.find((n) => n.id === 'n13')).toEqual({ id: 'n13', taskId: 't1' });
    });

    it('shares no object with its callers', async () => {
      const nodeIds = ['a'];
      await store.record(CANVAS, 't1', { nodeIds, edgeIds: [] });
      nodeIds.push('b');
      const first = await store.inCanvas(CANVAS);
      first.nodes.push({ id: 'x', taskId: 't1' });
      first.edges.push({ id: 'y', taskId: 't1' });
      expect(await store.inCanvas(CANVAS)).toEqual({ nodes: [{ id: 'a', taskId: 't1' }], edges: [] });
    });

    it('still knows everything when opened again (a restart)', async () => {
      if (!subject.reopen) return; // kept in the object alone: nothing to open again
      await store.record(CANVAS, 't1', { nodeIds: ['a', 'b'], edgeIds: ['e'] });
      await store.record('Other.canvas', 't2', { nodeIds: ['c'], edgeIds: [] });
      const again = await subject.reopen();
      expect(await again.inCanvas(CANVAS)).toEqual({
        nodes: [
          { id: 'a', taskId: 't1' },
          { id: 'b', taskId: 't1' },
        ],
        edges: [{ id: 'e', taskId: 't1' }],
      });
      expect((await again.inCanvas('Other.canvas')).nodes).toEqual([{ id: 'c', taskId: 't2' }]);
      await again.record(CANVAS, 't3', { nodeIds: ['a', 'd'], edgeIds: [] });
      expect((await again.inCanvas(CANVAS)).nodes.map((n) => `${n.id}:${n.taskId}`)).toEqual([
        'a:t1',
        'b:t1',
        'd:t3',
      ]);
    });
  });
}
