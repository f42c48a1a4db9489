import { type BigIntStats, statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as path from 'node:path';
import { failpoint } from '../common';
import { atomicWrite, removeStaleTempFiles } from './atomic-write';
import { CanvasWriteError } from './canvas.errors';
import {
  type CanvasDocument,
  type CanvasEdge,
  type CanvasFormat,
  type CanvasNode,
  detectFormat,
  parseCanvas,
  serializeCanvas,
} from './json-canvas';
import { CanvasLayout, rectOf } from './layout';
import { type VaultDir, VaultFs, VaultPathError } from './vault-fs';

/** A node we add; `x`/`y` are chosen at write time against what is on disk then. Ids are deterministic. */
export interface NewNode {
  id: string;
  type: 'file' | 'text';
  file?: string;
  text?: string;
  /** A JSON Canvas preset colour (`"1"`–`"6"`). */
  color?: string;
  width: number;
  height: number;
}

/**
 * A result to add to a canvas: nodes laid out together as one block in the nearest free spot next to `sourceNodeId`
 * (a grid of `columns` columns, filled row by row; see `placeNear`), the edges linking them (those from the source
 * get the sides the block went to), and optionally a preset colour for the source node (a score band).
 */
export interface CanvasAddition {
  sourceNodeId: string;
  nodes: NewNode[];
  edges: CanvasEdge[];
  /** Grid columns of the block (default 1). */
  columns?: number;
  /** The side tried first: under the source (default) or beside it on the right. */
  side?: 'below' | 'right';
  sourceColor?: string;
}

export type AdditionOutcome = { placed: true; alreadyPresent: boolean } | { placed: false; reason: string };

interface CurrentFile {
  /** The file's bytes as read (compared byte for byte, never decoded again). */
  bytes: Buffer;
  doc: CanvasDocument;
  /** The file's identity and times when it was read. */
  stat: BigIntStats;
  /** The file that was read, kept open until the write is done (to see a save that lands in it late). */
  handle: FileHandle;
  /** The canvas's folder, opened and checked for this write: every path of the write goes through it. */
  dir: VaultDir;
  /** The canvas's path through `dir`. */
  path: string;
}

interface PlacedAddition {
  write: number;
  addition: CanvasAddition;
}

interface Pending {
  addition: CanvasAddition;
  urgent: boolean;
  resolve: (o: AdditionOutcome) => void;
  reject: (e: unknown) => void;
}

/**
 * Merges redone because another program changed the file under us, before the write gives up. An editor saving
 * every few milliseconds needs a few; the pause between them stays short (its next save is coming anyway).
 */
const MAX_ATTEMPTS = 40;
const CHANGED_BACKOFF_MS = 2;
const CHANGED_BACKOFF_MAX_MS = 25;
/** Re-reads of a file that does not parse (maybe half-written by another program) before giving up. */
const INVALID_RETRIES = 6;
const INVALID_RETRY_MS = 15;
/**
 * After a write that took D ms, the next one waits PACE_FACTOR × D (at most MAX_PACE_MS): rewriting a big canvas
 * then takes at most a quarter of the time, and everything that finishes meanwhile is coalesced into one write.
 * A small canvas (D ≈ 1 ms) is written almost at once.
 */
const PACE_FACTOR = 3;
const MAX_PACE_MS = 4_000;
/** Reads of a file another program is still writing into while we replace it, and the pause between them. */
const CLOBBER_READS = 20;
const CLOBBER_READ_MS = 5;
/** Re-reads of a file that changed while being read, before merging into the latest read anyway. */
const UNSTABLE_READS = 20;
/** When, after the last write, to check that no stale save by another program dropped our results. */
const SETTLE_CHECKS_MS = [250, 1_000, 3_000];
/** How many recent writes' additions are remembered for that check (a stale save is only ever a moment late). */
const REMEMBERED_WRITES = 32;

/**
 * One serialized write queue for one canvas file. Additions that arrive while a write is in progress are merged
 * into the next single write (coalescing). Every write re-reads the file, merges into what is on disk now, and
 * replaces it atomically, re-checking its content (and, in the last microseconds, the file's identity and
 * timestamps) just before the rename, and redoing the merge when another program changed the file meanwhile.
 *
 * An editor that saves a copy it read before our write (a stale save) silently drops what we added. Such a loss is
 * told apart from a deliberate deletion by its shape: a stale save drops *everything* we added from some write on,
 * while a user deletes particular results and leaves later ones in place. Lost results are merged again — at the
 * next write, and by settle checks a moment after the last one.
 *
 * Every read and write goes through the vault's checked file access (`VaultFs`), opened again for each write: the
 * canvas's folder is opened and checked to lie in the vault, and the canvas read, its temp file, the checks before the
 * rename and the rename itself all address that opened folder — a folder or the canvas swapped for a link to the
 * outside meanwhile is refused (`CanvasWriteError`), and nothing outside the vault is read or touched.
 */
export class CanvasWriteQueue {
  private pending: Pending[] = [];
  private draining: Promise<void> | undefined;
  /** What this queue wrote last: reused instead of re-parsing while nobody else changed the file. */
  private last: { bytes: Buffer; doc: CanvasDocument } | undefined;
  /** Temp files a killed process left beside the canvas, removed before the first write. */
  private swept: Promise<void> | undefined;
  /** Recently placed additions, by the write that placed them (oldest first), to spot and repair stale saves. */
  private placed: PlacedAddition[] = [];
  private settleTimers = new Set<NodeJS.Timeout>();
  /** Edits another program saved into the file our rename replaced, still to be merged into the canvas. */
  private repair: { base: CanvasDocument; theirs: CanvasDocument; format: CanvasFormat } | undefined;
  private closed = false;
  /** No write starts before this time (`performance.now()`), so a big canvas is not rewritten back to back. */
  private nextWriteAt = 0;
  /** Ends the pacing pause in progress, if any. */
  private endPause: (() => void) | undefined;
  /** Number of file replacements done, and bytes written (for benchmarks and logs). */
  writes = 0;
  bytesWritten = 0;
  /** Results merged again after another program's stale save dropped them. */
  restored = 0;
  /** Saves by another program that landed in the file we were replacing, whose edits were merged back. */
  repaired = 0;

  private readonly folder: string;
  private readonly name: string;

  constructor(
    /** The canvas's real path when its batch started. */
    private readonly absPath: string,
    /** Called with the document just written (e.g. to refresh a read cache). */
    private readonly onWritten: (doc: CanvasDocument) => void | Promise<void> = () => undefined,
    private readonly settleChecksMs: readonly number[] = SETTLE_CHECKS_MS,
    /** The vault's confined file access (default: confined to the canvas's own folder). */
    private readonly files: VaultFs = new VaultFs(path.dirname(absPath)),
  ) {
    this.folder = path.dirname(absPath);
    this.name = path.basename(absPath);
  }

  /**
   * Queues an addition for the next write. `urgent`: nothing more is expected to join it (e.g. a batch's last
   * result), so a pacing pause in progress ends now instead of holding the result back for coalescing.
   */
  add(addition: CanvasAddition, options: { urgent?: boolean } = {}): Promise<AdditionOutcome> {
    return new Promise<AdditionOutcome>((resolve, reject) => {
      this.pending.push({ addition, urgent: options.urgent === true, resolve, reject });
      this.draining ??= this.drain();
      if (options.urgent) this.endPause?.();
    });
  }

  /** Resolves when everything queued so far is written. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Nothing queued or being written. */
  get isIdle(): boolean {
    return this.draining === undefined && this.pending.length === 0;
  }

  /** Stops the settle checks (pending additions are still written: await `idle()`). */
  close(): void {
    this.closed = true;
    for (const t of this.settleTimers) clearTimeout(t);
    this.settleTimers.clear();
  }

  private async drain(): Promise<void> {
    try {
      this.swept ??= this.files
        .inDir(this.folder, (dir) => removeStaleTempFiles(dir.where, this.name))
        .catch(() => undefined); // an unusable folder is reported by the write
      await this.swept;
      while (this.pending.length) {
        // pace the writes: what finishes during the pause joins this write
        const pause = this.nextWriteAt - performance.now();
        if (pause > 0 && !this.pending.some((p) => p.urgent)) await this.pauseFor(pause);
        const batch = this.pending;
        this.pending = [];
        try {
          const started = performance.now();
          const outcomes = await this.writeOnce(batch.map((p) => p.addition));
          const took = performance.now() - started;
          this.nextWriteAt = performance.now() + Math.min(MAX_PACE_MS, PACE_FACTOR * took);
          batch.forEach((p, i) => p.resolve(outcomes[i]));
          if (this.repair) await this.writeOnce([]).catch(() => (this.repair = undefined));
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

  /** Sleeps `ms`, or less when an urgent addition arrives. */
  private pauseFor(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.endPause?.(), ms);
      this.endPause = () => {
        clearTimeout(timer);
        this.endPause = undefined;
        resolve();
      };
    });
  }

  private async writeOnce(additions: CanvasAddition[]): Promise<AdditionOutcome[]> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const file = await this.readCurrent();
      try {
        const { bytes, doc: current, stat, path: canvasFile } = file;
        // Merge into shallow copies: the documents we keep (and the read cache) are never mutated.
        const doc: CanvasDocument = {
          raw: current.raw,
          nodes: [...current.nodes],
          edges: [...current.edges],
        };
        const repair = this.repair;
        if (repair) applyTheirEdits(doc, repair.base, repair.theirs);
        const { lost, keep } = this.lostToStaleSave(doc);
        const outcomes = merge(doc.nodes, doc.edges, [...lost, ...additions]);
        const restoredNow = outcomes
          .slice(0, lost.length)
          .filter((o) => o.placed && !o.alreadyPresent).length;
        const mine = outcomes.slice(lost.length);
        if (!repair && !outcomes.some((o) => o.placed && !o.alreadyPresent)) return mine;
        const out = Buffer.from(serializeCanvas(doc, repair ? repair.format : formatOf(bytes)), 'utf8');
        const replaced = await atomicWrite(canvasFile, out, {
          fsync: 'after-rename',
          // the file must be exactly what was merged into (same content): otherwise merge again
          // (gone, or swapped for a link or a FIFO meanwhile: not the same either — the next attempt says why)
          beforeRename: async () => {
            const now = await this.files.readFile(canvasFile).catch(() => undefined);
            const unchanged = now?.equals(bytes) === true;
            if (unchanged) failpoint('canvas.before-rename');
            return unchanged;
          },
          // …and still the same file, untouched since, right up to the rename
          lastCheck: () => {
            const now = statSync(canvasFile, { bigint: true, throwIfNoEntry: false });
            return now !== undefined && sameFile(stat, now);
          },
        });
        if (replaced) {
          failpoint('canvas.after-rename');
          this.writes++;
          this.bytesWritten += out.length;
          this.restored += restoredNow;
          this.last = { bytes: out, doc };
          this.remember(keep, [...lost, ...additions], outcomes);
          if (repair) this.repair = undefined;
          // a save that landed in the old file between our last check and the rename: bring its edits over
          const theirs = await this.clobberedWrite(file);
          if (theirs) {
            this.repair = { base: current, theirs: theirs.doc, format: formatOf(theirs.bytes) };
            this.repaired++;
          }
          this.scheduleSettleChecks();
          await this.onWritten(doc);
          return mine;
        }
      } finally {
        await file.handle.close();
        await file.dir.close();
      }
      // someone else wrote in between: let them finish, then merge into what they wrote
      await sleep(Math.min(CHANGED_BACKOFF_MAX_MS, CHANGED_BACKOFF_MS * attempt) * Math.random());
    }
    throw new CanvasWriteError(`the canvas kept changing on disk; gave up after ${MAX_ATTEMPTS} attempts`);
  }

  /**
   * The recent additions a stale save dropped: those of the longest run of latest writes whose results are all
   * gone. Results missing from before a write that is still present were deleted on purpose: `keep` forgets them
   * (and the lost ones, remembered again once merged), to be adopted when the write lands.
   */
  private lostToStaleSave(doc: CanvasDocument): { lost: CanvasAddition[]; keep: PlacedAddition[] } {
    const ids = new Set(doc.nodes.map((n) => n.id));
    const gone = this.placed.map((p) => !p.addition.nodes.some((n) => ids.has(n.id)));
    let cut = this.placed.length;
    while (cut > 0 && gone[cut - 1]) cut--;
    // the cut falls between writes: a write with some of its results present was not lost to a stale save
    if (cut > 0 && cut < this.placed.length) {
      const write = this.placed[cut - 1].write;
      while (cut < this.placed.length && this.placed[cut].write === write) cut++;
    }
    return {
      lost: this.placed.slice(cut).map((p) => p.addition),
      keep: this.placed.slice(0, cut).filter((_, i) => !gone[i]),
    };
  }

  /** Adopts `keep` and remembers what this write placed, forgetting writes too old to be lost to a stale save. */
  private remember(keep: PlacedAddition[], additions: CanvasAddition[], outcomes: AdditionOutcome[]): void {
    const write = this.writes;
    this.placed = keep.filter((p) => p.write > write - REMEMBERED_WRITES);
    additions.forEach((addition, i) => {
      const o = outcomes[i];
      if (o.placed && !o.alreadyPresent) this.placed.push({ write, addition });
    });
  }

  /** A moment after a write, checks that no stale save dropped what it added (restarted by every write). */
  private scheduleSettleChecks(): void {
    for (const t of this.settleTimers) clearTimeout(t);
    this.settleTimers.clear();
    if (this.closed) return;
    for (const ms of this.settleChecksMs) {
      const timer = setTimeout(() => {
        this.settleTimers.delete(timer);
        this.draining ??= this.settle();
      }, ms);
      timer.unref();
      this.settleTimers.add(timer);
    }
  }

  private async settle(): Promise<void> {
    try {
      const bytes = await this.files
        .inDir(this.folder, (dir) => this.files.readFile(dir.entry(this.name)))
        .catch(() => undefined);
      if (bytes === undefined || (this.last && bytes.equals(this.last.bytes))) return;
      await this.writeOnce([]); // a repair write schedules its own settle checks
    } catch {
      // the next addition reports a lasting problem; a settle check never throws
    } finally {
      this.draining = undefined;
      if (this.pending.length) this.draining = this.drain();
    }
  }

  /**
   * The canvas as it is on disk now, with the file's identity and timestamps from just before the read (the read is
   * repeated if they changed during it). What we wrote last is reused without parsing. A file that does not parse
   * may be half-written by another program (editors often truncate, then write): it is read again a few times before
   * the write gives up, leaving the file untouched.
   */
  private async readCurrent(): Promise<CurrentFile> {
    for (let retry = 0, moving = 0; ; retry++) {
      const { dir, file, handle, stat } = await this.openCanvas();
      let keep = false;
      try {
        const bytes = await handle.readFile();
        const after = statSync(file, { bigint: true, throwIfNoEntry: false });
        if ((after === undefined || !sameFile(stat, after)) && moving++ < UNSTABLE_READS) {
          retry--; // changed while we read it: read it again (the pre-rename checks catch a last change anyway)
          await sleep(1);
          continue;
        }
        const parsed = this.last?.bytes.equals(bytes)
          ? { doc: this.last.doc }
          : parseCanvas(bytes.toString('utf8'));
        if (!('errors' in parsed)) {
          keep = true;
          return { bytes, doc: parsed.doc, stat, handle, dir, path: file };
        }
        if (retry === INVALID_RETRIES) {
          throw new CanvasWriteError(
            `the canvas on disk is no longer valid JSON Canvas (${parsed.errors[0].message}); left it untouched`,
          );
        }
      } finally {
        if (!keep) {
          await handle.close();
          await dir.close();
        }
      }
      await sleep(INVALID_RETRY_MS * (retry + 1));
    }
  }

  /**
   * The canvas's folder opened and checked, and the canvas opened through it and checked (a regular file inside the
   * vault). A folder or canvas that now resolves outside the vault, or is no longer a regular file, is refused.
   */
  private async openCanvas(): Promise<{
    dir: VaultDir;
    file: string;
    handle: FileHandle;
    stat: BigIntStats;
  }> {
    let dir: VaultDir;
    try {
      dir = await this.files.openDir(this.folder);
    } catch (err) {
      throw refused("the canvas's folder", err);
    }
    const file = dir.entry(this.name);
    try {
      const { handle, stat } = await this.files.openFile(file);
      return { dir, file, handle, stat };
    } catch (err) {
      await dir.close();
      throw refused('the canvas', err);
    }
  }

  /**
   * What another program wrote into the file we replaced, in the microseconds between our last check and our
   * rename (it had the old file open): its complete content once it parses, or `undefined` when nothing was written.
   */
  private async clobberedWrite(
    file: CurrentFile,
  ): Promise<{ doc: CanvasDocument; bytes: Buffer } | undefined> {
    for (let i = 0; i < CLOBBER_READS; i++) {
      const now = await file.handle.stat({ bigint: true });
      // (its change time moved when our rename unlinked it: only a write moves its size or modification time)
      if (i === 0 && now.size === file.stat.size && now.mtimeNs === file.stat.mtimeNs) return undefined;
      const buffer = Buffer.alloc(Number(now.size));
      const { bytesRead } = await file.handle.read(buffer, 0, buffer.length, 0);
      const bytes = buffer.subarray(0, bytesRead);
      const parsed = parseCanvas(bytes.toString('utf8'));
      if (!('errors' in parsed)) return { doc: parsed.doc, bytes };
      await sleep(CLOBBER_READ_MS); // still being written
    }
    return undefined;
  }
}

/** A refused or failed open of the canvas or its folder, as the write's error (no server path in it). */
function refused(what: string, err: unknown): CanvasWriteError {
  if (err instanceof VaultPathError) {
    const why = err.kind === 'outside' ? `now ${err.message}` : err.message;
    return new CanvasWriteError(`${what} ${why}; nothing was read or written there`, { cause: err });
  }
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no longer exists' : `cannot be opened (${code ?? (err as Error).message})`;
  return new CanvasWriteError(`${what} ${why}`, { cause: err });
}

/** The file's formatting (`detectFormat`) from its bytes: the indentation from its first 64 KiB when it shows there. */
function formatOf(bytes: Buffer): CanvasFormat {
  const head = bytes.subarray(0, 65_536).toString('utf8');
  const format = detectFormat(head);
  if (format.indent === undefined && bytes.length > 65_536) {
    format.indent = detectFormat(bytes.toString('utf8')).indent;
  }
  return {
    ...format,
    finalNewline: bytes.length > 0 && bytes[bytes.length - 1] === 0x0a,
    eol: bytes.includes('\r\n') ? '\r\n' : '\n',
  };
}

/** Same inode, size, and modification and change times (nanoseconds where the file system keeps them). */
function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/**
 * Adds what is not there yet (by id), placing each new block so it overlaps nothing. Mutates the arrays (never the
 * node objects in them: a recoloured source is replaced by a copy). An addition with any of its nodes present was
 * merged before (a replay): whatever the user did to it since — a deleted question node or edge, a moved card, a
 * new colour — is left as it is.
 */
function merge(nodes: CanvasNode[], edges: CanvasEdge[], additions: CanvasAddition[]): AdditionOutcome[] {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const edgeIds = new Set(edges.map((e) => e.id));
  const layout = new CanvasLayout(nodes, edges);
  return additions.map((addition): AdditionOutcome => {
    if (addition.nodes.some((n) => index.has(n.id))) return { placed: true, alreadyPresent: true };
    const sourceIndex = index.get(addition.sourceNodeId);
    if (sourceIndex === undefined) {
      return { placed: false, reason: `source node ${addition.sourceNodeId} is no longer in the canvas` };
    }
    const source = nodes[sourceIndex];
    const block = layout.place(rectOf(source), addition);
    for (const placed of block.nodes) {
      index.set(placed.id, nodes.length);
      nodes.push(placed);
    }
    if (addition.sourceColor !== undefined && source.color !== addition.sourceColor) {
      nodes[sourceIndex] = { ...source, color: addition.sourceColor };
    }
    for (const edge of block.edges) {
      // an edge left behind by a deleted result node is reused, not duplicated
      if (edgeIds.has(edge.id) || !index.has(edge.fromNode) || !index.has(edge.toNode)) continue;
      edges.push(edge);
      edgeIds.add(edge.id);
    }
    layout.add(block.nodes, block.edges);
    return { placed: true, alreadyPresent: false };
  });
}

/**
 * Applies to `doc` the edits `theirs` made to `base` (a three-way merge by id): nodes and edges they added, changed
 * or deleted, and top-level fields they changed — unless `doc` changed that item since `base` too (then `doc`, the
 * newer, wins). Mutates `doc`'s arrays, never the items.
 */
export function applyTheirEdits(doc: CanvasDocument, base: CanvasDocument, theirs: CanvasDocument): void {
  doc.nodes = mergeItems(doc.nodes, base.nodes, theirs.nodes);
  doc.edges = mergeItems(doc.edges, base.edges, theirs.edges);
  const raw = { ...doc.raw };
  for (const key of new Set([...Object.keys(base.raw), ...Object.keys(theirs.raw)])) {
    if (key === 'nodes' || key === 'edges') continue;
    if (same(base.raw[key], theirs.raw[key]) || !same(base.raw[key], doc.raw[key])) continue;
    if (key in theirs.raw) raw[key] = theirs.raw[key];
    else delete raw[key];
  }
  doc.raw = raw;
}

function mergeItems<T extends { id: string }>(mine: T[], base: T[], theirs: T[]): T[] {
  const baseById = new Map(base.map((i) => [i.id, i]));
  const theirsById = new Map(theirs.map((i) => [i.id, i]));
  const out: T[] = [];
  const seen = new Set<string>();
  for (const item of mine) {
    seen.add(item.id);
    const b = baseById.get(item.id);
    const t = theirsById.get(item.id);
    const untouchedByMe = b !== undefined && same(b, item);
    if (untouchedByMe && t === undefined) continue; // they deleted it
    out.push(untouchedByMe && t !== undefined && !same(b, t) ? t : item);
  }
  for (const t of theirs) if (!baseById.has(t.id) && !seen.has(t.id)) out.push(t); // they added it
  return out;
}

function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
