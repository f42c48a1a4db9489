import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export interface DemoCanvas {
  /** Text node ids by colour. */
  byColor: Record<string, string[]>;
  /** File nodes whose file does not exist: they fail with NODE_CONTENT_MISSING. */
  missing: string[];
}

/**
 * Writes a canvas of coloured text nodes (`colors`: colour → how many) and `missing` file nodes pointing at files
 * that do not exist, laid out in rows.
 */
export function writeDemoCanvas(
  vault: string,
  rel: string,
  colors: Record<string, number>,
  missing = 0,
): DemoCanvas {
  const nodes: Record<string, unknown>[] = [];
  const byColor: Record<string, string[]> = {};
  let row = 0;
  for (const [color, count] of Object.entries(colors)) {
    byColor[color] = [];
    for (let i = 0; i < count; i++) {
      const id = `c${color}n${i}`;
      byColor[color].push(id);
      nodes.push({
        id,
        type: 'text',
        text: `# Concept ${color}.${i}\nHow topic ${i} of colour ${color} works, with an example.`,
        color,
        x: i * 300,
        y: row * 400,
        width: 250,
        height: 160,
      });
    }
    row++;
  }
  const missingIds: string[] = [];
  for (let i = 0; i < missing; i++) {
    const id = `missing${i}`;
    missingIds.push(id);
    nodes.push({
      id,
      type: 'file',
      file: `gone/nowhere-${i}.md`,
      x: i * 300,
      y: row * 400,
      width: 250,
      height: 160,
    });
  }
  const file = path.join(vault, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ nodes, edges: [] }, null, '\t'));
  return { byColor, missing: missingIds };
}
