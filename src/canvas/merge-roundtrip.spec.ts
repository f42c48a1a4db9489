import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type CanvasAddition, CanvasWriteQueue } from './canvas-writer';

/** Queues made by a test, closed after it (their settle checks would otherwise fire during later tests). */
const queues: CanvasWriteQueue[] = [];
const track = (q: CanvasWriteQueue): CanvasWriteQueue => (queues.push(q), q);
afterEach(() => queues.splice(0).forEach((q) => q.close()));

/** JSON values as plugins store them: unicode strings, numbers, booleans, nested objects and arrays. */
const pluginValue = fc.jsonValue({ maxDepth: 3 });
const unicodeText = fc.string({ unit: 'binary', maxLength: 40 });
const extraFields = fc.dictionary(
  fc
    .string({ minLength: 1, maxLength: 8 })
    .filter((k) => !['id', 'type', 'x', 'y', 'width', 'height', 'nodes', 'edges'].includes(k)),
  pluginValue,
  { maxKeys: 3 },
);

const node = (i: number) =>
  fc
    .record({
      kind: fc.constantFrom('text', 'file', 'link', 'group', 'x-plugin-card'),
      text: unicodeText,
      x: fc.integer({ min: -5000, max: 5000 }),
      y: fc.integer({ min: -5000, max: 5000 }),
      width: fc.integer({ min: 1, max: 800 }),
      height: fc.integer({ min: 1, max: 800 }),
      color: fc.option(fc.constantFrom('1', '2', '3', '4', '5', '6', '#FF00AA'), { nil: undefined }),
      extra: extraFields,
    })
    .map(({ kind, text, extra, color, ...geo }) => {
      const base: Record<string, unknown> = { id: `node-${i}-${text.length}`, type: kind, ...geo };
      if (kind === 'text') base.text = text;
      if (kind === 'file') base.file = `notes/${i}.md`;
      if (kind === 'link') base.url = `https://example.org/${encodeURIComponent(text)}`;
      if (kind === 'group') base.label = text; // groups may overlap and nest
      if (color) base.color = color;
      return { ...extra, ...base };
    });

const canvasArb = fc
  .integer({ min: 1, max: 12 })
  .chain((n) =>
    fc.record({
      nodes: fc.tuple(...Array.from({ length: n }, (_, i) => node(i))),
      edgeCount: fc.integer({ min: 0, max: 5 }),
      top: extraFields,
      indent: fc.constantFrom('\t', '  ', '    ', undefined),
      finalNewline: fc.boolean(),
    }),
  )
  .map(({ nodes, edgeCount, top, indent, finalNewline }) => {
    const edges = Array.from({ length: edgeCount }, (_, i) => ({
      id: `edge-${i}`,
      fromNode: nodes[i % nodes.length].id,
      toNode: nodes[(i + 1) % nodes.length].id,
      label: `l${i}`,
      'x-weight': i,
    }));
    return { doc: { ...top, nodes, edges }, indent, finalNewline };
  });

describe('read–merge–write round trip (fast-check)', () => {
  it('keeps every original node, edge, unknown field, key order and the indentation; adds exactly the new ones', async () => {
    await fc.assert(
      fc.asyncProperty(
        canvasArb,
        fc.integer({ min: 1, max: 3 }),
        async ({ doc, indent, finalNewline }, adds) => {
          const dir = mkdtempSync(path.join(tmpdir(), 'roundtrip-'));
          try {
            const file = path.join(dir, 'c.canvas');
            const original = JSON.stringify(doc, null, indent) + (finalNewline ? '\n' : '');
            writeFileSync(file, original);
            const queue = track(new CanvasWriteQueue(file));
            const sources = doc.nodes.slice(0, adds);
            const additions: CanvasAddition[] = sources.map((s, i) => ({
              sourceNodeId: s.id as string,
              nodes: [{ id: `result-${i}`, type: 'file', file: `out/${i}.md`, width: 400, height: 240 }],
              edges: [
                {
                  id: `result-edge-${i}`,
                  fromNode: s.id as string,
                  fromSide: 'bottom',
                  toNode: `result-${i}`,
                  toSide: 'top',
                  label: 'agent',
                },
              ],
            }));
            await Promise.all(additions.map((a) => queue.add(a)));
            const text = readFileSync(file, 'utf8');
            const after = JSON.parse(text) as typeof doc;
            // what was on disk (JSON has no -0, for one), not the generator's in-memory value
            const before = JSON.parse(original) as typeof doc;
            // originals first, unchanged (deep, including unknown fields), new ones after
            expect(after.nodes.slice(0, doc.nodes.length)).toEqual(before.nodes);
            expect(after.edges.slice(0, doc.edges.length)).toEqual(before.edges);
            expect(after.nodes.slice(doc.nodes.length).map((n) => n.id)).toEqual(
              additions.map((a) => a.nodes[0].id),
            );
            expect(after.edges.slice(doc.edges.length).map((e) => e.id)).toEqual(
              additions.map((a) => a.edges[0].id),
            );
            // unknown top-level keys and key order kept; formatting kept
            expect(Object.keys(after)).toEqual(Object.keys(before));
            expect(text).toBe(JSON.stringify(after, null, indent) + (finalNewline ? '\n' : ''));
            // replaying the same additions changes nothing
            await Promise.all(additions.map((a) => queue.add(a)));
            expect(readFileSync(file, 'utf8')).toBe(text);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
