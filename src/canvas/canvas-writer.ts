import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as path from 'node:path';
import { failpoint } from '../common/failpoints';
import { atomicWrite, removeStaleTempFiles } from './atomic-write';
import { CanvasWriteError } from './canvas.errors';
import {
  type CanvasDocument,
  type CanvasEdge,
  type CanvasNode,
  detectFormat,
  parseCanvas,
  type Rect,
  serializeCanvas,
} from './json-canvas';
import { placeBelow, rectOf } from './layout';

/** A result to add to a canvas: a node to place under `sourceNodeId`, and an edge to it. Ids are deterministic. */
export interface CanvasAddition {
  sourceNodeId: string;
  /** The node without position; `x`/`y` are chosen at write time against what is on disk then. */
  node: { id: string; type: string; file?: string; text?: string; width: number; height: number };
  edge: CanvasEdge;
}

export type AdditionOutcome = { placed: true; alreadyPresent: boolean } | { placed: false; reason: string };

interface Pending {
  addition: CanvasAddition;
  resolve: (o: AdditionOutcome) => void;
  reject: (e: unknown) => void;
}

const MAX_ATTEMPTS = 8;
/** Base pause before merging again after another program changed the file under us. */
const CHANGED_BACKOFF_MS = 5;
/** Re-reads of a file that does not parse (maybe half-written by another program) before giving up. */
const INVALID_RETRIES = 6;
const INVALID_RETRY_MS = 15;

/**
 * One serialized write queue for one canvas file. Additions that arrive while a write is in progress are merged
 * into the next single write (coalescing). Every write re-reads the file, merges into what is on disk now, and
 * replaces it atomically, re-checking the content hash just before the rename and redoing the merge when another
 * program changed the file meanwhile.
 */
export class CanvasWriteQueue {
  private pending: Pending[] = [];
  private draining: Promise<void> | undefined;
  /** What this queue wrote last: reused instead of re-parsing while nobody else changed the file. */
  private last: { text: string; doc: CanvasDocument } | undefined;
  /** Temp files a killed process left beside the canvas, removed before the first write. */
  private swept: Promise<void> | undefined;
  /** Number of file replacements done, and bytes written (for benchmarks and logs). */
  writes = 0;
  bytesWritten = 0;

  constructor(
    private readonly absPath: string,
    /** Called with the document just written (e.g. to refresh a read cache). */
    private readonly onWritten: (doc: CanvasDocument) => void | Promise<void> = () => undefined,
  ) {}

  add(addition: CanvasAddition): Promise<AdditionOutcome> {
    return new Promise<AdditionOutcome>((resolve, reject) => {
      this.pending.push({ addition, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  /** Resolves when everything queued so far is written. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    try {
      this.swept ??= removeStaleTempFiles(path.dirname(this.absPath), path.basename(this.absPath));
      await this.swept;
      while (this.pending.length) {
        const batch = this.pending;
        this.pending = [];
        try {
          const outcomes = await this.writeOnce(batch.map((p) => p.addition));
          batch.forEach((p, i) => p.resolve(outcomes[i]));
        } catch (err) {
          const error =
            err instanceof CanvasWriteError
              ? err
              : new CanvasWriteError(`cannot update the canvas: ${(err as Error).message}`, { cause: err });
          batch.forEach((p) => p.reject(error));
        }
      }
    } finally {
      this.draining = undefined;
    }
  }

  private async writeOnce(additions: CanvasAddition[]): Promise<AdditionOutcome[]> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const { text, doc: current } = await this.readCurrent();
      const hash = sha256(text);
      // Merge into shallow copies: the documents we keep (and the read cache) are never mutated.
      const doc: CanvasDocument = { raw: current.raw, nodes: [...current.nodes], edges: [...current.edges] };
      const outcomes = merge(doc.nodes, doc.edges, additions);
      if (!outcomes.some((o) => o.placed && !o.alreadyPresent)) return outcomes;
      const out = serializeCanvas(doc, detectFormat(text));
      const replaced = await atomicWrite(this.absPath, out, {
        fsync: true,
        // the file must be exactly what was merged into (content hash): otherwise merge again
        beforeRename: async () => {
          const unchanged = sha256(await fs.readFile(this.absPath, 'utf8')) === hash;
          if (unchanged) failpoint('canvas.before-rename');
          return unchanged;
        },
      });
      if (replaced) {
        failpoint('canvas.after-rename');
        this.writes++;
        this.bytesWritten += Buffer.byteLength(out);
        this.last = { text: out, doc };
        await this.onWritten(doc);
        return outcomes;
      }
      // someone else wrote in between: let them finish, then merge into what they wrote
      await sleep(CHANGED_BACKOFF_MS * attempt * (0.5 + Math.random()));
    }
    throw new CanvasWriteError(`the canvas kept changing on disk; gave up after ${MAX_ATTEMPTS} attempts`);
  }

  /**
   * The canvas as it is on disk now. What we wrote last is reused without parsing. A file that does not parse may
   * be half-written by another program (editors often truncate, then write): it is read again a few times before
   * the write gives up, leaving the file untouched.
   */
  private async readCurrent(): Promise<{ text: string; doc: CanvasDocument }> {
    for (let retry = 0; ; retry++) {
      const text = await fs.readFile(this.absPath, 'utf8');
      if (this.last?.text === text) return { text, doc: this.last.doc };
      const parsed = parseCanvas(text);
      if (!('errors' in parsed)) return { text, doc: parsed.doc };
      if (retry === INVALID_RETRIES) {
        throw new CanvasWriteError(
          `the canvas on disk is no longer valid JSON Canvas (${parsed.errors[0].message}); left it untouched`,
        );
      }
      await sleep(INVALID_RETRY_MS * (retry + 1));
    }
  }
}

/** Adds what is not there yet (by id), placing each new node so it overlaps nothing. Mutates the arrays. */
function merge(nodes: CanvasNode[], edges: CanvasEdge[], additions: CanvasAddition[]): AdditionOutcome[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edgeIds = new Set(edges.map((e) => e.id));
  const obstacles: Rect[] = nodes.map(rectOf);
  return additions.map(({ sourceNodeId, node, edge }): AdditionOutcome => {
    if (byId.has(node.id)) {
      if (!edgeIds.has(edge.id) && byId.has(edge.fromNode)) {
        edges.push(edge);
        edgeIds.add(edge.id);
        return { placed: true, alreadyPresent: false };
      }
      return { placed: true, alreadyPresent: true };
    }
    const source = byId.get(sourceNodeId);
    if (!source) return { placed: false, reason: `source node ${sourceNodeId} is no longer in the canvas` };
    const rect = placeBelow(rectOf(source), node.width, node.height, obstacles);
    const { id, type, width, height, ...rest } = node;
    const placed: CanvasNode = { id, type, ...rest, x: rect.x, y: rect.y, width, height };
    nodes.push(placed);
    byId.set(placed.id, placed);
    obstacles.push(rect);
    if (!edgeIds.has(edge.id)) {
      edges.push(edge);
      edgeIds.add(edge.id);
    }
    return { placed: true, alreadyPresent: false };
  });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
