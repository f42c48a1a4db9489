import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type CanvasAddition, CanvasWriteQueue } from './canvas-writer';
import { type CanvasEdge, type CanvasNode, overlaps } from './json-canvas';
import { type Beside, EDGE_SIDES, LAYOUT_GAP, rectGap } from './layout';

/** Queues made by a test, closed after it (their settle checks would otherwise fire during later tests). */
const queues: CanvasWriteQueue[] = [];
const track = (q: CanvasWriteQueue): CanvasWriteQueue => (queues.push(q), q);
afterEach(() => queues.splice(0).forEach((q) => q.close()));

/** A dense canvas: a 6 × 6 grid of 200 × 100 text nodes 20 px apart, inside a group around the first row. */
function denseCanvas(): { nodes: CanvasNode[]; edges: [] } {
  const nodes: CanvasNode[] = [
    { id: 'grp', type: 'group', label: 'row 0', x: -10, y: -10, width: 1340, height: 120 },
  ];
  for (let r = 0; r < 6; r++) {
    for (let c = 0; c < 6; c++) {
      nodes.push({
        id: `n${r}${c}`,
        type: 'text',
        text: `node ${r}/${c}`,
        x: c * 220,
        y: r * 120,
        width: 200,
        height: 100,
      });
    }
  }
  return { nodes, edges: [] };
}

function addition(source: string, agent: string): CanvasAddition {
  const id = `${source}-${agent}`;
  return {
    sourceNodeId: source,
    nodes: [{ id, type: 'file', file: `x/${id}.md`, width: 400, height: 240 }],
    edges: [{ id: `e-${id}`, fromNode: source, fromSide: 'bottom', toNode: id, toSide: 'top', label: agent }],
  };
}

async function runBatch(agents: number): Promise<{ nodes: CanvasNode[]; edges: CanvasEdge[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'layout-batch-'));
  try {
    const file = path.join(dir, 'dense.canvas');
    writeFileSync(file, JSON.stringify(denseCanvas(), null, '\t'));
    const queue = track(new CanvasWriteQueue(file));
    const agentNames = Array.from({ length: agents }, (_, i) => `agent-${i}`);
    // every agent on the same source, concurrently (coalesced), then one more result for every other node
    await Promise.all(agentNames.map((a) => queue.add(addition('n22', a))));
    await Promise.all(
      denseCanvas()
        .nodes.filter((n) => n.type === 'text' && n.id !== 'n22')
        .map((n) => queue.add(addition(n.id, 'agent-0'))),
    );
    return JSON.parse(readFileSync(file, 'utf8')) as { nodes: CanvasNode[]; edges: CanvasEdge[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.each([1, 5, 15])(
  'layout of a batch with %i agent(s) on the same source, on a dense canvas',
  (agents) => {
    let nodes: CanvasNode[];
    let edges: CanvasEdge[];
    beforeAll(async () => ({ nodes, edges } = await runBatch(agents)));

    it('adds every result node, and no new node overlaps any other node (groups included)', () => {
      const added = nodes.filter((n) => n.type === 'file');
      expect(added).toHaveLength(agents + 35);
      const clashes = added.flatMap((a) =>
        nodes.filter((b) => b !== a && overlaps(a, b)).map((b) => `${a.id}×${b.id}`),
      );
      expect(clashes).toEqual([]);
    });

    it('places the agents of one source around it in submission order, nearest first, edges on their side', () => {
      const src = nodes.find((n) => n.id === 'n22') as CanvasNode;
      const around = nodes.filter((n) => n.id.startsWith('n22-'));
      expect(around.map((n) => n.id)).toEqual(Array.from({ length: agents }, (_, i) => `n22-agent-${i}`));
      const gaps = around.map((n) => rectGap(src, n));
      expect(gaps).toEqual([...gaps].sort((p, q) => p - q));
      // nearer than the spot under the column of three rows below it (where results used to go)
      expect(gaps[0]).toBeLessThan(3 * 120 + LAYOUT_GAP);
      for (const n of around) {
        const edge = edges.find((e) => e.toNode === n.id);
        const beside =
          n.y >= src.y + src.height && edge?.fromSide === 'bottom'
            ? 'below'
            : n.x >= src.x + src.width
              ? 'right'
              : n.x + n.width <= src.x
                ? 'left'
                : 'none';
        expect(edge).toMatchObject(EDGE_SIDES[beside as Beside] ?? { fromSide: 'none' });
      }
    });

    it('places the same input at the same coordinates', async () => {
      const again = await runBatch(agents);
      expect(again.nodes.map((n) => [n.id, n.x, n.y])).toEqual(nodes.map((n) => [n.id, n.x, n.y]));
      expect(again.edges).toEqual(edges);
    });
  },
);
