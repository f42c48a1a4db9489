import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { AgentStructuredOutput } from '../agent';
import { CanvasWriteQueue } from './canvas-writer';
import { type CanvasEdge, type CanvasNode, overlaps } from './json-canvas';
import { resultAddition } from './result-nodes';

/** Queues made by a test, closed after it (their settle checks would otherwise fire during later tests). */
const queues: CanvasWriteQueue[] = [];
const track = (q: CanvasWriteQueue): CanvasWriteQueue => (queues.push(q), q);
afterEach(() => queues.splice(0).forEach((q) => q.close()));

/** A dense canvas: a 5 × 5 grid of 240 × 120 text nodes 24 px apart, and a group around the middle row. */
function denseCanvas(): { nodes: CanvasNode[]; edges: CanvasEdge[] } {
  const nodes: CanvasNode[] = [
    { id: 'grp', type: 'group', label: 'middle', x: -12, y: 276, width: 1332, height: 144 },
  ];
  for (let r = 0; r < 5; r++)
    for (let c = 0; c < 5; c++)
      nodes.push({
        id: `n${r}${c}`,
        type: 'text',
        text: `${r}/${c}`,
        x: c * 264,
        y: r * 144,
        width: 240,
        height: 120,
      });
  return { nodes, edges: [] };
}

const KINDS: (AgentStructuredOutput | undefined)[] = [
  undefined,
  {
    kind: 'questions',
    questions: [
      { text: 'What is it?', difficulty: 'easy' },
      {
        text: '它为什么成立？请从基本原理出发论证。',
        difficulty: 'medium',
        guidance: 'Start from the definition.',
      },
      { text: 'Where does it fail?', difficulty: 'hard' },
    ],
  },
  {
    kind: 'score',
    score: {
      totalScore: 72,
      breakdown: { accuracy: 20, imagery: 15, completeness: 20, originality: 17 },
      pass: true,
      feedback: 'Good.',
    },
  },
  { kind: 'hint', hint: { text: 'Think about the light.', level: 2 } },
];

/** `agents` results of mixed kinds on the centre node (submitted at once), then one result on every other node. */
async function runBatch(agents: number): Promise<{ nodes: CanvasNode[]; edges: CanvasEdge[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'result-layout-'));
  try {
    const file = path.join(dir, 'dense.canvas');
    writeFileSync(file, JSON.stringify(denseCanvas(), null, '\t'));
    const queue = track(new CanvasWriteQueue(file));
    const add = (source: string, i: number) =>
      queue.add(
        resultAddition({
          key: `task\0${source}\0agent-${i}`,
          sourceNodeId: source,
          agentType: `agent-${i}`,
          fileRel: `out/${source}-${i}.md`,
          body: '# x\n\n' + 'text '.repeat(40 * (1 + (i % 3))),
          structured: KINDS[i % KINDS.length],
        }),
      );
    const outcomes = await Promise.all(Array.from({ length: agents }, (_, i) => add('n22', i)));
    expect(outcomes.every((o) => o.placed && !o.alreadyPresent)).toBe(true);
    await Promise.all(
      denseCanvas()
        .nodes.filter((n) => n.type === 'text' && n.id !== 'n22')
        .map((n, j) => add(n.id, j)),
    );
    return JSON.parse(readFileSync(file, 'utf8')) as { nodes: CanvasNode[]; edges: CanvasEdge[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.each([1, 5, 15])(
  'results of every output kind, %i agent(s) on one source of a dense canvas',
  (agents) => {
    let canvas: { nodes: CanvasNode[]; edges: CanvasEdge[] };
    beforeAll(async () => (canvas = await runBatch(agents)));

    it('no added node overlaps any other node, groups included', () => {
      const original = new Set(denseCanvas().nodes.map((n) => n.id));
      const added = canvas.nodes.filter((n) => !original.has(n.id));
      expect(added.length).toBeGreaterThanOrEqual(agents + 24);
      const clashes = added.flatMap((a) =>
        canvas.nodes.filter((b) => b !== a && overlaps(a, b)).map((b) => `${a.id}×${b.id}`),
      );
      expect(clashes).toEqual([]);
    });

    it('every edge joins two existing nodes, once', () => {
      const ids = new Set(canvas.nodes.map((n) => n.id));
      expect(canvas.edges.every((e) => ids.has(e.fromNode) && ids.has(e.toNode))).toBe(true);
      expect(new Set(canvas.edges.map((e) => e.id)).size).toBe(canvas.edges.length);
    });

    it('places the same input at the same coordinates', async () => {
      const again = await runBatch(agents);
      expect(again.nodes.map((n) => [n.id, n.x, n.y])).toEqual(canvas.nodes.map((n) => [n.id, n.x, n.y]));
    });
  },
);

describe('result nodes by output kind', () => {
  it('questions form a two-column grid beside the source with Q-numbered edges from that side; a score sits to the right and recolours the source', async () => {
    const { nodes, edges } = await runBatch(3);
    const src = nodes.find((n) => n.id === 'n22') as CanvasNode;
    const qEdges = edges.filter((e) => e.fromNode === 'n22' && /^Q\d$/.test(String(e.label)));
    expect(qEdges.map((e) => e.label)).toEqual(['Q1', 'Q2', 'Q3']);
    const qs = qEdges.map((e) => nodes.find((n) => n.id === e.toNode) as CanvasNode);
    expect(qs.every((q) => q.type === 'text')).toBe(true);
    // the whole grid on one side of the source, every edge leaving the source on that side
    const sides = new Set(qEdges.map((e) => `${String(e.fromSide)}→${String(e.toSide)}`));
    expect(sides.size).toBe(1);
    const onSide = {
      'bottom→top': (q: CanvasNode) => q.y >= src.y + src.height,
      'right→left': (q: CanvasNode) => q.x >= src.x + src.width,
      'left→right': (q: CanvasNode) => q.x + q.width <= src.x,
    }[[...sides][0]];
    expect(onSide && qs.every(onSide)).toBe(true);
    expect(qs[0].y).toBe(qs[1].y); // one row: Q1 | Q2
    expect(qs[1].x).toBeGreaterThan(qs[0].x + qs[0].width);
    expect(qs[2].x).toBe(qs[0].x); // next row
    expect(qs[2].y).toBeGreaterThan(qs[0].y + Math.max(qs[0].height, qs[1].height));
    expect(qs[1].text).toContain('它为什么成立');
    expect(qs[1].text).toContain('> Start from the definition.');
    const scoreEdge = edges.find((e) => e.fromNode === 'n22' && e.label === 'agent-2') as CanvasEdge;
    const score = nodes.find((n) => n.id === scoreEdge.toNode) as CanvasNode;
    expect(score.x).toBeGreaterThanOrEqual(src.x + src.width);
    expect(score.text).toContain('72 / 100');
    expect(score.color).toBe('3');
    expect(src.color).toBe('3');
    expect(scoreEdge).toMatchObject({ fromSide: 'right', toSide: 'left' });
  });
});
