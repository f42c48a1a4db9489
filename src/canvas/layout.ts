import { type CanvasNode, overlaps, type Rect } from './json-canvas';

/** Vertical gap between a source node and what is placed under it, and between stacked results. */
export const LAYOUT_GAP = 50;
/** Gap between the cells of a grid of result nodes. */
export const GRID_GAP = 30;
/** Minimum clearance kept around every existing node. */
export const LAYOUT_MARGIN = 20;

/**
 * Finds a free spot under `source` for a `width` × `height` rectangle: starts right below the source and moves
 * down past every obstacle it would overlap (groups included). Deterministic for the same obstacles.
 */
export function placeBelow(source: Rect, width: number, height: number, obstacles: readonly Rect[]): Rect {
  const rect: Rect = {
    x: Math.round(source.x),
    y: Math.round(source.y + source.height + LAYOUT_GAP),
    width,
    height,
  };
  for (;;) {
    let lowestBottom: number | undefined;
    for (const o of obstacles) {
      if (overlaps(rect, o, LAYOUT_MARGIN)) {
        const bottom = o.y + o.height;
        if (lowestBottom === undefined || bottom > lowestBottom) lowestBottom = bottom;
      }
    }
    if (lowestBottom === undefined) return rect;
    rect.y = Math.round(lowestBottom + LAYOUT_GAP);
  }
}

/**
 * Finds a free spot to the right of `source` for a `width` × `height` rectangle, top-aligned with it: moves right
 * past every obstacle it would overlap. Deterministic for the same obstacles.
 */
export function placeRight(source: Rect, width: number, height: number, obstacles: readonly Rect[]): Rect {
  const rect: Rect = {
    x: Math.round(source.x + source.width + LAYOUT_GAP),
    y: Math.round(source.y),
    width,
    height,
  };
  for (;;) {
    let rightmost: number | undefined;
    for (const o of obstacles) {
      if (overlaps(rect, o, LAYOUT_MARGIN)) {
        const right = o.x + o.width;
        if (rightmost === undefined || right > rightmost) rightmost = right;
      }
    }
    if (rightmost === undefined) return rect;
    rect.x = Math.round(rightmost + LAYOUT_GAP);
  }
}

/** The rectangle of a node, for layout. */
export function rectOf(node: CanvasNode): Rect {
  return { x: node.x, y: node.y, width: node.width, height: node.height };
}
