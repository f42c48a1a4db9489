import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { CanvasService } from '../src/canvas';
import { parseCanvas } from '../src/canvas/json-canvas';
import type { EditorJournal } from './support/obsidian-editor';
import { http, readCanvas, startServer, type TestServer, waitTerminal } from './support/harness';

const CANVAS = 'Concurrent/board.canvas';
const SOURCES = 200;
const SCRATCH = 30;
const AGENTS = ['oral-explanation', 'basic-decomposition', 'scoring-agent', 'hint-generation'] as const;

/** 200 source nodes for the batch, and 30 unrelated scratch notes the editor may delete (no edges touch them). */
function boardCanvas(): string {
  const nodes: Record<string, unknown>[] = [];
  for (let i = 0; i < SOURCES; i++) {
    nodes.push({
      id: `src-${i}`,
      type: 'text',
      text: `# Concept ${i}\nConcept ${i} explains how light energy becomes chemical energy in cell number ${i}.`,
      x: (i % 20) * 320,
      y: Math.floor(i / 20) * 900,
      width: 260,
      height: 140,
    });
  }
  for (let i = 0; i < SCRATCH; i++)
    nodes.push({
      id: `scratch-${i}`,
      type: 'text',
      text: `scratch ${i}`,
      x: 8000,
      y: i * 200,
      width: 150,
      height: 80,
    });
  return JSON.stringify({ nodes, edges: [], 'x-board': { kept: true } }, null, '\t');
}

function startEditor(file: string): Promise<{ stop(): Promise<EditorJournal> }> {
  const deletable = Array.from({ length: SCRATCH }, (_, i) => `scratch-${i}`).join(',');
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(
    process.execPath,
    ['-r', '@swc-node/register', 'test/support/obsidian-editor.ts', file, '20', '7', deletable],
    { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`editor exited early (${code}): ${out}`)));
    const ready = setInterval(() => {
      if (!out.includes('READY')) return;
      clearInterval(ready);
      resolve({
        stop: () =>
          new Promise((done) => {
            child.removeAllListeners('exit');
            child.once('exit', () => done(JSON.parse(out.split('\n')[1]) as EditorJournal));
            child.kill('SIGTERM');
          }),
      });
    }, 10);
  });
}

describe('a 200-node batch while another program rewrites the canvas every 20 ms', () => {
  let server: TestServer;
  let journal: EditorJournal;
  let task: Record<string, any>;
  let canvas: { nodes: Record<string, any>[]; edges: Record<string, any>[] };
  let text: string;
  let stats: { writes: number; bytesWritten: number; restored: number; repaired: number };

  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '100-300' }, (vault) => {
      const { mkdirSync, writeFileSync } = jest.requireActual<typeof import('node:fs')>('node:fs');
      mkdirSync(path.join(vault, 'Concurrent'));
      writeFileSync(path.join(vault, CANVAS), boardCanvas());
    });
    const file = path.join(server.vault, CANVAS);
    const editor = await startEditor(file);
    // the editor child must stop even if the batch fails, or Jest never exits
    let stopped = false;
    try {
      const ids = Array.from({ length: SOURCES }, (_, i) => `src-${i}`);
      const { status, body } = await http<{ task_id: string }>('POST', `${server.url}/parallel/execute`, {
        canvas_path: CANVAS,
        max_concurrent: 12,
        groups: AGENTS.map((agent_type, g) => ({
          group_id: agent_type,
          agent_type,
          node_ids: ids.filter((_, i) => i % AGENTS.length === g),
        })),
      });
      expect({ status, body }).toMatchObject({ status: 202 });
      task = await waitTerminal(server, body.task_id, 120_000);
      journal = await editor.stop();
      stopped = true;
    } finally {
      if (!stopped) await editor.stop();
    }
    // our settle checks repair a stale save that came after our last write (they run within ~3 s of it)
    await new Promise((r) => setTimeout(r, 3_500));
    text = readFileSync(file, 'utf8');
    stats = server.app.get(CanvasService).writeStats();
    canvas = readCanvas(server.vault, CANVAS);
  }, 180_000);

  afterAll(() => server?.close());

  it('completes every node, while the editor saved many times', () => {
    expect(task.groups.flatMap((g: Record<string, any>) => g.errors)).toEqual([]);
    expect(task.status).toBe('completed');
    expect(task.completed_nodes).toBe(SOURCES);
    expect(journal.saves).toBeGreaterThan(20);
    expect(journal.unreadable).toBe(0); // our replacement is atomic: the editor never reads half a file
    expect(stats.writes).toBeLessThan(SOURCES); // coalesced
  });

  it('leaves a valid JSON Canvas keeping unknown fields, in the indentation of the last save', () => {
    expect('errors' in parseCanvas(text)).toBe(false);
    expect((JSON.parse(text) as Record<string, unknown>)['x-board']).toEqual({ kept: true });
    if (journal.indent === '\t') expect(text).toMatch(/^\{\n\t"nodes"/);
  });

  it("keeps every one of the editor's edits: moves, additions, deletions", () => {
    const byId = new Map(canvas.nodes.map((n) => [n.id as string, n]));
    const lostMoves = Object.entries(journal.moved).filter(([id, p]) => {
      const n = byId.get(id);
      return n !== undefined && (n.x !== p.x || n.y !== p.y);
    });
    expect(lostMoves).toEqual([]);
    expect(journal.added.filter((id) => !byId.has(id))).toEqual([]);
    expect(journal.deleted.filter((id) => byId.has(id))).toEqual([]);
    expect(journal.added.length + journal.deleted.length).toBeGreaterThan(10);
  });

  it('holds every result exactly once: file nodes, question grids, score cards, hints', () => {
    const ids = canvas.nodes.map((n) => n.id as string);
    expect(ids.length - new Set(ids).size).toBe(0);
    expect(canvas.edges.length - new Set(canvas.edges.map((e) => e.id as string)).size).toBe(0);
    const nodeIds = new Set(ids);
    expect(canvas.edges.filter((e) => !nodeIds.has(e.fromNode) || !nodeIds.has(e.toNode))).toEqual([]);
    const out = (source: string) => canvas.edges.filter((e) => e.fromNode === source);
    const results = (task.groups as Record<string, any>[]).flatMap((g) =>
      (g.results as Record<string, any>[]).map((r): Record<string, any> => ({
        ...r,
        agent_type: g.agent_type,
      })),
    );
    expect(results).toHaveLength(SOURCES);
    for (const r of results) {
      const edges = out(r.node_id as string);
      const target = (label: string) =>
        canvas.nodes.filter((n) => edges.some((e) => e.label === label && e.toNode === n.id));
      if (r.agent_type === 'oral-explanation') {
        expect(canvas.nodes.filter((n) => n.file === r.file_path)).toHaveLength(1);
      } else if (r.agent_type === 'basic-decomposition') {
        const listed =
          readFileSync(path.join(server.vault, r.file_path as string), 'utf8').match(/^\d+\. /gm) ?? [];
        expect(listed.length).toBeGreaterThanOrEqual(3);
        expect(edges.filter((e) => /^Q\d+$/.test(e.label as string))).toHaveLength(listed.length);
      } else if (r.agent_type === 'scoring-agent') {
        expect(target('scoring-agent')).toHaveLength(1);
        expect(target('scoring-agent')[0].text).toMatch(/\d+ \/ 100/);
      } else {
        expect(target('hint-generation')).toHaveLength(1);
      }
    }
  });
});
