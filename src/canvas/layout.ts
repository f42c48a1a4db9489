import type { CanvasAddition } from './canvas-writer';
import { type CanvasEdge, type CanvasNode, overlaps, type Rect } from './json-canvas';

/** Gap between a source node and the result placed next to it, and between a result and what it moves past. */
export const LAYOUT_GAP = 50;
/** Gap between the cells of a grid of result nodes. */
export const GRID_GAP = 30;
/** Minimum clearance kept around every existing node. */
export const LAYOUT_MARGIN = 20;

/** Obstacles one search from a spot next to the source may move past, one after the other, before it is given up. */
export const MAX_JUMPS = 48;

/** Width of the vertical strips the obstacle index buckets rectangles into. */
const STRIP = 512;
/** Rectangles taller than this (groups) are few: they are kept apart and always checked. */
const TALL = 2_048;

/**
 * The rectangles already on a canvas, bucketed into vertical strips by x and kept sorted by y within a strip, so a
 * placement looks only at the obstacles near it — in its strips, within its height — instead of at every node of
 * the canvas. Tall rectangles (groups around many nodes) are kept in a short list of their own.
 */
export class ObstacleIndex<T extends Rect = Rect> {
  private readonly strips = new Map<number, T[]>();
  private readonly tall: T[] = [];
  /** The height of the tallest rectangle in the strips: nothing starting higher above a query reaches down to it. */
  private reach = 0;

  constructor(rects: Iterable<T> = []) {
    for (const r of rects) this.bucket(r, (list) => list.push(r));
    for (const list of this.strips.values()) list.sort((p, q) => p.y - q.y);
  }

  add(r: T): void {
    this.bucket(r, (list) => list.splice(firstAtOrBelow(list, r.y), 0, r));
  }

  /** Every rectangle that overlaps `r` grown by `margin` (each once). */
  *overlapping(r: Rect, margin: number): Generator<T> {
    for (const o of this.tall) if (overlaps(r, o, margin)) yield o;
    const first = strip(r.x - margin);
    const last = strip(r.x + r.width + margin);
    const top = r.y - margin - this.reach - 1;
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
      next.push(firstAtOrBelow(list, rect.y - margin - this.reach - 1));
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

  private bucket(r: T, put: (list: T[]) => void): void {
    if (r.height > TALL) {
      this.tall.push(r);
      return;
    }
    this.reach = Math.max(this.reach, r.height);
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

/** Where a result sits next to its source; its edges leave the source on that side. */
export type Beside = 'below' | 'right' | 'left';

export type Side = 'top' | 'right' | 'bottom' | 'left';

export interface Point {
  x: number;
  y: number;
}

/** An edge already on the canvas, as a straight segment from `a` to `b`, indexed by its bounding box. */
export interface EdgeLine extends Rect {
  a: Point;
  b: Point;
}

/** The sides a source→result edge joins, by where the result sits. */
export const EDGE_SIDES: Readonly<Record<Beside, { fromSide: Side; toSide: Side }>> = {
  below: { fromSide: 'bottom', toSide: 'top' },
  right: { fromSide: 'right', toSide: 'left' },
  left: { fromSide: 'left', toSide: 'right' },
};

/** A free spot for a block, and on which side of its source it is. */
export interface Spot extends Rect {
  beside: Beside;
}

export interface PlaceOptions {
  /** The side tried first when spots are equally near (default `below`). */
  prefer?: 'below' | 'right';
  /** The cards of the block, relative to its top-left corner (default: the block is one card). */
  cards?: readonly Rect[];
  /** The edges already on the canvas: a spot whose cards would lie on one counts as crossing it. */
  lines?: ObstacleIndex<EdgeLine>;
}

type Dir = 'down' | 'up' | 'right' | 'left';

/**
 * Where the search starts, in order of preference for equally near spots: the spot next to the source on a side
 * (aligned with one of its edges) and the direction it moves in when something is in the way — along the source's
 * side first, then away from it.
 */
const STARTS: Readonly<Record<Beside, readonly { align: 'start' | 'end'; dir: Dir }[]>> = {
  below: [
    { align: 'start', dir: 'down' },
    { align: 'end', dir: 'down' },
  ],
  right: [
    { align: 'start', dir: 'down' },
    { align: 'end', dir: 'up' },
    { align: 'start', dir: 'right' },
  ],
  left: [
    { align: 'start', dir: 'down' },
    { align: 'end', dir: 'up' },
    { align: 'start', dir: 'left' },
  ],
};
/** Below, the row under the source is also searched sideways (after the sides' own spots). */
const BELOW_SIDEWAYS: readonly { align: 'start' | 'end'; dir: Dir }[] = [
  { align: 'start', dir: 'right' },
  { align: 'end', dir: 'left' },
];

/**
 * Moves the search may make in all, past one obstacle each, before it settles for what it found: enough for the
 * crowded neighbourhood of a hand-made canvas, and a bounded cost per result on a grid of many thousands of cards.
 */
export const SEARCH_JUMPS = 24;

/**
 * Finds the free spot nearest to `source` for a `width` × `height` block, keeping `LAYOUT_MARGIN` from everything.
 * The search starts from the spots right next to the source — under it (left- or right-aligned with it), to its
 * right and to its left (top- or bottom-aligned) — and moves each past what it would overlap: along the source's
 * side (down, or up), or away from it; the search nearest to the source (gap between the rectangles) moves first.
 * The first free spot whose straight edges from the source cross no card, and whose cards lie on no edge
 * (`options.lines`), wins; if none is found within `SEARCH_JUMPS` moves, the nearest free spot found; if none at
 * all (a dense grid of cards), the spot right of the source past all of its row.
 * Ties go to the preferred side, then below, right, left. Deterministic: the same source, obstacles (in any order)
 * and edges give the same spot.
 */
export function placeNear(
  source: Rect,
  width: number,
  height: number,
  obstacles: ObstacleIndex | readonly Rect[],
  options: PlaceOptions = {},
): Spot {
  const index = asIndex(obstacles);
  const cards = options.cards ?? [{ x: 0, y: 0, width, height }];
  // whole pixels, so that spots equally near on two sides compare equal
  source = {
    x: Math.round(source.x),
    y: Math.round(source.y),
    width: Math.round(source.width),
    height: Math.round(source.height),
  };
  const start = (beside: Beside, align: 'start' | 'end'): Rect => {
    const x =
      beside === 'right'
        ? source.x + source.width + LAYOUT_GAP
        : beside === 'left'
          ? source.x - LAYOUT_GAP - width
          : align === 'start'
            ? source.x
            : source.x + source.width - width;
    const y =
      beside !== 'below'
        ? align === 'start'
          ? source.y
          : source.y + source.height - height
        : source.y + source.height + LAYOUT_GAP;
    return { x: Math.round(x), y: Math.round(y), width, height };
  };
  const sides: Beside[] =
    options.prefer === 'right' ? ['right', 'below', 'left'] : ['below', 'right', 'left'];
  const searches = [
    ...sides.flatMap((beside) => STARTS[beside].map((s) => ({ beside, ...s }))),
    ...BELOW_SIDEWAYS.map((s) => ({ beside: 'below' as const, ...s })),
  ].map(({ beside, align, dir }, order) => {
    const rect = start(beside, align);
    return { beside, dir, order, rect, gap: rectGap(source, rect), jumps: 0 };
  });
  const checked = new Set<string>();
  let nearest: Spot | undefined;
  for (let budget = SEARCH_JUMPS; searches.length;) {
    // the search nearest to the source (the preferred one among equals) moves on
    let k = 0;
    for (let i = 1; i < searches.length; i++) {
      const p = searches[i];
      const q = searches[k];
      if (p.gap < q.gap || (p.gap === q.gap && p.order < q.order)) k = i;
    }
    const s = searches[k];
    const to = nextPosition(s.rect, index, s.dir);
    if (to === undefined) {
      searches.splice(k, 1);
      const key = `${s.beside} ${s.rect.x} ${s.rect.y}`;
      if (checked.has(key)) continue;
      checked.add(key);
      const spot = { ...s.rect, beside: s.beside };
      if (crossings(source, s.rect, cards, s.beside, index, options.lines) === 0) return spot;
      nearest ??= spot;
    } else if (budget-- <= 0) {
      break;
    } else if (++s.jumps > MAX_JUMPS) {
      searches.splice(k, 1);
    } else {
      s.rect = { ...s.rect, ...(s.dir === 'up' || s.dir === 'down' ? { y: to } : { x: to }) };
      s.gap = rectGap(source, s.rect);
    }
  }
  if (nearest) return nearest;
  // nothing free near the source (a dense grid of cards): right of it, past its whole row (from where the search
  // to the right got to)
  let right =
    searches.find((s) => s.beside === 'right' && s.dir === 'right')?.rect ?? start('right', 'start');
  for (
    let to = nextPosition(right, index, 'right');
    to !== undefined;
    to = nextPosition(right, index, 'right')
  ) {
    right = { ...right, x: to };
  }
  return { ...right, beside: 'right' };
}

/**
 * Where `rect` moves in `dir` to get past what it overlaps (grown by the margin): the gap beyond the farthest such
 * obstacle; `undefined` when it overlaps nothing.
 */
function nextPosition(rect: Rect, index: ObstacleIndex, dir: Dir): number | undefined {
  let to: number | undefined;
  for (const o of index.overlapping(rect, LAYOUT_MARGIN)) {
    const next =
      dir === 'right'
        ? o.x + o.width + LAYOUT_GAP
        : dir === 'left'
          ? o.x - LAYOUT_GAP - rect.width
          : dir === 'down'
            ? o.y + o.height + LAYOUT_GAP
            : o.y - LAYOUT_GAP - rect.height;
    if (to === undefined || (dir === 'right' || dir === 'down' ? next > to : next < to)) to = next;
  }
  return to === undefined ? undefined : Math.round(to);
}

/** The distance between two rectangles (0 when they touch or overlap). */
export function rectGap(a: Rect, b: Rect): number {
  const dx = Math.max(0, b.x - (a.x + a.width), a.x - (b.x + b.width));
  const dy = Math.max(0, b.y - (a.y + a.height), a.y - (b.y + b.height));
  return Math.hypot(dx, dy);
}

/** The middle of one side of a rectangle, where an edge attached to that side starts. */
export function anchor(r: Rect, side: Side): { x: number; y: number } {
  switch (side) {
    case 'top':
      return { x: r.x + r.width / 2, y: r.y };
    case 'bottom':
      return { x: r.x + r.width / 2, y: r.y + r.height };
    case 'left':
      return { x: r.x, y: r.y + r.height / 2 };
    case 'right':
      return { x: r.x + r.width, y: r.y + r.height / 2 };
  }
}

/**
 * Whether the segment from `a` to `b` passes through the inside of `r` (running along its border or touching a
 * corner does not count): Liang–Barsky clipping against the open rectangle.
 */
export function segmentCrossesRect(
  a: { x: number; y: number },
  b: { x: number; y: number },
  r: Rect,
): boolean {
  let t0 = 0;
  let t1 = 1;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const clip = (p: number, q: number): boolean => {
    if (p === 0) return q > 0;
    const t = q / p;
    if (p < 0) t0 = Math.max(t0, t);
    else t1 = Math.min(t1, t);
    return t0 < t1;
  };
  return (
    clip(-dx, a.x - r.x) &&
    clip(dx, r.x + r.width - a.x) &&
    clip(-dy, a.y - r.y) &&
    clip(dy, r.y + r.height - a.y)
  );
}

/** Whether `outer` covers all of `inner` (a group around a node). */
export function containsRect(outer: Rect, inner: Rect): boolean {
  return (
    inner.x >= outer.x &&
    inner.y >= outer.y &&
    inner.x + inner.width <= outer.x + outer.width &&
    inner.y + inner.height <= outer.y + outer.height
  );
}

/**
 * How many obstacles the straight edges from `source` to the `cards` of a block at `block` pass through (a card
 * crossed by two edges counts twice). The source itself and the groups around it do not count: its edges must leave
 * them anyway.
 */
export function edgeCrossings(
  source: Rect,
  block: Rect,
  cards: readonly Rect[],
  beside: Beside,
  obstacles: ObstacleIndex | readonly Rect[],
): number {
  const index = asIndex(obstacles);
  const { fromSide, toSide } = EDGE_SIDES[beside];
  const from = anchor(source, fromSide);
  let n = 0;
  for (const card of cards) {
    const to = anchor(at(block, card), toSide);
    for (const o of index.overlapping(lineBox(from, to), 1)) {
      if (!containsRect(o, source) && segmentCrossesRect(from, to, o)) n++;
    }
  }
  return n;
}

/** `edgeCrossings`, plus the edges already on the canvas that the block's cards would lie on. */
function crossings(
  source: Rect,
  block: Rect,
  cards: readonly Rect[],
  beside: Beside,
  index: ObstacleIndex,
  lines: ObstacleIndex<EdgeLine> | undefined,
): number {
  let n = edgeCrossings(source, block, cards, beside, index);
  if (lines) {
    for (const card of cards) {
      const r = at(block, card);
      for (const line of lines.overlapping(r, 0)) if (segmentCrossesRect(line.a, line.b, r)) n++;
    }
  }
  return n;
}

/** A card of a block at the block's position. */
const at = (block: Rect, card: Rect): Rect => ({ ...card, x: block.x + card.x, y: block.y + card.y });

/** The segment from `a` to `b` with its bounding box, for an index of edges. */
export function lineBox(a: Point, b: Point): EdgeLine {
  return {
    a,
    b,
    x: Math.min(a.x, b.x),
    y: Math.min(a.y, b.y),
    width: Math.abs(b.x - a.x),
    height: Math.abs(b.y - a.y),
  };
}

/**
 * An edge as the straight segment between the sides it is attached to; an edge without sides (Obsidian picks them
 * as it draws) runs centre to centre.
 */
export function edgeLine(from: Rect, to: Rect, fromSide?: unknown, toSide?: unknown): EdgeLine {
  const end = (r: Rect, side: unknown): Point =>
    side === 'top' || side === 'right' || side === 'bottom' || side === 'left'
      ? anchor(r, side)
      : { x: r.x + r.width / 2, y: r.y + r.height / 2 };
  return lineBox(end(from, fromSide), end(to, toSide));
}

/** The cards of an addition laid out as a grid of `columns` columns filled row by row, relative to the block. */
export function blockCards(addition: Pick<CanvasAddition, 'nodes' | 'columns'>): {
  width: number;
  height: number;
  cards: Rect[];
} {
  const columns = Math.max(1, Math.min(addition.columns ?? 1, addition.nodes.length));
  const colWidth = Math.max(...addition.nodes.map((n) => n.width));
  const rowHeights: number[] = [];
  addition.nodes.forEach((n, i) => {
    const row = Math.floor(i / columns);
    rowHeights[row] = Math.max(rowHeights[row] ?? 0, n.height);
  });
  const rowTops = rowHeights.map((_, row) => rowHeights.slice(0, row).reduce((a, b) => a + b + GRID_GAP, 0));
  return {
    width: columns * colWidth + (columns - 1) * GRID_GAP,
    height: rowHeights.reduce((a, b) => a + b, 0) + (rowHeights.length - 1) * GRID_GAP,
    cards: addition.nodes.map((n, i) => ({
      x: (i % columns) * (colWidth + GRID_GAP),
      y: rowTops[Math.floor(i / columns)],
      width: n.width,
      height: n.height,
    })),
  };
}

/**
 * The layout of one canvas while results are merged into it: its nodes (as obstacles) and its edges (as segments).
 * `place` finds where an addition goes; `add` records what was merged, so the next addition keeps clear of it.
 */
export class CanvasLayout {
  private readonly obstacles = new ObstacleIndex();
  private readonly lines = new ObstacleIndex<EdgeLine>();
  private readonly rects = new Map<string, Rect>();

  constructor(nodes: readonly CanvasNode[] = [], edges: readonly CanvasEdge[] = []) {
    this.add(nodes, edges);
  }

  /** Nodes and edges now on the canvas (an edge whose ends are not known is left out). */
  add(nodes: readonly CanvasNode[], edges: readonly CanvasEdge[]): void {
    for (const n of nodes) {
      const r = rectOf(n);
      this.rects.set(n.id, r);
      this.obstacles.add(r);
    }
    for (const e of edges) {
      const from = this.rects.get(e.fromNode);
      const to = this.rects.get(e.toNode);
      if (from && to) this.lines.add(edgeLine(from, to, e.fromSide, e.toSide));
    }
  }

  /**
   * An addition placed next to its source (`placeNear`, as one block): its nodes with their coordinates, and its
   * edges, those from the source to its nodes attached on the side the block went to (`EDGE_SIDES`).
   */
  place(source: Rect, addition: CanvasAddition): { nodes: CanvasNode[]; edges: CanvasEdge[]; spot: Spot } {
    const { width, height, cards } = blockCards(addition);
    const spot = placeNear(source, width, height, this.obstacles, {
      prefer: addition.side === 'right' ? 'right' : 'below',
      cards,
      lines: this.lines,
    });
    const nodes = addition.nodes.map(({ id, type, width: w, height: h, ...rest }, i): CanvasNode => ({
      id,
      type,
      ...rest,
      x: spot.x + cards[i].x,
      y: spot.y + cards[i].y,
      width: w,
      height: h,
    }));
    const ids = new Set(nodes.map((n) => n.id));
    const edges = addition.edges.map((e) =>
      e.fromNode === addition.sourceNodeId && ids.has(e.toNode) ? { ...e, ...EDGE_SIDES[spot.beside] } : e,
    );
    return { nodes, edges, spot };
  }
}

/** The rectangle of a node, for layout. */
export function rectOf(node: CanvasNode): Rect {
  return { x: node.x, y: node.y, width: node.width, height: node.height };
}
