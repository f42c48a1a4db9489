import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Writes a tab-indented canvas with `groups` groups of `perGroup` text nodes laid out on a grid (plus a group node
 * around the first few nodes, an unknown top-level key and an unknown node field, to check they survive).
 * Returns the node ids per group.
 */
export function writeGridCanvas(
  vault: string,
  rel: string,
  groups: number,
  perGroup: number,
  text: (g: number, i: number) => string = (g, i) =>
    `# Topic ${g}-${i}\nConcept number ${i} of group ${g} explains how cells divide and grow.`,
): string[][] {
  const nodes: Record<string, unknown>[] = [
    {
      id: 'group-area',
      type: 'group',
      label: 'First row',
      x: -20,
      y: -20,
      width: 1000,
      height: 200,
      color: '5',
    },
  ];
  const ids: string[][] = [];
  for (let g = 0; g < groups; g++) {
    ids.push([]);
    for (let i = 0; i < perGroup; i++) {
      const id = `g${g}n${i}`;
      ids[g].push(id);
      nodes.push({
        id,
        type: 'text',
        text: text(g, i),
        x: i * 300,
        y: g * 400,
        width: 250,
        height: 160,
        'x-plugin': { keep: true },
      });
    }
  }
  const edges = [
    {
      id: 'edge-0',
      fromNode: ids[0][0],
      toNode: ids[0][1],
      fromSide: 'right',
      toSide: 'left',
      label: 'next',
    },
  ];
  const file = path.join(vault, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ nodes, edges, 'x-canvas-meta': { version: 3 } }, null, '\t'));
  return ids;
}

export interface Box {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Pairs of boxes that overlap (edges touching do not count). */
export function overlappingPairs(a: Box[], b: Box[]): [string, string][] {
  const out: [string, string][] = [];
  for (const p of a) {
    for (const q of b) {
      if (p.id === q.id) continue;
      if (p.x < q.x + q.width && q.x < p.x + p.width && p.y < q.y + q.height && q.y < p.y + p.height)
        out.push([p.id, q.id]);
    }
  }
  return out;
}
