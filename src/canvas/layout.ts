import { type CanvasNode, overlaps, type Rect } from './json-canvas';

/** Vertical gap between a source node and what is placed under it, and between stacked results. */
export const LAYOUT_GAP = 50;
/** Gap between the cells of a grid of result nodes. */
export const GRID_GAP = 30;
/** Minimum clearance kept around every existing node. */
export const LAYOUT_MARGIN = 20;

/** Obstacles a block under its source may move past, one after the other, before it goes beside the source instead. */
export const MAX_BELOW_JUMPS = 48;

/** Width of the vertical strips the obstacle index buckets rectangles into. */
const STRIP = 512;
/** Rectangles taller than this (groups) are few: they are kept apart and always checked. */
const TALL = 2_048;

/**
 * The rectangles already on a canvas, bucketed into vertical strips by x and kept sorted by y within a strip, so a
 * placement looks only at the obstacles near it — in its strips, within its height — instead of at every node of
 * the canvas. Tall rectangles (groups around many nodes) are kept in a short list of their own.
 */
export class ObstacleIndex {
  private readonly strips = new Map<number, Rect[]>();
  private readonly tall: Rect[] = [];

  constructor(rects: Iterable<Rect> = []) {
    for (const r of rects) this.bucket(r, (list) => list.push(r));
    for (const list of this.strips.values()) list.sort((p, q) => p.y - q.y);
  }

  add(r: Rect): void {
    this.bucket(r, (list) => list.splice(firstAtOrBelow(list, r.y), 0, r));
  }

  /** Every rectangle that overlaps `r` grown by `margin` (each once). */
  *overlapping(r: Rect, margin: number): Generator<Rect> {
    for (const o of this.tall) if (overlaps(r, o, margin)) yield o;
    const first = strip(r.x - margin);
    const last = strip(r.x + r.width + margin);
    const top = r.y - margin - TALL - 1;
    const bottom = r.y + r.height + margin + 1;
    for (let s = first; s <= last; s++) {
      const list = this.strips.get(s);
      if (!list) continue;
      for (let i = firstAtOrBelow(list, top); i < list.length && list[i].y < bottom; i++) {
        const o = list[i];
        // a rectangle in several of these strips is reported from the first of them only
        if (s !== first && strip(o.x) < s) continue;
        if (overlaps(r, o, margin)) yield o;
      }
    }
  }

  /**
   * Moves `start` down, each time to `gap` below the farthest-reaching rectangle it overlaps (grown by `margin`),
   * until it overlaps none — the same spot as repeated `overlapping` queries give, found in one pass over the
   * rectangles of its strips in y order (a placement under a long column of nodes costs that column once, not once
   * per step). `undefined` when that takes more than `maxJumps` jumps.
   */
  slideDown(start: Rect, margin: number, gap: number, maxJumps = Number.POSITIVE_INFINITY): Rect | undefined {
    const rect: Rect = { ...start, x: Math.round(start.x), y: Math.round(start.y) };
    const lists: (readonly Rect[])[] = [[...this.tall].sort((p, q) => p.y - q.y)];
    const next: number[] = [0];
    for (let s = strip(rect.x - margin); s <= strip(rect.x + rect.width + margin); s++) {
      const list = this.strips.get(s);
      if (!list) continue;
      lists.push(list);
      // nothing that starts higher than this reaches down to the rectangle (only tall ones are taller)
      next.push(firstAtOrBelow(list, rect.y - margin - TALL - 1));
    }
    for (;;) {
      let farthest: number | undefined;
      // every rectangle that starts above the rectangle's grown bottom, in y order across the lists
      for (;;) {
        let pick = -1;
        for (let l = 0; l < lists.length; l++) {
          const candidate = lists[l][next[l]];
          if (candidate && candidate.y < rect.y + rect.height + margin) {
            if (pick < 0 || candidate.y < lists[pick][next[pick]].y) pick = l;
          }
        }
        if (pick < 0) break;
        const o = lists[pick][next[pick]++];
        const end = o.y + o.height;
        if (end + margin > rect.y && rect.x < o.x + o.width + margin && o.x < rect.x + rect.width + margin) {
          if (farthest === undefined || end > farthest) farthest = end;
        }
      }
      if (farthest === undefined) return rect;
      if (maxJumps-- <= 0) return undefined;
      rect.y = Math.round(farthest + gap);
    }
  }

  private bucket(r: Rect, put: (list: Rect[]) => void): void {
    if (r.height > TALL) {
      this.tall.push(r);
      return;
    }
    for (let s = strip(r.x); s <= strip(r.x + r.width); s++) {
      let list = this.strips.get(s);
      if (!list) this.strips.set(s, (list = []));
      put(list);
    }
  }
}

/** Index of the first rectangle of a y-sorted list whose top is at or below `y`. */
function firstAtOrBelow(list: readonly Rect[], y: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].y < y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function strip(x: number): number {
  return Math.floor(x / STRIP);
}

const asIndex = (obstacles: ObstacleIndex | readonly Rect[]): ObstacleIndex =>
  obstacles instanceof ObstacleIndex ? obstacles : new ObstacleIndex(obstacles);

/**
 * Finds a free spot under `source` for a `width` × `height` rectangle: starts right below the source and moves
 * down past every obstacle it would overlap (groups included). Under a long column of nodes — more than
 * `MAX_BELOW_JUMPS` jumps, e.g. a dense grid of thousands of cards — the spot would be far from its source (and
 * costly to find): the rectangle goes to the right of the source instead (`placeRight`). Deterministic for the same
 * obstacles.
 */
export function placeBelow(
  source: Rect,
  width: number,
  height: number,
  obstacles: ObstacleIndex | readonly Rect[],
): Rect {
  const index = asIndex(obstacles);
  const start = { x: source.x, y: source.y + source.height + LAYOUT_GAP, width, height };
  return (
    index.slideDown(start, LAYOUT_MARGIN, LAYOUT_GAP, MAX_BELOW_JUMPS) ??
    placeRight(source, width, height, index)
  );
}

/**
 * Finds a free spot to the right of `source` for a `width` × `height` rectangle, top-aligned with it: moves right
 * past every obstacle it would overlap. Deterministic for the same obstacles.
 */
export function placeRight(
  source: Rect,
  width: number,
  height: number,
  obstacles: ObstacleIndex | readonly Rect[],
): Rect {
  const start = { x: source.x + source.width + LAYOUT_GAP, y: source.y, width, height };
  return slideRight(start, asIndex(obstacles));
}

/** Moves `start` right, each time past the farthest obstacle it overlaps, until it overlaps none. */
function slideRight(start: Rect, index: ObstacleIndex): Rect {
  const rect: Rect = { ...start, x: Math.round(start.x), y: Math.round(start.y) };
  for (;;) {
    let farthest: number | undefined;
    for (const o of index.overlapping(rect, LAYOUT_MARGIN)) {
      const end = o.x + o.width;
      if (farthest === undefined || end > farthest) farthest = end;
    }
    if (farthest === undefined) return rect;
    rect.x = Math.round(farthest + LAYOUT_GAP);
  }
}

/** The rectangle of a node, for layout. */
export function rectOf(node: CanvasNode): Rect {
  return { x: node.x, y: node.y, width: node.width, height: node.height };
}
