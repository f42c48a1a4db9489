/**
 * Where results land, before and after the nearest-free-spot placement (issue 15, item 3), on the bundled vault:
 * for every canvas in examples/vault, a batch over all its source nodes (every node but groups) with each output
 * kind — `oral-explanation` (a markdown result file card), `basic-decomposition` (question cards), and both
 * together — placed one result after the other as the canvas writer merges them, with the OLD placement (a copy
 * below: under the source, moving down past everything; right of the source after 48 obstacles) and the NEW one
 * (`placeAddition` of src/canvas/layout.ts). The agents' outputs are the offline provider's real ones.
 *
 * Per result card: source→card distance centre to centre and gap between the rectangles; whether its edge (a
 * straight segment between the sides it is attached to) passes through another card of the final canvas (the
 * source, the card itself and groups around the source left out; cards of the same result counted apart); and
 * overlaps of result cards with any other node (must be 0).
 *
 * Run: node -r @swc-node/register bench/layout/placement-figures.ts — writes bench/results/placement.json.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describeUrl } from '../../src/agent/offline-agent-runner';
import { detectLanguage } from '../../src/agent/content-analysis';
import { factsOf, OFFLINE_TEMPLATES } from '../../src/agent/offline-templates';
import type { CanvasAddition } from '../../src/canvas/canvas-writer';
import {
  type CanvasEdge,
  type CanvasNode,
  overlaps,
  parseCanvas,
  type Rect,
} from '../../src/canvas/json-canvas';
import {
  anchor,
  containsRect,
  blockCards,
  LAYOUT_GAP,
  LAYOUT_MARGIN,
  CanvasLayout,
  rectGap,
  rectOf,
  segmentCrossesRect,
  type Side,
} from '../../src/canvas/layout';
import { resultAddition } from '../../src/canvas/result-nodes';

const ROOT = path.resolve(__dirname, '../..');
const VAULT = path.join(ROOT, 'examples/vault');
const OUT = path.join(ROOT, 'bench/results/placement.json');

const out = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

// ---------------------------------------------------------------------------------------------------------------
// The OLD placement, as it was before issue 15 (src/canvas/layout.ts placeBelow / placeRight and the canvas
// writer's placeBlock), by plain scans: the obstacle index only made the same rule fast.

const OLD_MAX_BELOW_JUMPS = 48;

function oldSlideDown(start: Rect, all: readonly Rect[], maxJumps: number): Rect | undefined {
  const r = { ...start, x: Math.round(start.x), y: Math.round(start.y) };
  for (;;) {
    const hit = all.filter((o) => overlaps(r, o, LAYOUT_MARGIN));
    if (!hit.length) return r;
    if (maxJumps-- <= 0) return undefined;
    r.y = Math.round(Math.max(...hit.map((o) => o.y + o.height)) + LAYOUT_GAP);
  }
}

function oldSlideRight(start: Rect, all: readonly Rect[]): Rect {
  const r = { ...start, x: Math.round(start.x), y: Math.round(start.y) };
  for (;;) {
    const hit = all.filter((o) => overlaps(r, o, LAYOUT_MARGIN));
    if (!hit.length) return r;
    r.x = Math.round(Math.max(...hit.map((o) => o.x + o.width)) + LAYOUT_GAP);
  }
}

function oldPlaceAddition(
  source: Rect,
  addition: CanvasAddition,
  all: readonly Rect[],
): { nodes: CanvasNode[]; edges: CanvasEdge[] } {
  // the grid of cards inside the block is the same then and now: only where the block goes differs
  const { width, height, cards } = blockCards(addition);
  const right = { x: source.x + source.width + LAYOUT_GAP, y: source.y, width, height };
  const block =
    addition.side === 'right'
      ? oldSlideRight(right, all)
      : (oldSlideDown(
          { x: source.x, y: source.y + source.height + LAYOUT_GAP, width, height },
          all,
          OLD_MAX_BELOW_JUMPS,
        ) ?? oldSlideRight(right, all));
  const nodes = addition.nodes.map(({ id, type, width: w, height: h, ...rest }, i): CanvasNode => ({
    id,
    type,
    ...rest,
    x: block.x + cards[i].x,
    y: block.y + cards[i].y,
    width: w,
    height: h,
  }));
  return { nodes, edges: addition.edges };
}

// ---------------------------------------------------------------------------------------------------------------
// A batch, merged one result after the other

/** Places one addition after the other on a canvas, as the canvas writer merges them. */
type Placer = (
  nodes: readonly CanvasNode[],
  edges: readonly CanvasEdge[],
) => (source: Rect, addition: CanvasAddition) => { nodes: CanvasNode[]; edges: CanvasEdge[] };

export const PLACERS: Record<'old' | 'new', Placer> = {
  old: (nodes) => {
    const rects = nodes.map(rectOf);
    return (source, addition) => {
      const block = oldPlaceAddition(source, addition, rects);
      rects.push(...block.nodes.map(rectOf));
      return block;
    };
  },
  new: (nodes, edges) => {
    const layout = new CanvasLayout(nodes, edges);
    return (source, addition) => {
      const block = layout.place(source, addition);
      layout.add(block.nodes, block.edges);
      return block;
    };
  },
};

const SCENARIOS: Record<string, readonly string[]> = {
  markdown: ['oral-explanation'],
  questions: ['basic-decomposition'],
  'markdown+questions': ['oral-explanation', 'basic-decomposition'],
};

interface Placed {
  source: CanvasNode;
  /** The result's cards and the edges to them. */
  cards: CanvasNode[];
  edges: CanvasEdge[];
}

/** What an agent reads of a node, as the canvas service gives it (a file node: its note). */
function contentOf(node: CanvasNode, canvasDir: string): string {
  if (node.type === 'file' && node.file) {
    try {
      return readFileSync(path.join(VAULT, node.file), 'utf8');
    } catch {
      return readFileSync(path.join(canvasDir, node.file), 'utf8');
    }
  }
  if (node.type === 'link') return describeUrl(node.url ?? '');
  return node.text ?? '';
}

/** The additions of a batch: per agent (group), one per source node, in canvas order. */
export function batchAdditions(
  rel: string,
  nodes: readonly CanvasNode[],
  agents: readonly string[],
): CanvasAddition[] {
  const sources = nodes.filter((n) => n.type !== 'group');
  return agents.flatMap((agent) =>
    sources.map((n) => {
      const content = contentOf(n, path.dirname(path.join(VAULT, rel)));
      const output = OFFLINE_TEMPLATES[agent](factsOf(content, detectLanguage(content)));
      return resultAddition({
        key: `placement\0${rel}\0${n.id}\0${agent}`,
        sourceNodeId: n.id,
        agentType: agent,
        fileRel: `${rel.replace(/\.canvas$/, '')}-explanations/${agent} - ${n.id}.md`,
        body: `# ${agent}\n\n${output.markdown.trim()}\n`,
        structured: output.structured,
      });
    }),
  );
}

export function runBatch(
  nodes: readonly CanvasNode[],
  edges: readonly CanvasEdge[],
  additions: readonly CanvasAddition[],
  placer: Placer,
): { all: CanvasNode[]; placed: Placed[] } {
  const all = [...nodes];
  const place = placer(nodes, edges);
  const placed: Placed[] = [];
  for (const addition of additions) {
    const source = all.find((n) => n.id === addition.sourceNodeId) as CanvasNode;
    const block = place(rectOf(source), addition);
    all.push(...block.nodes);
    placed.push({ source, cards: block.nodes, edges: block.edges });
  }
  return { all, placed };
}

// ---------------------------------------------------------------------------------------------------------------
// Figures

interface Figures {
  results: number;
  cards: number;
  mean_centre_px: number;
  max_centre_px: number;
  mean_gap_px: number;
  max_gap_px: number;
  /** Result edges passing through a card that is not part of their own result. */
  edges_crossing_a_card: number;
  /** …and through a card of their own result (a question grid's other cards). */
  edges_crossing_own_cards: number;
  /** Result cards overlapping any other node. */
  overlaps: number;
}

const centre = (r: Rect) => ({ x: r.x + r.width / 2, y: r.y + r.height / 2 });

export function figuresOf(all: readonly CanvasNode[], placed: readonly Placed[]): Figures {
  const centres: number[] = [];
  const gaps: number[] = [];
  let crossing = 0;
  let crossingOwn = 0;
  let overlapping = 0;
  for (const p of placed) {
    const own = new Set(p.cards.map((c) => c.id));
    for (const card of p.cards) {
      const a = centre(p.source);
      const b = centre(card);
      centres.push(Math.hypot(a.x - b.x, a.y - b.y));
      gaps.push(rectGap(p.source, card));
      overlapping += all.filter((n) => n !== card && overlaps(n, card)).length;
      const edge = p.edges.find((e) => e.toNode === card.id);
      if (!edge) continue;
      const from = anchor(p.source, (edge.fromSide as Side | undefined) ?? 'bottom');
      const to = anchor(card, (edge.toSide as Side | undefined) ?? 'top');
      const crossed = all.filter(
        (n) => n !== card && !containsRect(n, p.source) && segmentCrossesRect(from, to, n),
      );
      if (crossed.some((n) => !own.has(n.id))) crossing++;
      if (crossed.some((n) => own.has(n.id))) crossingOwn++;
    }
  }
  const mean = (v: number[]) => (v.length ? v.reduce((s, x) => s + x, 0) / v.length : 0);
  const r = (n: number) => Math.round(n * 10) / 10;
  return {
    results: placed.length,
    cards: centres.length,
    mean_centre_px: r(mean(centres)),
    max_centre_px: r(Math.max(0, ...centres)),
    mean_gap_px: r(mean(gaps)),
    max_gap_px: r(Math.max(0, ...gaps)),
    edges_crossing_a_card: crossing,
    edges_crossing_own_cards: crossingOwn,
    overlaps: overlapping,
  };
}

function canvasesIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.canvas'))
    .map((f) => f.split(path.sep).join('/'))
    .sort();
}

function sum(rows: readonly Figures[]): Figures {
  const results = rows.reduce((s, f) => s + f.results, 0);
  const cards = rows.reduce((s, f) => s + f.cards, 0);
  const weighted = (k: 'mean_centre_px' | 'mean_gap_px') =>
    Math.round((rows.reduce((s, f) => s + f[k] * f.cards, 0) / Math.max(1, cards)) * 10) / 10;
  return {
    results,
    cards,
    mean_centre_px: weighted('mean_centre_px'),
    max_centre_px: Math.max(...rows.map((f) => f.max_centre_px)),
    mean_gap_px: weighted('mean_gap_px'),
    max_gap_px: Math.max(...rows.map((f) => f.max_gap_px)),
    edges_crossing_a_card: rows.reduce((s, f) => s + f.edges_crossing_a_card, 0),
    edges_crossing_own_cards: rows.reduce((s, f) => s + f.edges_crossing_own_cards, 0),
    overlaps: rows.reduce((s, f) => s + f.overlaps, 0),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

function main(): void {
  const perCanvas: Record<string, Record<string, Record<'old' | 'new', Figures>>> = {};
  const totals: Record<string, Record<'old' | 'new', Figures[]>> = {};
  const rows: string[][] = [
    [
      'canvas',
      'kind',
      'layout',
      'cards',
      'mean ctr',
      'max ctr',
      'mean gap',
      'max gap',
      'edges×card',
      'edges×own',
      'overlaps',
    ],
  ];
  const row = (canvas: string, kind: string, which: string, f: Figures) =>
    rows.push([
      canvas,
      kind,
      which,
      String(f.cards),
      String(f.mean_centre_px),
      String(f.max_centre_px),
      String(f.mean_gap_px),
      String(f.max_gap_px),
      String(f.edges_crossing_a_card),
      String(f.edges_crossing_own_cards),
      String(f.overlaps),
    ]);
  for (const rel of canvasesIn(VAULT)) {
    const parsed = parseCanvas(readFileSync(path.join(VAULT, rel), 'utf8'));
    if ('errors' in parsed) throw new Error(`${rel}: ${parsed.errors[0].message}`);
    const nodes = parsed.doc.nodes;
    perCanvas[rel] = {};
    for (const [kind, agents] of Object.entries(SCENARIOS)) {
      const additions = batchAdditions(rel, nodes, agents);
      const figures = {} as Record<'old' | 'new', Figures>;
      for (const which of ['old', 'new'] as const) {
        const { all, placed } = runBatch(nodes, parsed.doc.edges, additions, PLACERS[which]);
        figures[which] = figuresOf(all, placed);
        (totals[kind] ??= { old: [], new: [] })[which].push(figures[which]);
        row(rel, kind, which, figures[which]);
      }
      perCanvas[rel][kind] = figures;
    }
  }
  const summary: Record<string, Record<'old' | 'new', Figures>> = {};
  for (const [kind, t] of Object.entries(totals)) {
    summary[kind] = { old: sum(t.old), new: sum(t.new) };
    row('ALL', kind, 'old', summary[kind].old);
    row('ALL', kind, 'new', summary[kind].new);
  }
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    `${JSON.stringify(
      {
        about:
          'Result placement on examples/vault, OLD (under the source, moving down) vs NEW (nearest free spot beside ' +
          'the source); see bench/layout/placement-figures.ts. Distances in canvas px; edges: straight segments ' +
          'between their attachment sides.',
        summary,
        canvases: perCanvas,
      },
      null,
      2,
    )}\n`,
  );
  out(table(rows));
  out();
  out(`written: ${path.relative(ROOT, OUT)}`);
}

if (require.main === module) main();
