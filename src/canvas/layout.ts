import { type CanvasNode, overlaps, type Rect } from './json-canvas';

/** Vertical gap between a source node and what is placed under it, and between stacked results. */
export const LAYOUT_GAP = 50;
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

/** The rectangle of a node, for layout. */
export function rectOf(node: CanvasNode): Rect {
  return { x: node.x, y: node.y, width: node.width, height: node.height };
}
