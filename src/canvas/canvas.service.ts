import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { statSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentNodeContext, AgentNodeInput, AgentStructuredOutput } from '../agent';
import type { ProblemFieldError } from '../common';
import { atomicWrite, removeStaleTempFiles } from './atomic-write';
import {
  CanvasNotFoundError,
  CanvasPathOutsideVaultError,
  CanvasWriteError,
  InvalidCanvasError,
  NodeContentMissingError,
  NodeNotFoundError,
  UnknownNodeIdsError,
} from './canvas.errors';
import { type AdditionOutcome, CanvasWriteQueue } from './canvas-writer';
import { readFileNode } from './file-content';
import { isResultNameFor, resultFileName } from './file-names';
import { type CanvasDocument, type CanvasNode, overlaps, parseCanvas } from './json-canvas';
import { rectOf } from './layout';
import { resultAddition, shortId } from './result-nodes';
import { VaultPathError } from './vault-fs';
import { type ResolvedCanvasPath, VaultService } from './vault.service';

export interface ResultToWrite {
  canvas: ResolvedCanvasPath;
  taskId: string;
  sourceNodeId: string;
  agentType: string;
  /** Heading of the result file. */
  title: string;
  /**
   * What the source node is about (its concept or first line), shown in the file name. When absent, the part of
   * `title` after its `<agent>: ` prefix is used.
   */
  concept?: string;
  markdown: string;
  /** The agent's structured output: question, score and hint agents add text nodes instead of a file node. */
  structured?: AgentStructuredOutput;
  /** Nothing else of the batch is running or left to start: write the canvas now, without a pacing pause. */
  last?: boolean;
  /** Called once the result file is written, before the canvas part (which may wait for a coalesced write). */
  onFileWritten?: () => void;
}

/** A written result file: where, its size, and the text written (the canvas card shows it). */
export interface ResultFile {
  /** Vault-relative path of the markdown file. */
  filePath: string;
  fileSize: number;
  body: string;
}

/** What `placeResult` puts on the canvas for one node's result. */
export interface ResultToPlace extends ResultFile {
  canvas: ResolvedCanvasPath;
  taskId: string;
  sourceNodeId: string;
  agentType: string;
  structured?: AgentStructuredOutput;
  /** Nothing else of the batch is running or left to start: write the canvas now, without a pacing pause. */
  last?: boolean;
}

export interface WrittenResult {
  /** Vault-relative path of the markdown file. */
  filePath: string;
  fileSize: number;
  canvas: AdditionOutcome;
}

interface CachedCanvas {
  key: string;
  doc: CanvasDocument;
  byId: Map<string, CanvasNode>;
  /** Built on first use: what `surroundings` needs, so a node's context costs its own edges, not the canvas. */
  index?: NeighbourIndex;
}

interface NeighbourIndex {
  /** Ids of the nodes each node shares an edge with, in edge order. */
  linked: Map<string, Set<string>>;
  /** Group nodes, smallest area first. */
  groups: CanvasNode[];
  /** Position of each node in the file. */
  order: Map<CanvasNode, number>;
}

/** One result's identity on the canvas (its card ids derive from it). */
function resultKey(r: { taskId: string; sourceNodeId: string; agentType: string }): string {
  return `${r.taskId}\0${r.sourceNodeId}\0${r.agentType}`;
}

/**
 * The ids of the cards and edges `placeResult` adds for this result, without writing anything: they derive from
 * task, node and agent (and the output's shape), so the orchestrator can keep them in its store before the write.
 */
export function resultCardIds(r: ResultCards): { nodeIds: string[]; edgeIds: string[] } {
  const { nodes, edges } = additionOf(r);
  return { nodeIds: nodes.map((n) => n.id), edgeIds: edges.map((e) => e.id) };
}

/** What a result adds to the canvas: the one mapping `resultCardIds` and `placeResult` share. */
type ResultCards = Omit<ResultToPlace, 'canvas' | 'last' | 'fileSize'>;
function additionOf(r: ResultCards): ReturnType<typeof resultAddition> {
  return resultAddition({
    key: resultKey(r),
    sourceNodeId: r.sourceNodeId,
    agentType: r.agentType,
    fileRel: r.filePath,
    body: r.body,
    structured: r.structured,
  });
}

function cachedCanvas(key: string, doc: CanvasDocument): CachedCanvas {
  return { key, doc, byId: new Map(doc.nodes.map((n) => [n.id, n])) };
}

/** Parsed canvases kept in memory, and canvas write queues kept once idle (least recently used go first). */
const MAX_CACHED_CANVASES = 16;
const MAX_QUEUES = 32;

/** Re-reads of a canvas that does not parse while a batch runs (another program may be mid-write). */
const INVALID_CANVAS_RETRIES = 6;
const INVALID_CANVAS_RETRY_MS = 15;

/** JSON Canvas I/O for the orchestrator: open and check canvases, read node content, write results. */
@Injectable()
export class CanvasService implements OnModuleDestroy {
  private readonly queues = new Map<string, CanvasWriteQueue>();
  private readonly cache = new Map<string, CachedCanvas>();
  private readonly loading = new Map<string, Promise<CachedCanvas>>();

  constructor(private readonly vault: VaultService) {}

  /** Resolves the path (vault-confined) and checks the file is a valid JSON Canvas holding every node id. */
  async open(
    canvasPath: string,
    nodeIds: Iterable<{ field: string; nodeId: string }>,
  ): Promise<ResolvedCanvasPath> {
    const resolved = await this.vault.resolveCanvas(canvasPath);
    const { byId } = await this.loadValid(resolved).catch((err: unknown) => {
      throw canvasReadError(err, canvasPath, resolved.relPath);
    });
    const missing: ProblemFieldError[] = [];
    for (const { field, nodeId } of nodeIds) {
      if (!byId.has(nodeId)) missing.push({ field, message: `node "${nodeId}" is not in the canvas` });
    }
    if (missing.length) throw new UnknownNodeIdsError(resolved.relPath, missing, missing.length);
    return resolved;
  }

  /** Checks a path again when a task resumes or runs from another process; same errors as `open`. */
  resolve(canvasPath: string): Promise<ResolvedCanvasPath> {
    return this.vault.resolveCanvas(canvasPath);
  }

  /**
   * Removes what a killed process may have left half-written for this canvas: temp files beside the canvas and in
   * its results folder. Called whenever a task starts or resumes.
   */
  async removeLeftovers(canvas: ResolvedCanvasPath): Promise<void> {
    const { dir, base } = splitCanvasPath(canvas.relPath);
    const { files } = this.vault;
    // each folder opened and checked first: a folder that now leads outside the vault is left alone
    await files
      .inDir(path.dirname(canvas.absPath), (d) =>
        removeStaleTempFiles(d.where, path.basename(canvas.absPath)),
      )
      .catch(() => undefined);
    await files
      .inDir(path.join(this.vault.root, dir, `${base}-explanations`), (d) => removeStaleTempFiles(d.where))
      .catch(() => undefined);
  }

  /**
   * The content an agent works on, read from the canvas as it is on disk now: text; a file node's file (just the
   * heading section or block its `subpath` names; an embed reference for binary files); a link's URL; a group's
   * label with the text of the nodes inside it. A node no longer in the canvas throws NodeNotFoundError; a file
   * node whose file is missing, outside the vault or a directory throws NodeContentMissingError.
   */
  async nodeContent(canvas: ResolvedCanvasPath, nodeId: string): Promise<AgentNodeInput> {
    const cached = await this.loadWhileRunning(canvas);
    const { doc, byId } = cached;
    const node = byId.get(nodeId);
    if (!node) throw new NodeNotFoundError(`node ${nodeId} is no longer in ${canvas.relPath}`);
    const base = { canvasPath: canvas.relPath, nodeId, context: surroundings(cached, node) };
    switch (node.type) {
      case 'text':
        return { ...base, nodeType: 'text', content: node.text ?? '' };
      case 'link':
        return { ...base, nodeType: 'link', content: node.url ?? '' };
      case 'group': {
        const inside = doc.nodes.filter((n) => n !== node && n.type !== 'group' && contains(node, n));
        const texts = inside.map((n) => n.text ?? n.file ?? n.url ?? '').filter(Boolean);
        return {
          ...base,
          nodeType: 'group',
          content: [node.label ?? '', ...texts].filter(Boolean).join('\n\n'),
        };
      }
      case 'file':
        return {
          ...base,
          nodeType: 'file',
          content: await this.fileContent(node.file ?? '', stringOrUndefined(node.subpath), nodeId),
        };
      default:
        throw new NodeNotFoundError(`node ${nodeId} has type "${node.type}", which no agent can read`);
    }
  }

  /**
   * The content of a file node's file (its `subpath` section), read as `nodeContent` reads it: without the canvas
   * cache or the node's surroundings (the planner reads thousands). Same errors as `nodeContent` for a file node.
   */
  fileNodeContent(file: string, subpath: string | undefined, nodeId: string): Promise<string> {
    return this.fileContent(file, subpath, nodeId);
  }

  /**
   * Writes the result file (atomically, named from task, node and agent so a replay replaces it, with a slug of
   * the node's concept to be readable), then adds its file node and edge to the canvas through the canvas's
   * serialized queue.
   */
  async writeResult(r: ResultToWrite): Promise<WrittenResult> {
    const file = await this.writeResultFile(r);
    r.onFileWritten?.();
    const canvas = await this.placeResult({ ...r, ...file });
    return { filePath: file.filePath, fileSize: file.fileSize, canvas };
  }

  /**
   * The result's file alone (the part a worker in any process does): written into `<canvas>-explanations/` next to
   * the canvas, under the name a card of the canvas already links for this node, agent and task if there is one
   * (a node run again after a crash overwrites its own file), else a new readable name.
   */
  async writeResultFile(
    r: Omit<ResultToWrite, 'last' | 'onFileWritten' | 'structured'>,
  ): Promise<ResultFile> {
    const { dir, base } = splitCanvasPath(r.canvas.relPath);
    const folderRel = path.posix.join(dir, `${base}-explanations`);
    const nodeId = shortId('n', resultKey(r));
    const triple = { taskId: r.taskId, nodeId: r.sourceNodeId, agentType: r.agentType };
    const fileName =
      (await this.linkedResultName(r.canvas, nodeId, triple)) ??
      resultFileName({ ...triple, concept: r.concept ?? conceptFromTitle(r.title, r.agentType) });
    const body = `# ${r.title}\n\n${r.markdown.trim()}\n`;
    let fileRel: string;
    try {
      // the folder is opened and checked for every file, and the file written through the opened folder: a folder
      // swapped for a link to the outside at any moment is refused, never written through
      const write = async (): Promise<string> => {
        const folder = await this.vault.ensureFolder(folderRel);
        try {
          await atomicWrite(folder.entry(fileName), body);
          return path.join(folder.realPath, fileName);
        } finally {
          await folder.close();
        }
      };
      // a folder removed in the moment between its check and the write is created and checked again, once
      const file = await write().catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        return write();
      });
      fileRel = this.vault.relative(file);
    } catch (err) {
      const why =
        err instanceof VaultPathError
          ? `the results folder ${folderRel} resolves outside the vault; nothing was written there`
          : (err as Error).message;
      throw new CanvasWriteError(`cannot write the result file: ${why}`, { cause: err });
    }
    return { filePath: fileRel, fileSize: Buffer.byteLength(body), body };
  }

  /**
   * The result's cards on the canvas (the part the batch's owner does: one process writes a batch's canvas, its
   * writes coalesced): a file card linking `filePath` (or the structured output's cards) beside the source node,
   * with an edge. Idempotent per task, node and agent: placing the same result again replaces its cards.
   */
  placeResult(r: ResultToPlace): Promise<AdditionOutcome> {
    return this.queue(r.canvas.absPath).add(additionOf(r), { urgent: r.last });
  }

  /** Resolves when every queued canvas write is done. */
  async flush(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.idle()));
  }

  /**
   * Canvas replacements done, bytes written, results merged again after stale saves, and late saves of another
   * program merged back, over all canvases.
   */
  writeStats(): { writes: number; bytesWritten: number; restored: number; repaired: number } {
    const stats = { writes: 0, bytesWritten: 0, restored: 0, repaired: 0 };
    for (const q of this.queues.values()) {
      stats.writes += q.writes;
      stats.bytesWritten += q.bytesWritten;
      stats.restored += q.restored;
      stats.repaired += q.repaired;
    }
    return stats;
  }

  async onModuleDestroy(): Promise<void> {
    await this.flush();
    for (const q of this.queues.values()) q.close();
  }

  private queue(absPath: string): CanvasWriteQueue {
    let q = this.queues.get(absPath);
    if (!q) {
      // what we just wrote becomes the read cache: the next node's content read does not re-parse the file
      q = new CanvasWriteQueue(
        absPath,
        (doc) => {
          const stat = this.statOf(absPath);
          if (stat) this.remember(absPath, cachedCanvas(statKey(stat), doc));
        },
        undefined,
        this.vault.files,
      );
      this.queues.set(absPath, q);
      // a queue keeps its last document: let go of idle queues of canvases no batch has written to lately
      for (const [p, old] of this.queues) {
        if (this.queues.size <= MAX_QUEUES) break;
        if (old.isIdle) {
          old.close();
          this.queues.delete(p);
        }
      }
    } else {
      this.queues.delete(absPath);
      this.queues.set(absPath, q); // most recently used last
    }
    return q;
  }

  /**
   * The parsed canvas, reused while the file is unchanged (same inode, size and mtime). Concurrent reads of a
   * changed file share one parse.
   */
  private async load(canvas: ResolvedCanvasPath): Promise<CachedCanvas> {
    const stat = this.statOf(canvas.absPath);
    if (!stat) throw new NodeNotFoundError(`canvas ${canvas.relPath} no longer exists`);
    const key = statKey(stat);
    const hit = this.cache.get(canvas.absPath);
    if (hit?.key === key) {
      this.remember(canvas.absPath, hit);
      return hit;
    }
    const loadKey = `${canvas.absPath}\0${key}`;
    let loading = this.loading.get(loadKey);
    if (!loading) {
      loading = this.parseFile(canvas, key).finally(() => this.loading.delete(loadKey));
      this.loading.set(loadKey, loading);
    }
    return loading;
  }

  /**
   * The file's stat (`undefined` when it is gone or unreadable). Every node of a batch reads its canvas "as it is on
   * disk now", just before its agent starts. Synchronous on purpose: a local `stat` costs microseconds, while the
   * asynchronous one waits in libuv's thread pool behind the result files and canvas writes of the nodes that just
   * finished — the next node's start waited for them.
   */
  private statOf(absPath: string): Stats | undefined {
    try {
      return statSync(absPath, { throwIfNoEntry: false });
    } catch {
      return undefined;
    }
  }

  /**
   * `load` for a node of a running batch: a canvas that does not parse may be half-written by another program
   * (editors truncate, then write), so it is read again a few times; if it stays invalid, the node fails with
   * `NODE_CONTENT_MISSING` instead of the batch.
   */
  private async loadWhileRunning(canvas: ResolvedCanvasPath): Promise<CachedCanvas> {
    try {
      return await this.loadValid(canvas);
    } catch (err) {
      if (err instanceof VaultPathError) {
        const why = err.kind === 'outside' ? `now ${err.message}` : err.message;
        throw new NodeContentMissingError(`canvas ${canvas.relPath} ${why}; it was not read`);
      }
      const code = (err as NodeJS.ErrnoException).code;
      // removed (or its folder) between its stat and its read
      if (code === 'ENOENT' || code === 'ENOTDIR')
        throw new NodeNotFoundError(`canvas ${canvas.relPath} no longer exists`);
      if (!(err instanceof InvalidCanvasError)) throw err;
      throw new NodeContentMissingError(`${err.message}: ${err.errors?.[0]?.message ?? ''}`.trim());
    }
  }

  /**
   * The parsed canvas; a file that does not parse is read again a few times first, since an editor saving in place
   * (truncate, then write) leaves it half-written for a moment. Still invalid: `InvalidCanvasError`.
   */
  private async loadValid(canvas: ResolvedCanvasPath): Promise<CachedCanvas> {
    for (let retry = 0; ; retry++) {
      try {
        return await this.load(canvas);
      } catch (err) {
        if (!(err instanceof InvalidCanvasError) || retry === INVALID_CANVAS_RETRIES) throw err;
        await sleep(INVALID_CANVAS_RETRY_MS * (retry + 1));
      }
    }
  }

  private async parseFile(canvas: ResolvedCanvasPath, key: string): Promise<CachedCanvas> {
    // opened and checked as it is read: a canvas swapped for a link to the outside, or a FIFO, is refused
    const parsed = parseCanvas((await this.vault.files.readFile(canvas.absPath)).toString('utf8'));
    if ('errors' in parsed) throw new InvalidCanvasError(canvas.relPath, parsed.errors);
    const entry = cachedCanvas(key, parsed.doc);
    this.remember(canvas.absPath, entry);
    return entry;
  }

  /** Caches a parsed canvas, keeping the most recently used few (a parsed 5,000-node canvas is tens of MB). */
  private remember(absPath: string, entry: CachedCanvas): void {
    this.cache.delete(absPath);
    this.cache.set(absPath, entry);
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= MAX_CACHED_CANVASES) break;
      this.cache.delete(oldest);
    }
  }

  /**
   * The file name the canvas already links from this result's node, when an earlier attempt of the same (task,
   * node, agent) placed it (a replay after a crash): kept even if the node's text, and so its concept slug, changed
   * meanwhile, so the replay replaces that file instead of leaving the canvas pointing at a stale one. A file the
   * user re-pointed the node to is not ours and is never reused.
   */
  private async linkedResultName(
    canvas: ResolvedCanvasPath,
    resultNodeId: string,
    triple: { taskId: string; nodeId: string; agentType: string },
  ): Promise<string | undefined> {
    const cached = await this.load(canvas).catch(() => undefined);
    const linked = cached?.byId.get(resultNodeId)?.file;
    if (typeof linked !== 'string') return undefined;
    const name = path.posix.basename(linked);
    return isResultNameFor(name, triple) ? name : undefined;
  }

  private async fileContent(file: string, subpath: string | undefined, nodeId: string): Promise<string> {
    const found = this.vault.pathOf(file);
    const refused = (reason: string): NodeContentMissingError =>
      new NodeContentMissingError(`file node ${nodeId} points to "${file}", which is refused: ${reason}`);
    if ('reason' in found) throw refused(found.reason);
    try {
      return await readFileNode(this.vault.files, found.absPath, file, subpath, nodeId);
    } catch (err) {
      if (err instanceof NodeContentMissingError) throw err;
      if (err instanceof VaultPathError) {
        if (err.kind === 'outside') throw refused('it resolves outside the vault');
        throw new NodeContentMissingError(`file node ${nodeId} points to "${file}", which ${err.message}`);
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw refused('the file does not exist');
      throw new NodeContentMissingError(
        `file node ${nodeId} points to "${file}", which cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  }
}

/**
 * A canvas read that failed right after its path was checked, as the client's error: swapped for a link out of the
 * vault (400); swapped for a FIFO or folder, or removed meanwhile (404); anything else as it is.
 */
export function canvasReadError(err: unknown, canvasPath: string, relPath: string): unknown {
  if (err instanceof VaultPathError && err.kind === 'outside')
    return new CanvasPathOutsideVaultError(canvasPath, 'it resolves outside the vault');
  const code = (err as NodeJS.ErrnoException).code;
  if (
    err instanceof VaultPathError ||
    err instanceof NodeNotFoundError ||
    code === 'ENOENT' ||
    code === 'ENOTDIR'
  )
    return new CanvasNotFoundError(relPath);
  return err;
}

function statKey(stat: { ino: number; size: number; mtimeMs: number }): string {
  return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
}

/**
 * What surrounds a node, for the agent's prompt: the text (or file name, URL, label) of the nodes connected to it
 * by an edge, and the label of the smallest group it sits in.
 */
function surroundings(cached: CachedCanvas, node: CanvasNode): AgentNodeContext {
  const index = (cached.index ??= neighbourIndex(cached.doc));
  const linked = index.linked.get(node.id) ?? new Set<string>();
  // in canvas order, as a reader sees them
  const around = [...linked]
    .map((id) => cached.byId.get(id))
    .filter((n) => n !== undefined)
    .sort((a, b) => (index.order.get(a) ?? 0) - (index.order.get(b) ?? 0))
    .map((n) => ({ id: n.id, text: (n.text ?? n.label ?? n.file ?? n.url ?? '').trim() }))
    .filter((n) => n.text);
  const groupLabel = index.groups.find((g) => g !== node && contains(g, node))?.label?.trim();
  return {
    neighbours: around.map((n) => n.text),
    ...(around.length && { neighbourIds: around.map((n) => n.id) }),
    ...(groupLabel ? { groupLabel } : {}),
  };
}

function neighbourIndex(doc: CanvasDocument): NeighbourIndex {
  const linked = new Map<string, Set<string>>();
  const link = (a: string, b: string): void => {
    let set = linked.get(a);
    if (!set) linked.set(a, (set = new Set()));
    set.add(b);
  };
  for (const e of doc.edges) {
    if (e.fromNode === e.toNode) continue;
    link(e.fromNode, e.toNode);
    link(e.toNode, e.fromNode);
  }
  const groups = doc.nodes
    .filter((g) => g.type === 'group')
    .sort((a, b) => a.width * a.height - b.width * b.height);
  return { linked, groups, order: new Map(doc.nodes.map((n, i) => [n, i])) };
}

function contains(group: CanvasNode, n: CanvasNode): boolean {
  const g = rectOf(group);
  const r = rectOf(n);
  return (
    overlaps(g, r) &&
    r.x >= g.x &&
    r.y >= g.y &&
    r.x + r.width <= g.x + g.width &&
    r.y + r.height <= g.y + g.height
  );
}

function splitCanvasPath(relPath: string): { dir: string; base: string } {
  return { dir: path.posix.dirname(relPath), base: path.posix.basename(relPath, '.canvas') };
}

/** The concept part of a result heading `<agent>: <concept>` (the whole title when it has no such prefix). */
function conceptFromTitle(title: string, agentType: string): string {
  const prefix = `${agentType}: `;
  return title.startsWith(prefix) ? title.slice(prefix.length) : title;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
