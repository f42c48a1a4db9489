import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { type CanvasEdge, type CanvasNode, overlaps, parseCanvas, type Rect } from './json-canvas';
import {
  anchor,
  type Beside,
  blockCards,
  CanvasLayout,
  containsRect,
  EDGE_SIDES,
  LAYOUT_GAP,
  LAYOUT_MARGIN,
  ObstacleIndex,
  placeNear,
  rectGap,
  rectOf,
  segmentCrossesRect,
} from './layout';
import { resultAddition } from './result-nodes';

/** Random canvases: cards anywhere (overlapping ones too, like groups around nodes), one of them the source. */
const card = fc.record({
  x: fc.integer({ min: -1_500, max: 1_500 }),
  y: fc.integer({ min: -1_500, max: 1_500 }),
  width: fc.integer({ min: 20, max: 700 }),
  height: fc.integer({ min: 20, max: 500 }),
});
/** A result block: one file card, or a two-column grid of question cards. */
const block = fc.oneof(
  fc
    .record({ width: fc.integer({ min: 50, max: 500 }), height: fc.integer({ min: 50, max: 640 }) })
    .map((r) => ({
      ...r,
      cards: [{ x: 0, y: 0, ...r }],
    })),
  fc.array(fc.integer({ min: 100, max: 400 }), { minLength: 1, maxLength: 9 }).map((heights) =>
    blockCards({
      columns: 2,
      nodes: heights.map((h, i) => ({ id: `q${i}`, type: 'text', width: 320, height: h })),
    }),
  ),
);
const canvas = fc
  .tuple(fc.array(card, { minLength: 1, maxLength: 40 }), fc.nat(), block)
  .map(([cards, pick, b]) => ({ cards, source: cards[pick % cards.length], block: b }));

const rounded = (r: Rect): Rect => ({
  x: Math.round(r.x),
  y: Math.round(r.y),
  width: Math.round(r.width),
  height: Math.round(r.height),
});

/** By definition, scanning every card: is `spot` free, and do its edges from `source` cross no card? */
function free(spot: Rect, all: readonly Rect[]): boolean {
  return !all.some((o) => overlaps(spot, o, LAYOUT_MARGIN));
}
function crossesNothing(
  source: Rect,
  spot: Rect,
  cards: readonly Rect[],
  beside: Beside,
  all: readonly Rect[],
): boolean {
  const from = anchor(source, EDGE_SIDES[beside].fromSide);
  return cards.every((c) => {
    const to = anchor({ ...c, x: spot.x + c.x, y: spot.y + c.y }, EDGE_SIDES[beside].toSide);
    return !all.some((o) => !containsRect(o, source) && segmentCrossesRect(from, to, o));
  });
}

/** The spots right next to the source: under it, and beside it on the right and on the left (top-aligned). */
function nextTo(source: Rect, width: number, height: number): { beside: Beside; rect: Rect }[] {
  const s = rounded(source);
  return [
    { beside: 'below', rect: { x: s.x, y: s.y + s.height + LAYOUT_GAP, width, height } },
    { beside: 'right', rect: { x: s.x + s.width + LAYOUT_GAP, y: s.y, width, height } },
    { beside: 'left', rect: { x: s.x - LAYOUT_GAP - width, y: s.y, width, height } },
  ];
}

describe('placeNear on random canvases (property-based)', () => {
  it('never overlaps a card, keeps the margin, and sits wholly on the side its edges leave from', () => {
    fc.assert(
      fc.property(canvas, ({ cards, source, block: b }) => {
        const spot = placeNear(source, b.width, b.height, cards, { cards: b.cards });
        expect([spot.width, spot.height]).toEqual([b.width, b.height]);
        expect(free(spot, cards)).toBe(true);
        const s = rounded(source);
        const onSide = {
          below: spot.y >= s.y + s.height + LAYOUT_GAP,
          right: spot.x >= s.x + s.width + LAYOUT_GAP,
          left: spot.x + spot.width <= s.x - LAYOUT_GAP,
        };
        expect(onSide[spot.beside]).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('touches its source (LAYOUT_GAP away) whenever a spot right next to it is free and its edges clear', () => {
    fc.assert(
      fc.property(canvas, ({ cards, source, block: b }) => {
        const open = nextTo(source, b.width, b.height).filter(
          (n) => free(n.rect, cards) && crossesNothing(rounded(source), n.rect, b.cards, n.beside, cards),
        );
        fc.pre(open.length > 0);
        const spot = placeNear(source, b.width, b.height, cards, { cards: b.cards });
        expect(rectGap(rounded(source), spot)).toBe(LAYOUT_GAP);
        // and a tie goes below (the sides have more spots than these: bottom-aligned ones too)
        if (open[0].beside === 'below') expect(spot.beside).toBe('below');
      }),
      { numRuns: 400 },
    );
  });

  it('draws edges through no card when a free spot with clear edges is right next to the source', () => {
    fc.assert(
      fc.property(canvas, ({ cards, source, block: b }) => {
        fc.pre(
          nextTo(source, b.width, b.height).some(
            (n) => free(n.rect, cards) && crossesNothing(rounded(source), n.rect, b.cards, n.beside, cards),
          ),
        );
        const spot = placeNear(source, b.width, b.height, cards, { cards: b.cards });
        expect(crossesNothing(rounded(source), spot, b.cards, spot.beside, cards)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic: the same cards in any order, as a list or an index, give the same spot', () => {
    fc.assert(
      fc.property(
        canvas.chain((c) =>
          fc.tuple(fc.constant(c), fc.shuffledSubarray(c.cards, { minLength: c.cards.length })),
        ),
        ([{ cards, source, block: b }, shuffled]) => {
          const spot = placeNear(source, b.width, b.height, cards, { cards: b.cards });
          expect(placeNear(source, b.width, b.height, shuffled, { cards: b.cards })).toEqual(spot);
          expect(
            placeNear(source, b.width, b.height, new ObstacleIndex(shuffled), { cards: b.cards }),
          ).toEqual(spot);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('lays several results of one source around it without overlaps, the same way every time', () => {
    fc.assert(
      fc.property(canvas, fc.integer({ min: 2, max: 6 }), ({ cards, source, block: b }, results) => {
        const run = () => {
          const nodes: CanvasNode[] = cards.map((r, i) => ({ id: `c${i}`, type: 'text', ...r }));
          const src = nodes[cards.indexOf(source)];
          const layout = new CanvasLayout(nodes, []);
          const placed: CanvasNode[] = [];
          for (let k = 0; k < results; k++) {
            const { nodes: added, edges } = layout.place(rectOf(src), {
              sourceNodeId: src.id,
              columns: 2,
              nodes: b.cards.map((c, i) => ({
                id: `r${k}-${i}`,
                type: 'text',
                width: c.width,
                height: c.height,
              })),
              edges: b.cards.map((_, i) => ({ id: `e${k}-${i}`, fromNode: src.id, toNode: `r${k}-${i}` })),
            });
            layout.add(added, edges);
            placed.push(...added);
          }
          return { nodes, placed };
        };
        const { nodes, placed } = run();
        for (const p of placed) {
          expect([...nodes, ...placed].filter((o) => o !== p && overlaps(p, o))).toEqual([]);
        }
        expect(run().placed).toEqual(placed);
      }),
      { numRuns: 100 },
    );
  });
});

describe('the bundled biology canvas (examples/vault/Biology/cells.canvas)', () => {
  const rel = 'Biology/cells.canvas';
  const parsed = parseCanvas(readFileSync(path.join(__dirname, '../../examples/vault', rel), 'utf8'));
  if ('errors' in parsed) throw new Error(parsed.errors[0].message);
  const { nodes, edges } = parsed.doc;
  const sources = nodes.filter((n) => n.type !== 'group');

  /** A result of `agent` on every node, merged one after the other as the canvas writer does. */
  function batch(structured: boolean): {
    all: CanvasNode[];
    added: { source: CanvasNode; node: CanvasNode; edge: CanvasEdge }[];
  } {
    const all = [...nodes];
    const layout = new CanvasLayout(nodes, edges);
    const added: { source: CanvasNode; node: CanvasNode; edge: CanvasEdge }[] = [];
    for (const source of sources) {
      const addition = resultAddition({
        key: `t\0${source.id}`,
        sourceNodeId: source.id,
        agentType: structured ? 'basic-decomposition' : 'oral-explanation',
        fileRel: `Biology/cells-explanations/${source.id}.md`,
        body: 'An explanation. '.repeat(60),
        structured: structured
          ? {
              kind: 'questions',
              questions: [1, 2, 3].map((i) => ({ text: `Question ${i}?`, difficulty: 'easy' })),
            }
          : undefined,
      });
      const placed = layout.place(rectOf(source), addition);
      layout.add(placed.nodes, placed.edges);
      all.push(...placed.nodes);
      for (const node of placed.nodes) {
        added.push({ source, node, edge: placed.edges.find((e) => e.toNode === node.id) as CanvasEdge });
      }
    }
    return { all, added };
  }

  const crossed = (
    all: readonly CanvasNode[],
    a: { source: CanvasNode; node: CanvasNode; edge: CanvasEdge },
  ) => {
    const from = anchor(a.source, a.edge.fromSide as 'bottom');
    const to = anchor(a.node, a.edge.toSide as 'top');
    return all.filter((o) => o !== a.node && !containsRect(o, a.source) && segmentCrossesRect(from, to, o));
  };

  it('puts each card of the stacked column beside it, next to its own source, not under the whole column', () => {
    const { added } = batch(false);
    const column = ['b10c0ffee0000001', 'b10c0ffee0000002', '4e0b7a91c2d35f68'];
    const byId = new Map(added.map((a) => [a.source.id, a]));
    // the first two have another card under them: their results go beside the column (its right is a group)
    for (const id of column.slice(0, 2)) {
      const a = byId.get(id)!;
      expect(a.edge).toMatchObject(EDGE_SIDES.left);
      expect(rectGap(a.source, a.node)).toBe(LAYOUT_GAP);
    }
    // the last one has the space under it to itself
    const last = byId.get(column[2])!;
    expect(last.edge).toMatchObject(EDGE_SIDES.below);
    expect(rectGap(last.source, last.node)).toBe(LAYOUT_GAP);
  });

  it('a file card for every node: near its source, no overlap, no edge through another card', () => {
    const { all, added } = batch(false);
    expect(added).toHaveLength(sources.length);
    for (const a of added) {
      expect(all.filter((o) => o !== a.node && overlaps(o, a.node))).toEqual([]);
      expect(crossed(all, a)).toEqual([]);
      expect(rectGap(a.source, a.node)).toBeLessThanOrEqual(3 * LAYOUT_GAP); // nothing is more than a step away
    }
  });

  it('question cards for every node: no overlap, and the same layout on every run', () => {
    const first = batch(true);
    for (const a of first.added)
      expect(first.all.filter((o) => o !== a.node && overlaps(o, a.node))).toEqual([]);
    expect(batch(true).all).toEqual(first.all);
  });
});
