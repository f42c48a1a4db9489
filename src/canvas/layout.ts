import { type CanvasNode, overlaps, type Rect } from './json-canvas';

/** Vertical gap between a source node and what is placed under it, and between stacked results. */
export const LAYOUT_GAP = 50;
/** Gap between the cells of a grid of result nodes. */
export const GRID_GAP = 30;
/** Minimum clearance kept around every existing node. */
export const LAYOUT_MARGIN = 20;

/** Width of the vertical strips the obstacle index buckets rectangles into. */
const STRIP = 512;

/**
 * The rectangles already on a canvas, bucketed into vertical strips by x, so a placement looks only at the
 * obstacles in the strips it spans instead of at every node of the canvas (a 5,000-node canvas laid out in 40
 * columns puts ~1/40 of its nodes in a strip). A very wide rectangle (a group around everything) is in every strip it
 * spans.
 */
export class ObstacleIndex {
  private readonly strips = new Map<number, Rect[]>();

  constructor(rects: Iterable<Rect> = []) {
    for (const r of rects) this.add(r);
  }

  add(r: Rect): void {
    for (let s = strip(r.x); s <= strip(r.x + r.width); s++) {
      const list = this.strips.get(s);
      if (list) list.push(r);
      else this.strips.set(s, [r]);
    }
  }

  /** Every rectangle that overlaps `r` grown by `margin` (each once). */
  *overlapping(r: Rect, margin: number): Generator<Rect> {
    const first = strip(r.x - margin);
    const last = strip(r.x + r.width + margin);
    for (let s = first; s <= last; s++) {
      for (const o of this.strips.get(s) ?? []) {
        // a rectangle in several of these strips is reported from the first of them only
        if (s !== first && strip(o.x) < s) continue;
        if (overlaps(r, o, margin)) yield o;
      }
    }
  }
}

function strip(x: number): number {
  return Math.floor(x / STRIP);
}

const asIndex = (obstacles: ObstacleIndex | readonly Rect[]): ObstacleIndex =>
  obstacles instanceof ObstacleIndex ? obstacles : new ObstacleIndex(obstacles);

/**
 * Finds a free spot under `source` for a `width` × `height` rectangle: starts right below the source and moves
 * down past every obstacle it would overlap (groups included). Deterministic for the same obstacles.
 */
export function placeBelow(
  source: Rect,
  width: number,
  height: number,
  obstacles: ObstacleIndex | readonly Rect[],
): Rect {
  const start = { x: source.x, y: source.y + source.height + LAYOUT_GAP, width, height };
  return slide(start, 'y', asIndex(obstacles));
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
  return slide(start, 'x', asIndex(obstacles));
}

/** Moves `start` along one axis, each time past the farthest obstacle it overlaps, until it overlaps none. */
function slide(start: Rect, axis: 'x' | 'y', index: ObstacleIndex): Rect {
  const rect: Rect = { ...start, x: Math.round(start.x), y: Math.round(start.y) };
  const extent = axis === 'x' ? 'width' : 'height';
  for (;;) {
    let farthest: number | undefined;
    for (const o of index.overlapping(rect, LAYOUT_MARGIN)) {
      const end = o[axis] + o[extent];
      if (farthest === undefined || end > farthest) farthest = end;
    }
    if (farthest === undefined) return rect;
    rect[axis] = Math.round(farthest + LAYOUT_GAP);
  }
}

/** The rectangle of a node, for layout. */
export function rectOf(node: CanvasNode): Rect {
  return { x: node.x, y: node.y, width: node.width, height: node.height };
}
