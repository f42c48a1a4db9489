/**
 * A second process that edits a canvas the way Obsidian saves it while a user works: every `intervalMs` it reads the
 * file, makes one edit — move a node, add a node, delete one of the `deletable` nodes, or re-indent the file — and
 * writes the whole file back in place (truncate + write, not atomic). On SIGTERM it finishes the edit in hand and
 * prints its journal (one JSON line) so the test can check that every edit survived.
 *
 * Usage: node -r @swc-node/register test/support/obsidian-editor.ts <canvas> <intervalMs> <seed> <deletable,ids>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { prng } from './prng';

interface Node {
  id: string;
  x: number;
  y: number;
  [k: string]: unknown;
}
interface Canvas {
  nodes: Node[];
  edges: unknown[];
  [k: string]: unknown;
}

export interface EditorJournal {
  /** Last position the editor wrote for each node it moved. */
  moved: Record<string, { x: number; y: number }>;
  added: string[];
  deleted: string[];
  /** The indentation of its last save. */
  indent: string;
  saves: number;
  /** Reads that did not parse (our rename is atomic, so this must stay 0). */
  unreadable: number;
}

const [file, intervalArg, seedArg, deletableArg] = process.argv.slice(2);
const random = prng(Number(seedArg));
const deletable = new Set((deletableArg ?? '').split(',').filter(Boolean));
const journal: EditorJournal = { moved: {}, added: [], deleted: [], indent: '\t', saves: 0, unreadable: 0 };
let stopping = false;

function editOnce(step: number): void {
  let canvas: Canvas;
  try {
    canvas = JSON.parse(readFileSync(file, 'utf8')) as Canvas;
  } catch {
    journal.unreadable++;
    return;
  }
  let indent = journal.indent;
  switch (step % 4) {
    case 0: {
      const node = canvas.nodes[Math.floor(random() * canvas.nodes.length)];
      node.x += 7;
      node.y += 3;
      journal.moved[node.id] = { x: node.x, y: node.y };
      break;
    }
    case 1: {
      const id = `editor-${step}`;
      canvas.nodes.push({
        id,
        type: 'text',
        text: `typed ${step}`,
        x: -5000 - step * 10,
        y: -5000,
        width: 120,
        height: 60,
      });
      journal.added.push(id);
      break;
    }
    case 2: {
      const victim = canvas.nodes.find((n) => deletable.has(n.id));
      if (!victim) return;
      canvas.nodes = canvas.nodes.filter((n) => n !== victim);
      deletable.delete(victim.id);
      journal.deleted.push(victim.id);
      break;
    }
    default:
      indent = indent === '\t' ? '  ' : '\t';
  }
  writeFileSync(file, JSON.stringify(canvas, null, indent));
  journal.indent = indent;
  journal.saves++;
}

let step = 0;
const timer = setInterval(() => {
  if (stopping) return;
  editOnce(step++);
}, Number(intervalArg));

process.on('SIGTERM', () => {
  stopping = true;
  clearInterval(timer);
  process.stdout.write(`${JSON.stringify(journal)}\n`, () => process.exit(0));
});
process.stdout.write('READY\n');
