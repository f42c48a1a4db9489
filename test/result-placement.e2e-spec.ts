import type { CanvasAddition } from '../src/canvas/canvas-writer';
import type { CanvasEdge, CanvasNode } from '../src/canvas/json-canvas';
import { CanvasLayout, EDGE_SIDES, LAYOUT_GAP, rectGap, rectOf } from '../src/canvas/layout';
import { overlaps } from '../src/canvas/json-canvas';
import { http, readCanvas, startServer, type TestServer, waitTerminal } from './support/harness';

const CANVAS = 'Biology/cells.canvas';

/**
 * The additions a finished batch merged, rebuilt from the canvas in the order the writer appended their nodes: a
 * question card `Q2`, `Q3`… belongs to the block its `Q1` started; any other card is a block of its own.
 */
function additionsIn(
  after: { nodes: CanvasNode[]; edges: CanvasEdge[] },
  before: { nodes: CanvasNode[]; edges: CanvasEdge[] },
): CanvasAddition[] {
  const known = new Set(before.nodes.map((n) => n.id));
  const additions: CanvasAddition[] = [];
  for (const node of after.nodes.filter((n) => !known.has(n.id))) {
    const edge = after.edges.find((e) => e.toNode === node.id);
    if (!edge) throw new Error(`result card ${node.id} has no edge from its source`);
    const question = /^Q(\d+)$/.exec(String(edge.label));
    const { x: _x, y: _y, ...shape } = node;
    const card = shape as CanvasAddition['nodes'][number];
    const last = additions.at(-1);
    if (question && Number(question[1]) > 1 && last?.sourceNodeId === edge.fromNode) {
      last.nodes.push(card);
      last.edges.push(edge);
    } else {
      additions.push({
        sourceNodeId: edge.fromNode,
        nodes: [card],
        edges: [edge],
        ...(question ? { columns: 2 } : {}),
      });
    }
  }
  return additions;
}

describe('result placement end to end (real server, bundled biology canvas)', () => {
  let server: TestServer;
  let before: { nodes: CanvasNode[]; edges: CanvasEdge[] };
  let after: { nodes: CanvasNode[]; edges: CanvasEdge[] };

  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '5-40' });
    before = readCanvas(server.vault, CANVAS) as typeof before;
    const nodeIds = before.nodes.filter((n) => n.type !== 'group').map((n) => n.id);
    const res = await http<{ task_id: string }>('POST', `${server.url}/parallel/execute`, {
      canvas_path: CANVAS,
      groups: [
        { group_id: 'explain', agent_type: 'oral-explanation', node_ids: nodeIds },
        { group_id: 'questions', agent_type: 'basic-decomposition', node_ids: nodeIds },
      ],
      max_concurrent: 4,
    });
    expect(res.status).toBe(202);
    const final = await waitTerminal(server, res.body.task_id, 60_000);
    expect(final.status).toBe('completed');
    after = readCanvas(server.vault, CANVAS) as typeof after;
  }, 90_000);
  afterAll(() => server?.close());

  it('writes every card where the placement algorithm puts it, in the order they were merged', () => {
    const additions = additionsIn(after, before);
    const sources = before.nodes.filter((n) => n.type !== 'group').length;
    expect(additions).toHaveLength(2 * sources);
    const written = new Map(after.nodes.map((n) => [n.id, n]));
    const writtenEdges = new Map(after.edges.map((e) => [e.id, e]));
    const layout = new CanvasLayout(before.nodes, before.edges);
    for (const addition of additions) {
      const source = written.get(addition.sourceNodeId)!;
      const placed = layout.place(rectOf(source), addition);
      for (const n of placed.nodes) expect(written.get(n.id)).toMatchObject({ x: n.x, y: n.y });
      for (const e of placed.edges) {
        expect(writtenEdges.get(e.id)).toMatchObject({ fromSide: e.fromSide, toSide: e.toSide });
      }
      layout.add(placed.nodes, placed.edges);
    }
  });

  it('overlaps nothing, and puts the file cards of the stacked column next to their own sources', () => {
    const known = new Set(before.nodes.map((n) => n.id));
    const added = after.nodes.filter((n) => !known.has(n.id));
    for (const n of added) expect(after.nodes.filter((o) => o !== n && overlaps(o, n))).toEqual([]);
    const byId = new Map(after.nodes.map((n) => [n.id, n]));
    const column = ['b10c0ffee0000001', 'b10c0ffee0000002', '4e0b7a91c2d35f68'].map((id) => byId.get(id)!);
    const bottom = column[2].y + column[2].height;
    for (const source of column.slice(0, 2)) {
      const edge = after.edges.find((e) => e.fromNode === source.id && e.label === 'oral-explanation')!;
      const card = byId.get(edge.toNode)!;
      expect(card.type).toBe('file');
      // whichever result finished first took the nearest spot; each is still nearer than under the whole column,
      // where the old placement put it
      expect(rectGap(source, card)).toBeLessThan(bottom + LAYOUT_GAP - (source.y + source.height));
      expect(Object.values(EDGE_SIDES)).toContainEqual({ fromSide: edge.fromSide, toSide: edge.toSide });
    }
  });
});
