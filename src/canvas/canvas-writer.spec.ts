import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { atomicWrite } from './atomic-write';
import { CanvasWriteError } from './canvas.errors';
import { applyTheirEdits, type CanvasAddition, CanvasWriteQueue } from './canvas-writer';
import { type CanvasEdge, type CanvasNode, overlaps } from './json-canvas';
import { GRID_GAP, LAYOUT_GAP } from './layout';
import { VaultFs } from './vault-fs';

/** Queues made by a test, closed after it (their settle checks would otherwise fire during later tests). */
const queues: CanvasWriteQueue[] = [];
const track = (q: CanvasWriteQueue): CanvasWriteQueue => (queues.push(q), q);
afterEach(() => queues.splice(0).forEach((q) => q.close()));

/**
 * The real atomicWrite, with one seam: `mockState.beforeRename` runs right before the writer's own pre-rename
 * check, so a test can play "Obsidian saved the file between our read and our rename".
 */
const mockState: { beforeRename?: () => void; afterLastCheck?: () => void } = {};
jest.mock('./atomic-write', () => {
  const actual = jest.requireActual<typeof import('./atomic-write')>('./atomic-write');
  return {
    ...actual,
    atomicWrite: jest.fn(
      (file: string, data: string, options: Parameters<typeof actual.atomicWrite>[2] = {}) =>
        actual.atomicWrite(file, data, {
          ...options,
          lastCheck:
            options.lastCheck &&
            (() => {
              const ok = options.lastCheck?.() ?? true;
              if (ok) mockState.afterLastCheck?.();
              return ok;
            }),
          beforeRename: async () => {
            mockState.beforeRename?.();
            return options.beforeRename ? options.beforeRename() : true;
          },
        }),
    ),
  };
});
const readCanvasFrom = (text: string): CanvasJson => JSON.parse(text) as CanvasJson;
const atomicWriteMock = atomicWrite as jest.MockedFunction<typeof atomicWrite>;

interface CanvasJson {
  nodes: CanvasNode[];
  edges: { id: string; fromNode: string; toNode: string; [k: string]: unknown }[];
  [k: string]: unknown;
}

const SOURCE: CanvasNode = {
  id: 'src',
  type: 'text',
  text: 'Photosynthesis',
  x: 100,
  y: 0,
  width: 300,
  height: 120,
};
const OTHER: CanvasNode = {
  id: 'other',
  type: 'text',
  text: 'Elsewhere',
  x: 2000,
  y: 0,
  width: 200,
  height: 100,
  pluginField: { keep: 'me' },
};

function addition(n: number | string, sourceNodeId = 'src'): CanvasAddition {
  return {
    sourceNodeId,
    nodes: [{ id: `result-${n}`, type: 'file', file: `out/result-${n}.md`, width: 400, height: 240 }],
    edges: [
      {
        id: `edge-${n}`,
        fromNode: sourceNodeId,
        fromSide: 'bottom',
        toNode: `result-${n}`,
        toSide: 'top',
        label: 'agent',
      },
    ],
  };
}

describe('CanvasWriteQueue (real temp file)', () => {
  let dir: string;
  let file: string;

  const writeCanvas = (value: object, indent: string | number | undefined = '\t', tail = ''): string => {
    const text = JSON.stringify(value, null, indent) + tail;
    writeFileSync(file, text);
    return text;
  };
  const readCanvas = (): CanvasJson => JSON.parse(readFileSync(file, 'utf8')) as CanvasJson;
  const tempFiles = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'canvas-writer-'));
    file = path.join(dir, 'board.canvas');
    writeCanvas({ nodes: [SOURCE, OTHER], edges: [], 'x-plugin': { version: 3 } });
    atomicWriteMock.mockClear();
    delete mockState.beforeRename;
    delete mockState.afterLastCheck;
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('adds the node below its source with its edge, keeping unknown fields and tab indentation', async () => {
    const queue = track(new CanvasWriteQueue(file));
    await expect(queue.add(addition(1))).resolves.toEqual({ placed: true, alreadyPresent: false });

    const text = readFileSync(file, 'utf8');
    expect(text).toBe(JSON.stringify(JSON.parse(text), null, '\t'));
    const canvas = readCanvas();
    expect(canvas['x-plugin']).toEqual({ version: 3 });
    expect(canvas.nodes[1]).toEqual(OTHER);
    expect(canvas.nodes[2]).toEqual({
      id: 'result-1',
      type: 'file',
      file: 'out/result-1.md',
      x: SOURCE.x,
      y: SOURCE.y + SOURCE.height + LAYOUT_GAP,
      width: 400,
      height: 240,
    });
    expect(Object.keys(canvas.nodes[2])).toEqual(['id', 'type', 'file', 'x', 'y', 'width', 'height']);
    expect(canvas.edges).toEqual([addition(1).edges[0]]);
    expect(queue.writes).toBe(1);
    expect(queue.bytesWritten).toBe(statSync(file).size);
    expect(tempFiles()).toEqual([]);
  });

  describe('pacing', () => {
    /** A queue whose next write is paced a minute away (as after a slow write of a huge canvas). */
    const paced = (): CanvasWriteQueue => {
      const queue = track(new CanvasWriteQueue(file));
      (queue as unknown as { nextWriteAt: number }).nextWriteAt = performance.now() + 60_000;
      return queue;
    };

    it('holds an addition for the pause; an urgent one ends it and both go in one write', async () => {
      const queue = paced();
      let firstDone = false;
      const first = queue.add(addition(1)).then((o) => ((firstDone = true), o));
      await new Promise((r) => setTimeout(r, 50));
      expect(firstDone).toBe(false); // still pausing
      expect(readCanvas().nodes).toHaveLength(2);
      const outcomes = await Promise.all([first, queue.add(addition(2), { urgent: true })]);
      expect(outcomes.every((o) => o.placed && !o.alreadyPresent)).toBe(true);
      expect(queue.writes).toBe(1);
      expect(readCanvas().nodes.map((n) => n.id)).toEqual(['src', 'other', 'result-1', 'result-2']);
    });

    it('an urgent addition queued before the pause begins skips it', async () => {
      await expect(paced().add(addition(1), { urgent: true })).resolves.toMatchObject({ placed: true });
      expect(readCanvas().nodes).toHaveLength(3);
    });
  });

  it('keeps two-space indentation, CRLF line ends and the final newline of the file', async () => {
    const original = JSON.stringify({ nodes: [SOURCE], edges: [] }, null, 2).replace(/\n/g, '\r\n') + '\r\n';
    writeFileSync(file, original);
    await track(new CanvasWriteQueue(file)).add(addition(1));
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('}\r\n')).toBe(true);
    expect(text.replace(/\r\n/g, '')).not.toContain('\n');
    expect(text).toBe(JSON.stringify(JSON.parse(text), null, 2).replace(/\n/g, '\r\n') + '\r\n');
  });

  it('is idempotent by id: adding the same result again changes nothing and writes nothing', async () => {
    const queue = track(new CanvasWriteQueue(file));
    await queue.add(addition(1));
    const after = readFileSync(file, 'utf8');
    await expect(queue.add(addition(1))).resolves.toEqual({ placed: true, alreadyPresent: true });
    expect(readFileSync(file, 'utf8')).toBe(after);
    expect(queue.writes).toBe(1);
    expect(readCanvas().nodes.filter((n) => n.id === 'result-1')).toHaveLength(1);
  });

  it('is idempotent within one coalesced write too', async () => {
    const queue = track(new CanvasWriteQueue(file));
    const outcomes = await Promise.all([
      queue.add(addition('first')),
      queue.add(addition(2)),
      queue.add(addition(2)),
    ]);
    expect(outcomes).toEqual([
      { placed: true, alreadyPresent: false },
      { placed: true, alreadyPresent: false },
      { placed: true, alreadyPresent: true },
    ]);
    const canvas = readCanvas();
    expect(canvas.nodes.filter((n) => n.id === 'result-2')).toHaveLength(1);
    expect(canvas.edges.filter((e) => e.id === 'edge-2')).toHaveLength(1);
  });

  it('a fresh queue (e.g. after a restart) also finds what is already in the file', async () => {
    await track(new CanvasWriteQueue(file)).add(addition(1));
    const second = track(new CanvasWriteQueue(file));
    await expect(second.add(addition(1))).resolves.toEqual({ placed: true, alreadyPresent: true });
    expect(second.writes).toBe(0);
  });

  it('coalesces many concurrent additions into far fewer file replacements, none overlapping', async () => {
    const queue = track(new CanvasWriteQueue(file));
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => queue.add(addition(i))));
    expect(outcomes.every((o) => o.placed && !o.alreadyPresent)).toBe(true);
    // The first addition starts a write at once; the other 59 arrive while it runs and share the next one.
    expect(queue.writes).toBeLessThanOrEqual(2);
    expect(atomicWriteMock).toHaveBeenCalledTimes(queue.writes);

    const canvas = readCanvas();
    expect(canvas.nodes).toHaveLength(62);
    expect(canvas.edges).toHaveLength(60);
    expect(new Set(canvas.nodes.map((n) => n.id)).size).toBe(62);
    for (let i = 0; i < canvas.nodes.length; i++) {
      for (let j = i + 1; j < canvas.nodes.length; j++) {
        expect(overlaps(canvas.nodes[i], canvas.nodes[j])).toBe(false);
      }
    }
    expect(tempFiles()).toEqual([]);
  });

  it('resolves idle() only once everything queued is on disk', async () => {
    const queue = track(new CanvasWriteQueue(file));
    await queue.idle();
    const pending = [1, 2, 3].map((n) => queue.add(addition(n)));
    await queue.idle();
    expect(readCanvas().nodes.map((n) => n.id)).toEqual(['src', 'other', 'result-1', 'result-2', 'result-3']);
    await Promise.all(pending);
  });

  it('detects a change made between its read and its rename and redoes the merge on the new content', async () => {
    let interfered = 0;
    mockState.beforeRename = () => {
      if (interfered++ > 0) return;
      // "Obsidian" saves the file: the user added a node exactly where our result would have gone.
      const canvas = readCanvas();
      canvas.nodes.push({
        id: 'user-node',
        type: 'text',
        text: 'typed meanwhile',
        x: 100,
        y: 170,
        width: 300,
        height: 300,
      });
      writeCanvas(canvas);
    };
    const queue = track(new CanvasWriteQueue(file));
    await expect(queue.add(addition(1))).resolves.toEqual({ placed: true, alreadyPresent: false });

    expect(atomicWriteMock).toHaveBeenCalledTimes(2);
    expect(queue.writes).toBe(1);
    const canvas = readCanvas();
    const userNode = canvas.nodes.find((n) => n.id === 'user-node')!;
    const ours = canvas.nodes.find((n) => n.id === 'result-1')!;
    expect(userNode).toBeDefined();
    // the user's node took the spot under the source: the result goes beside it, its edge from the right side
    expect([ours.x, ours.y]).toEqual([SOURCE.x + SOURCE.width + LAYOUT_GAP, SOURCE.y]);
    expect(canvas.edges[0]).toMatchObject({ fromSide: 'right', toSide: 'left' });
    expect(overlaps(ours, userNode)).toBe(false);
    expect(tempFiles()).toEqual([]);
  });

  it('gives up with CanvasWriteError when the file keeps changing, leaving the other program its file', async () => {
    let n = 0;
    mockState.beforeRename = () => {
      const canvas = readCanvas();
      canvas.edits = ++n;
      writeCanvas(canvas);
    };
    const queue = track(new CanvasWriteQueue(file));
    const err: unknown = await queue.add(addition(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanvasWriteError);
    expect((err as CanvasWriteError).errorType).toBe('CANVAS_WRITE_FAILED');
    expect((err as Error).message).toBe('the canvas kept changing on disk; gave up after 40 attempts');
    expect(atomicWriteMock).toHaveBeenCalledTimes(40);
    expect(queue.writes).toBe(0);
    const canvas = readCanvas();
    expect(canvas.edits).toBe(40);
    expect(canvas.nodes.map((node) => node.id)).toEqual(['src', 'other']);
    expect(tempFiles()).toEqual([]);
  });

  it('reports a deleted source node as not placed, with a reason, and writes nothing', async () => {
    const before = writeCanvas({ nodes: [OTHER], edges: [] });
    const queue = track(new CanvasWriteQueue(file));
    await expect(queue.add(addition(1))).resolves.toEqual({
      placed: false,
      reason: 'source node src is no longer in the canvas',
    });
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(queue.writes).toBe(0);
    expect(atomicWriteMock).not.toHaveBeenCalled();
  });

  it('places what it can in a batch and reports the rest', async () => {
    const queue = track(new CanvasWriteQueue(file));
    const outcomes = await Promise.all([
      queue.add(addition(0)),
      queue.add(addition(1, 'gone')),
      queue.add(addition(2)),
    ]);
    expect(outcomes).toEqual([
      { placed: true, alreadyPresent: false },
      { placed: false, reason: 'source node gone is no longer in the canvas' },
      { placed: true, alreadyPresent: false },
    ]);
    expect(readCanvas().nodes.map((n) => n.id)).toEqual(['src', 'other', 'result-0', 'result-2']);
  });

  it('merges back a save that lands in the old file between the last check and the rename', async () => {
    const queue = track(new CanvasWriteQueue(file, undefined, []));
    mockState.afterLastCheck = () => {
      delete mockState.afterLastCheck;
      // the editor had the file open: it moves `other`, adds a note, re-indents, writing into the old inode
      const canvas = readCanvas();
      canvas.nodes = canvas.nodes.map((n) => (n.id === 'other' ? { ...n, x: 2600 } : n));
      canvas.nodes.push({ id: 'note', type: 'text', text: 'typed', x: -900, y: 0, width: 100, height: 50 });
      writeCanvas(canvas, 2);
    };
    await queue.add(addition(1));
    await queue.idle();
    const after = readCanvas();
    expect(after.nodes.map((n) => n.id)).toEqual(['src', 'other', 'result-1', 'note']);
    expect(after.nodes.find((n) => n.id === 'other')).toMatchObject({ x: 2600, pluginField: { keep: 'me' } });
    expect(readFileSync(file, 'utf8')).toMatch(/^\{\n {2}"nodes"/);
    expect(queue.repaired).toBe(1);
    expect(queue.writes).toBe(2);
  });

  describe('stale saves by another program', () => {
    const ids = (): string[] => readCanvas().nodes.map((n) => n.id);
    /** Another program saves the copy it read at `snapshot`, with the user's edit: `other` moved. */
    const staleSave = (snapshot: CanvasJson): void => {
      const edited = structuredClone(snapshot);
      edited.nodes = edited.nodes.map((n) => (n.id === 'other' ? { ...n, x: 2500, y: 40 } : n));
      writeCanvas(edited, 2);
    };

    it('merges again the results a stale save dropped, keeping the edit it carried', async () => {
      const queue = track(new CanvasWriteQueue(file, undefined, []));
      await queue.add(addition(1));
      const beforeSecond = readCanvas();
      await queue.add(addition(2));
      await queue.add(addition(3));
      staleSave(beforeSecond); // read after write 1, saved after write 3: results 2 and 3 are gone
      await queue.add(addition(4));
      expect(ids()).toEqual(['src', 'other', 'result-1', 'result-2', 'result-3', 'result-4']);
      expect(readCanvas().nodes.find((n) => n.id === 'other')).toMatchObject({ x: 2500, y: 40 });
      expect(readCanvas().edges.map((e) => e.id)).toEqual(['edge-1', 'edge-2', 'edge-3', 'edge-4']);
      expect(queue.restored).toBe(2);
      expect(readFileSync(file, 'utf8')).toMatch(/^\{\n {2}"nodes"/); // the saver's indentation
    });

    it('leaves a result deleted on purpose deleted: a later result is still there', async () => {
      const queue = track(new CanvasWriteQueue(file, undefined, []));
      await queue.add(addition(1));
      await queue.add(addition(2));
      const canvas = readCanvas();
      canvas.nodes = canvas.nodes.filter((n) => n.id !== 'result-1');
      writeCanvas(canvas);
      await queue.add(addition(3));
      expect(ids()).toEqual(['src', 'other', 'result-2', 'result-3']);
      expect(queue.restored).toBe(0);
    });

    it('repairs a stale save after the last write by itself (settle check), then stops when closed', async () => {
      const queue = track(new CanvasWriteQueue(file, undefined, [30, 60]));
      const original = readCanvas();
      await queue.add(addition(1));
      staleSave(original);
      for (let i = 0; i < 200 && !ids().includes('result-1'); i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(ids()).toEqual(['src', 'other', 'result-1']);
      expect(readCanvas().nodes.find((n) => n.id === 'other')).toMatchObject({ x: 2500 });
      await queue.idle(); // the file is visible a moment before the write is counted (fsync after the rename)
      expect({ restored: queue.restored, writes: queue.writes }).toEqual({ restored: 1, writes: 2 });
      queue.close();
      await queue.idle(); // a settle check already running finishes first
      staleSave(original);
      await new Promise((r) => setTimeout(r, 150));
      await queue.idle();
      expect(ids()).toEqual(['src', 'other']);
    });

    it('re-reads a file that changes while it is being read', async () => {
      const queue = track(new CanvasWriteQueue(file, undefined, []));
      const readFile = VaultFs.prototype.readFile;
      let reads = 0;
      const spy = jest.spyOn(VaultFs.prototype, 'readFile').mockImplementation(async function (
        this: VaultFs,
        f: string,
      ) {
        const bytes = await readFile.call(this, f);
        // a save lands mid-read
        if (reads++ === 0) writeCanvas({ ...readCanvasFrom(bytes.toString('utf8')), extra: true });
        return bytes;
      });
      try {
        await queue.add(addition(1));
      } finally {
        spy.mockRestore();
      }
      expect(readCanvas().extra).toBe(true);
      expect(ids()).toContain('result-1');
    });
  });

  it('leaves deleted what the user deleted from a result that is still there (an edge, one of its nodes)', async () => {
    const queue = track(new CanvasWriteQueue(file));
    const grid: CanvasAddition = {
      sourceNodeId: 'src',
      columns: 2,
      nodes: ['q1', 'q2', 'q3'].map((id) => ({ id, type: 'text', text: id, width: 300, height: 120 })),
      edges: ['q1', 'q2', 'q3'].map((id) => ({ id: `e-${id}`, fromNode: 'src', toNode: id, label: id })),
    };
    await queue.add(grid);
    const canvas = readCanvas();
    canvas.nodes = canvas.nodes.filter((n) => n.id !== 'q2');
    canvas.edges = canvas.edges.filter((e) => e.id === 'e-q3');
    const before = writeCanvas(canvas);
    await expect(queue.add(grid)).resolves.toEqual({ placed: true, alreadyPresent: true });
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(queue.writes).toBe(1);
  });

  it('lays a block out as a grid under the source and recolours the source on a copy', async () => {
    const queue = track(new CanvasWriteQueue(file));
    const src = readCanvas().nodes.find((n) => n.id === 'src') as CanvasNode;
    await queue.add({
      sourceNodeId: 'src',
      columns: 2,
      sourceColor: '4',
      nodes: ['a', 'b', 'c'].map((id, i) => ({
        id,
        type: 'text',
        text: id,
        width: 300,
        height: 100 + i * 50,
      })),
      edges: [],
    });
    const after = readCanvas();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => after.nodes.find((n) => n.id === id) as CanvasNode);
    expect(a.y).toBeGreaterThan(src.y + src.height);
    expect([a.y, b.x, c.x, c.y]).toEqual([b.y, a.x + 300 + GRID_GAP, a.x, a.y + 150 + GRID_GAP]);
    expect(after.nodes.find((n) => n.id === 'src')?.color).toBe('4');
    expect(src.color).toBeUndefined();
  });

  it('places a right-hand block beside the source, the next one in the nearest free spot', async () => {
    const queue = track(new CanvasWriteQueue(file));
    const src = readCanvas().nodes.find((n) => n.id === 'src') as CanvasNode;
    const card = (id: string): CanvasAddition => ({
      sourceNodeId: 'src',
      side: 'right',
      nodes: [{ id, type: 'text', text: id, width: 200, height: 80 }],
      edges: [],
    });
    await queue.add(card('s1'));
    await queue.add(card('s2'));
    const after = readCanvas();
    const [s1, s2] = ['s1', 's2'].map((id) => after.nodes.find((n) => n.id === id) as CanvasNode);
    expect([s1.x, s1.y]).toEqual([src.x + src.width + LAYOUT_GAP, src.y]);
    expect([s2.x, s2.y]).toEqual([src.x, src.y + src.height + LAYOUT_GAP]); // under it: nearer than below s1
    expect(
      after.nodes.filter((n) => n !== s1 && n !== s2).some((n) => overlaps(n, s1) || overlaps(n, s2)),
    ).toBe(false);
  });

  it('re-adds a deleted result node without duplicating the edge that was left behind', async () => {
    const queue = track(new CanvasWriteQueue(file));
    await queue.add(addition(1));
    const canvas = readCanvas();
    canvas.nodes = canvas.nodes.filter((n) => n.id !== 'result-1');
    writeCanvas(canvas);
    await expect(queue.add(addition(1))).resolves.toMatchObject({ placed: true });
    const after = readCanvas();
    expect(after.nodes.filter((n) => n.id === 'result-1')).toHaveLength(1);
    expect(after.edges).toEqual([addition(1).edges[0]]);
  });

  it('does not restore an edge whose source node is gone', async () => {
    const queue = track(new CanvasWriteQueue(file));
    await queue.add(addition(1));
    const canvas = readCanvas();
    canvas.edges = [];
    canvas.nodes = canvas.nodes.filter((n) => n.id !== 'src');
    const before = writeCanvas(canvas);
    await expect(queue.add(addition(1))).resolves.toEqual({ placed: true, alreadyPresent: true });
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('rejects with CanvasWriteError on invalid JSON and leaves the file byte for byte unchanged', async () => {
    const garbage = '{"nodes": [ { "id": "a", "type": "text" ,,, oops';
    writeFileSync(file, garbage);
    const queue = track(new CanvasWriteQueue(file));
    const results = await Promise.allSettled([queue.add(addition(1)), queue.add(addition(2))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as Error;
      expect(reason).toBeInstanceOf(CanvasWriteError);
      expect(reason.message).toMatch(
        /^the canvas on disk is no longer valid JSON Canvas \(not JSON: .*\); left it untouched$/,
      );
    }
    expect(readFileSync(file, 'utf8')).toBe(garbage);
    expect(atomicWriteMock).not.toHaveBeenCalled();
    expect(tempFiles()).toEqual([]);
  });

  it('rejects valid JSON that is not a valid canvas, naming the first problem', async () => {
    writeCanvas({ nodes: [{ id: 'a' }] });
    await expect(track(new CanvasWriteQueue(file)).add(addition(1))).rejects.toThrow(
      'the canvas on disk is no longer valid JSON Canvas (must be a string); left it untouched',
    );
  });

  it('wraps file-system failures in CanvasWriteError with the cause', async () => {
    rmSync(file);
    const err: unknown = await track(new CanvasWriteQueue(file))
      .add(addition(1))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CanvasWriteError);
    expect((err as Error).message).toBe('the canvas no longer exists');
    expect((err as Error).cause).toMatchObject({ code: 'ENOENT' });
  });

  it('keeps working after a failed write once the file is valid again', async () => {
    writeFileSync(file, 'not json');
    const queue = track(new CanvasWriteQueue(file));
    await expect(queue.add(addition(1))).rejects.toBeInstanceOf(CanvasWriteError);
    writeCanvas({ nodes: [SOURCE], edges: [] });
    await expect(queue.add(addition(1))).resolves.toEqual({ placed: true, alreadyPresent: false });
    expect(readCanvas().nodes.map((n) => n.id)).toEqual(['src', 'result-1']);
  });
});

describe('applyTheirEdits (three-way merge by id)', () => {
  const node = (id: string, x = 0, extra: Record<string, unknown> = {}): CanvasNode => ({
    id,
    type: 'text',
    text: id,
    x,
    y: 0,
    width: 10,
    height: 10,
    ...extra,
  });
  const doc = (nodes: CanvasNode[], raw: Record<string, unknown> = {}) => ({
    raw: { ...raw, nodes, edges: [] },
    nodes,
    edges: [] as CanvasEdge[],
  });

  it('takes their additions, changes, deletions and top-level edits; ours win where both changed', () => {
    const base = doc([node('a'), node('b'), node('c'), node('d')], { meta: 1, gone: true });
    const theirs = doc([node('a', 5), node('b'), node('d', 9), node('t')], { meta: 2 });
    const mine = doc([node('a'), node('b'), node('c'), node('d', 7), node('r')], { meta: 1, gone: true });
    applyTheirEdits(mine, base, theirs);
    expect(mine.nodes.map((n) => [n.id, n.x])).toEqual([
      ['a', 5], // they moved it, we did not
      ['b', 0],
      // c: they deleted it, we had not touched it
      ['d', 7], // both moved it: ours is newer
      ['r', 0], // ours
      ['t', 0], // theirs
    ]);
    expect(mine.raw).toMatchObject({ meta: 2 });
    expect('gone' in mine.raw).toBe(false);
  });
});
