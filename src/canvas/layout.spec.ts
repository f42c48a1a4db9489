import fc from 'fast-check';
import { type CanvasNode, overlaps, type Rect } from './json-canvas';
import { prng } from '../../test/support/prng';
import {
  type EdgeLine,
  edgeCrossings,
  LAYOUT_GAP,
  LAYOUT_MARGIN,
  lineBox,
  ObstacleIndex,
  placeNear,
  rectGap,
  rectOf,
  SEARCH_JUMPS,
  segmentCrossesRect,
} from './layout';

const source: Rect = { x: 0, y: 0, width: 300, height: 100 };

describe('placeNear', () => {
  it('places right under the source, aligned left, when nothing is in the way', () => {
    expect(placeNear(source, 400, 240, [source])).toEqual({
      x: 0,
      y: 100 + LAYOUT_GAP,
      width: 400,
      height: 240,
      beside: 'below',
    });
  });

  it('rounds a fractional source position to whole pixels', () => {
    const rect = placeNear({ x: 10.4, y: 0.3, width: 100, height: 99.5 }, 50, 50, []);
    expect(rect).toEqual({ x: 10, y: 150, width: 50, height: 50, beside: 'below' });
  });

  it('goes beside the source — right, then left — when the space under it belongs to another card', () => {
    const under = { x: 0, y: 160, width: 300, height: 200 };
    expect(placeNear(source, 400, 240, [source, under])).toMatchObject({
      x: 300 + LAYOUT_GAP,
      y: 0,
      beside: 'right',
    });
    const right = { x: 330, y: -50, width: 300, height: 400 };
    expect(placeNear(source, 400, 240, [source, under, right])).toMatchObject({
      x: -LAYOUT_GAP - 400,
      y: 0,
      beside: 'left',
    });
  });

  it('prefers the right side for a right-hand block, and the spot under the source when that is nearer', () => {
    expect(placeNear(source, 200, 80, [source], { prefer: 'right' })).toMatchObject({ x: 350, y: 0 });
    const right = { x: 330, y: -50, width: 300, height: 400 };
    expect(placeNear(source, 200, 80, [source, right], { prefer: 'right' })).toMatchObject({
      x: 0,
      y: 150,
      beside: 'below',
    });
  });

  it('keeps the margin: an obstacle closer than LAYOUT_MARGIN to a spot rules it out', () => {
    const nearby = { x: 410, y: 150, width: 100, height: 100 }; // 10 px right of the spot under the source
    expect(placeNear(source, 400, 240, [nearby])).not.toMatchObject({ x: 0, y: 150 });
    const farEnough = { x: 400 + LAYOUT_MARGIN, y: 150, width: 100, height: 100 };
    expect(placeNear(source, 400, 240, [farEnough])).toMatchObject({ x: 0, y: 150, beside: 'below' });
  });

  it('moves along the side of a column of cards to the first free spot beside it', () => {
    const column = [0, 1, 2].map((i) => ({ x: 0, y: i * 140, width: 300, height: 100 }));
    const leftOfIt = { x: -500, y: -100, width: 400, height: 600 };
    const first = placeNear(column[0], 400, 240, [...column, leftOfIt]);
    expect(first).toMatchObject({ x: 350, y: 0, beside: 'right' });
    const second = placeNear(column[1], 400, 240, [...column, leftOfIt, first]);
    expect(second).toMatchObject({ x: 350, y: 240 + LAYOUT_GAP, beside: 'right' });
  });

  it('escapes an enclosing group to the nearest side of it', () => {
    const group = { x: -100, y: -100, width: 1000, height: 1000 };
    const rect = placeNear(source, 400, 240, [group, source]);
    expect(rect).toMatchObject({ x: -100 - LAYOUT_GAP - 400, beside: 'left' });
    expect(overlaps(rect, group, LAYOUT_MARGIN)).toBe(false);
  });

  it('takes a farther spot whose edge crosses no card over a nearer one whose edge would', () => {
    // a thin card between the source and the spot under it: the edge would run through it
    const thin = { x: 100, y: 105, width: 100, height: 10 };
    const rect = placeNear(source, 400, 240, [source, thin]);
    expect(rect.beside).toBe('right');
    expect(edgeCrossings(source, rect, [{ x: 0, y: 0, width: 400, height: 240 }], 'right', [thin])).toBe(0);
  });

  it('keeps its cards off the edges already on the canvas where it can', () => {
    const lines = new ObstacleIndex<EdgeLine>([lineBox({ x: 150, y: 100 }, { x: 150, y: 2_000 })]);
    expect(placeNear(source, 400, 240, [source], { lines })).toMatchObject({ beside: 'right', x: 350, y: 0 });
  });

  it(`goes right of the row in a dense grid of cards with nothing free within ${SEARCH_JUMPS} moves`, () => {
    const grid = Array.from({ length: 4 * 200 }, (_, i) => ({
      x: (i % 4) * 480,
      y: Math.floor(i / 4) * 280,
      width: 400,
      height: 200,
    }));
    const src = grid[4 * 100 + 1]; // row 100, column 1
    const index = new ObstacleIndex(grid);
    const placed: Rect[] = [];
    for (let k = 0; k < 3; k++) {
      const r = placeNear(src, 400, 240, index);
      expect([...grid, ...placed].some((o) => overlaps(r, o, LAYOUT_MARGIN))).toBe(false);
      expect(rectGap(src, r)).toBeLessThan(4 * 480);
      placed.push(r);
      index.add(r);
    }
    expect(placeNear(src, 400, 240, grid)).toEqual(placed[0]); // same input, same spot
  });

  it('never overlaps any obstacle in dense random layouts, keeping at least the margin', () => {
    const random = prng(42);
    for (let round = 0; round < 200; round++) {
      const obstacles: Rect[] = Array.from({ length: 5 + Math.floor(random() * 60) }, () => ({
        x: Math.round(random() * 1200 - 600),
        y: Math.round(random() * 3000 - 500),
        width: 20 + Math.round(random() * 500),
        height: 20 + Math.round(random() * 400),
      }));
      const src = obstacles[Math.floor(random() * obstacles.length)];
      const width = 50 + Math.round(random() * 450);
      const height = 50 + Math.round(random() * 600);
      const rect = placeNear(src, width, height, obstacles);
      expect([rect.width, rect.height]).toEqual([width, height]);
      expect(obstacles.find((o) => overlaps(rect, o, LAYOUT_MARGIN))).toBeUndefined();
    }
  });

  it('is deterministic and leaves the obstacle list untouched', () => {
    const random = prng(7);
    const obstacles: Rect[] = Array.from({ length: 40 }, () => ({
      x: Math.round(random() * 800),
      y: Math.round(random() * 2000),
      width: 100 + Math.round(random() * 300),
      height: 100 + Math.round(random() * 300),
    }));
    const before = JSON.stringify(obstacles);
    const first = placeNear(obstacles[0], 400, 300, obstacles);
    const second = placeNear(obstacles[0], 400, 300, JSON.parse(before) as Rect[]);
    expect(second).toEqual(first);
    expect(JSON.stringify(obstacles)).toBe(before);
  });
});

describe('segmentCrossesRect', () => {
  const r = { x: 0, y: 0, width: 100, height: 100 };
  it.each([
    [{ x: -10, y: 50 }, { x: 110, y: 50 }, true],
    [{ x: 50, y: 50 }, { x: 50, y: 200 }, true], // starts inside
    [{ x: -10, y: -10 }, { x: 110, y: 110 }, true], // the diagonal
    [{ x: -10, y: 0 }, { x: 110, y: 0 }, false], // along the top border
    [{ x: 100, y: -10 }, { x: 100, y: 110 }, false], // along the right border
    [{ x: -10, y: 10 }, { x: 10, y: -10 }, false], // cuts nothing but the corner's neighbourhood
    [{ x: -50, y: 50 }, { x: 50, y: -50 }, false], // touches the corner only
    [{ x: 200, y: 200 }, { x: 300, y: 300 }, false],
    [{ x: 120, y: 50 }, { x: 120, y: 50 }, false], // a point outside
  ])('%j → %j crosses: %s', (a, b, crosses) => {
    expect(segmentCrossesRect(a, b, r)).toBe(crosses);
    expect(segmentCrossesRect(b, a, r)).toBe(crosses);
  });
});

describe('rectOf', () => {
  it('keeps only the geometry of a node', () => {
    const node: CanvasNode = {
      id: 'a',
      type: 'text',
      text: 'x',
      x: 1,
      y: 2,
      width: 3,
      height: 4,
      color: '1',
    };
    expect(rectOf(node)).toEqual({ x: 1, y: 2, width: 3, height: 4 });
  });
});

describe('ObstacleIndex', () => {
  const rect = fc.record({
    x: fc.integer({ min: -5_000, max: 5_000 }),
    y: fc.integer({ min: -5_000, max: 5_000 }),
    width: fc.integer({ min: 1, max: 3_000 }),
    height: fc.integer({ min: 1, max: 800 }),
  });

  it('finds exactly the rectangles a scan of all of them finds, each once', () => {
    fc.assert(
      fc.property(
        fc.array(rect, { maxLength: 60 }),
        rect,
        fc.integer({ min: 0, max: 50 }),
        (all, query, margin) => {
          const index = new ObstacleIndex(all);
          const found = [...index.overlapping(query, margin)];
          expect(new Set(found).size).toBe(found.length);
          expect(new Set(found)).toEqual(new Set(all.filter((o) => overlaps(query, o, margin))));
        },
      ),
      { numRuns: 300 },
    );
  });

  /** The placement rule by its definition: jump past the farthest overlapped rectangle, scanning all of them. */
  function slideDownByScan(start: Rect, all: readonly Rect[]): Rect {
    const r = { ...start, x: Math.round(start.x), y: Math.round(start.y) };
    for (;;) {
      const hit = all.filter((o) => overlaps(r, o, LAYOUT_MARGIN));
      if (!hit.length) return r;
      r.y = Math.round(Math.max(...hit.map((o) => o.y + o.height)) + LAYOUT_GAP);
    }
  }

  it('slides down to the same spot as the rule applied to a scan of every rectangle (tall ones too)', () => {
    const tallish = fc.record({
      x: fc.integer({ min: -3_000, max: 3_000 }),
      y: fc.integer({ min: -3_000, max: 3_000 }),
      width: fc.integer({ min: 1, max: 1_500 }),
      height: fc.oneof(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 2_000, max: 6_000 })),
    });
    fc.assert(
      fc.property(fc.array(tallish, { maxLength: 120 }), tallish, (all, start) => {
        const index = new ObstacleIndex(all);
        const placed = index.slideDown(start, LAYOUT_MARGIN, LAYOUT_GAP)!;
        expect(placed).toEqual(slideDownByScan(start, all));
        expect(all.some((o) => overlaps(placed, o, LAYOUT_MARGIN))).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('places under a long column of nodes at the same spot, and added rectangles count', () => {
    const column = Array.from({ length: 400 }, (_, i) => ({ x: 0, y: i * 300, width: 400, height: 240 }));
    const index = new ObstacleIndex(column);
    const start = { x: 0, y: 290, width: 400, height: 200 };
    const first = index.slideDown(start, LAYOUT_MARGIN, LAYOUT_GAP)!;
    expect(first).toEqual(slideDownByScan(start, column));
    index.add(first);
    const second = index.slideDown(start, LAYOUT_MARGIN, LAYOUT_GAP)!;
    expect(second).toEqual(slideDownByScan(start, [...column, first]));
    expect(second.y).toBeGreaterThan(first.y);
    // bounded: more jumps than allowed gives up
    expect(index.slideDown(start, LAYOUT_MARGIN, LAYOUT_GAP, 10)).toBeUndefined();
    expect(index.slideDown({ ...start, x: 2_000 }, LAYOUT_MARGIN, LAYOUT_GAP, 0)).toEqual({
      ...start,
      x: 2_000,
    });
  });
});
