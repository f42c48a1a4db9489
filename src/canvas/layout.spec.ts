import fc from 'fast-check';
import { type CanvasNode, overlaps, type Rect } from './json-canvas';
import { prng } from '../../test/support/prng';
import { LAYOUT_GAP, LAYOUT_MARGIN, MAX_BELOW_JUMPS, ObstacleIndex, placeBelow, rectOf } from './layout';

const source: Rect = { x: 0, y: 0, width: 300, height: 100 };

describe('placeBelow', () => {
  it('places right under the source, aligned left, when nothing is in the way', () => {
    expect(placeBelow(source, 400, 240, [source])).toEqual({
      x: 0,
      y: 100 + LAYOUT_GAP,
      width: 400,
      height: 240,
    });
  });

  it('rounds a fractional source position to whole pixels', () => {
    const rect = placeBelow({ x: 10.4, y: 0.3, width: 100, height: 99.5 }, 50, 50, []);
    expect(rect).toEqual({ x: 10, y: 150, width: 50, height: 50 });
  });

  it('moves below an obstacle sitting where the result would go', () => {
    const obstacle = { x: 0, y: 160, width: 300, height: 200 };
    const rect = placeBelow(source, 400, 240, [source, obstacle]);
    expect(rect.y).toBe(160 + 200 + LAYOUT_GAP);
    expect(overlaps(rect, obstacle, LAYOUT_MARGIN)).toBe(false);
  });

  it('keeps the margin: an obstacle closer than LAYOUT_MARGIN to the spot also pushes it down', () => {
    // The natural spot is x 0..400; this obstacle starts 10 px to its right.
    const nearby = { x: 410, y: 150, width: 100, height: 100 };
    const rect = placeBelow(source, 400, 240, [nearby]);
    expect(rect.y).toBe(250 + LAYOUT_GAP);
    const farEnough = { x: 400 + LAYOUT_MARGIN, y: 150, width: 100, height: 100 };
    expect(placeBelow(source, 400, 240, [farEnough]).y).toBe(150);
  });

  it('ignores obstacles beside the column', () => {
    const beside = { x: 1000, y: 150, width: 300, height: 300 };
    expect(placeBelow(source, 400, 240, [beside]).y).toBe(150);
  });

  it('skips a whole stack of earlier results under the source', () => {
    const stack: Rect[] = [source];
    for (let i = 0; i < 20; i++) {
      const rect = placeBelow(source, 400, 240, stack);
      for (const o of stack) expect(overlaps(rect, o)).toBe(false);
      stack.push(rect);
    }
    const ys = stack.slice(1).map((r) => r.y);
    expect(ys).toEqual([...ys].sort((p, q) => p - q));
    expect(new Set(ys).size).toBe(20);
  });

  it('escapes an enclosing group by moving below it', () => {
    const group = { x: -100, y: -100, width: 1000, height: 1000 };
    const rect = placeBelow(source, 400, 240, [group, source]);
    expect(rect.y).toBe(900 + LAYOUT_GAP);
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
      const rect = placeBelow(src, width, height, obstacles);
      expect(rect.width).toBe(width);
      expect(rect.height).toBe(height);
      expect(rect.x).toBe(Math.round(src.x));
      expect(rect.y).toBeGreaterThanOrEqual(src.y + src.height + LAYOUT_GAP - 1);
      const hit = obstacles.find((o) => overlaps(rect, o, LAYOUT_MARGIN));
      expect(hit).toBeUndefined();
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
    const first = placeBelow(obstacles[0], 400, 300, obstacles);
    const second = placeBelow(obstacles[0], 400, 300, JSON.parse(before) as Rect[]);
    expect(second).toEqual(first);
    expect(JSON.stringify(obstacles)).toBe(before);
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

  it(`puts a block beside its source when more than ${MAX_BELOW_JUMPS} obstacles stand below it (a dense grid)`, () => {
    const grid = Array.from({ length: 4 * 200 }, (_, i) => ({
      x: (i % 4) * 480,
      y: Math.floor(i / 4) * 280,
      width: 400,
      height: 200,
    }));
    const source = grid[5]; // row 1, column 1
    const index = new ObstacleIndex(grid);
    const placed: Rect[] = [];
    for (let k = 0; k < 3; k++) {
      const r = placeBelow(source, 400, 240, index);
      expect([...grid, ...placed].some((o) => overlaps(r, o, LAYOUT_MARGIN))).toBe(false);
      expect(r.y).toBe(source.y); // beside it, top-aligned, right of the grid's row
      expect(r.x).toBeGreaterThan(3 * 480);
      placed.push(r);
      index.add(r);
    }
    expect(placeBelow(source, 400, 240, grid)).toEqual(placed[0]); // same input, same spot
    // a short column is still passed below the source
    const short = grid.filter((r) => r.y < (MAX_BELOW_JUMPS - 2) * 280);
    expect(placeBelow(source, 400, 240, short).x).toBe(source.x);
  });
});
