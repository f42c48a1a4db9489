import {
  BadRequestException,
  Controller,
  Get,
  NotFoundException,
  Optional,
  Query,
  Res,
} from '@nestjs/common';
import type { Response } from 'express';
import { promises as fs, type Dirent } from 'node:fs';
import * as path from 'node:path';
import {
  type CanvasDocument,
  type CanvasNode,
  InvalidCanvasError,
  canvasReadError,
  VaultPathError,
  parseCanvas,
  VaultService,
} from '../canvas';
import { GeneratedNodes } from '../session';
import {
  CanvasDocumentDto,
  type CanvasEntryDto,
  CanvasListDto,
  type CanvasNodeDto,
  CanvasNodesDto,
  CanvasPathQueryDto,
} from './vault-browser.dto';
import { FileQueryDto } from './file-query.dto';
import { renderPreview } from './markdown-preview';

/** At most this many canvases are listed (the rest is reported as `truncated`). */
export const MAX_LISTED_CANVASES = 2000;
/** Result previews larger than this are refused (413): they are meant for reading, not downloading. */
export const MAX_PREVIEW_BYTES = 2 * 1024 * 1024;

/**
 * Read-only views of the vault for the dashboard's "new batch" form and result previews. Every path is checked by
 * `VaultService` (relative, no `..`, symlinks resolved inside the vault); nothing is written.
 */
@Controller()
export class VaultBrowserController {
  constructor(
    private readonly vault: VaultService,
    // absent when the module is registered with a `CanvasModule` alone: results are then told by their folder only
    @Optional() private readonly generated?: GeneratedNodes,
  ) {}

  /** The vault's canvases (`*.canvas`, hidden folders skipped, symlinks not followed), sorted by path. */
  @Get('canvases')
  async canvases(): Promise<CanvasListDto> {
    const found: CanvasEntryDto[] = [];
    let truncated = false;
    const walk = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch {
        return; // unreadable folder: nothing to list there
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        if (truncated || e.name.startsWith('.')) continue;
        const abs = path.join(dir, e.name);
        if (e.isDirectory()) await walk(abs);
        else if (e.isFile() && e.name.endsWith('.canvas')) {
          if (found.length >= MAX_LISTED_CANVASES) {
            truncated = true;
            continue;
          }
          const stat = await fs.stat(abs);
          found.push({
            path: this.vault.relative(abs),
            size: stat.size,
            modified_at: stat.mtime.toISOString(),
          });
        }
      }
    };
    await walk(this.vault.root);
    found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { canvases: found, truncated };
  }

  /** The nodes of one canvas (id, type, colour, text/file/url/label, geometry), in file order. */
  @Get('canvases/nodes')
  async nodes(@Query() query: CanvasPathQueryDto): Promise<CanvasNodesDto> {
    const { relPath, doc, generated } = await this.read(query.path);
    return {
      canvas_path: relPath,
      nodes: doc.nodes.map((n) => {
        const node: CanvasNodeDto = {
          id: n.id,
          type: n.type,
          x: n.x,
          y: n.y,
          width: n.width,
          height: n.height,
          result: generated(n),
        };
        for (const key of ['color', 'text', 'file', 'url', 'label'] as const) {
          if (typeof n[key] === 'string') node[key] = n[key];
        }
        return node;
      }),
    };
  }

  /**
   * One canvas as the dashboard's canvas view draws it: nodes and edges as in the file (every key kept, file order
   * is z-order), and the ids of the nodes the service added (the `result` of `canvases/nodes`).
   */
  @Get('canvases/document')
  async document(@Query() query: CanvasPathQueryDto): Promise<CanvasDocumentDto> {
    const { relPath, doc, generated } = await this.read(query.path);
    return {
      canvas_path: relPath,
      nodes: doc.nodes,
      edges: doc.edges,
      generated: doc.nodes.filter(generated).map((n) => n.id),
    };
  }

  /** Reads and parses a canvas through the vault's checks, with what tells the service's own cards. */
  private async read(
    canvasPath: string,
  ): Promise<{ relPath: string; doc: CanvasDocument; generated: (n: CanvasNode) => boolean }> {
    const canvas = await this.vault.resolveCanvas(canvasPath);
    // read through the vault's checked access: a canvas swapped for a link out of the vault or a FIFO is refused
    const bytes = await this.vault.files.readFile(canvas.absPath).catch((err: unknown) => {
      throw canvasReadError(err, canvasPath, canvas.relPath);
    });
    const parsed = parseCanvas(bytes.toString('utf8'));
    if ('errors' in parsed) throw new InvalidCanvasError(canvas.relPath, parsed.errors);
    // what the service wrote into this canvas, as its store knows it; a file card linking into the results folder
    // also counts (written before the store kept ids, or by a service with another DATA_DIR)
    const ids = new Set((await this.generated?.inCanvas(canvas.relPath))?.nodes.map((n) => n.id));
    const resultsFolder = `${canvas.relPath.replace(/\.canvas$/i, '')}-explanations/`;
    return {
      relPath: canvas.relPath,
      doc: parsed.doc,
      generated: (n) =>
        ids.has(n.id) ||
        (n.type === 'file' && typeof n.file === 'string' && n.file.startsWith(resultsFolder)),
    };
  }

  /** A markdown file of the vault (e.g. a generated result), as `text/markdown`, or with `format=html` rendered. */
  @Get('files')
  async file(@Query() query: FileQueryDto, @Res() res: Response): Promise<void> {
    if (!/\.md$/i.test(query.path)) throw new BadRequestException('Only markdown files (.md) can be read');
    const found = this.vault.pathOf(query.path);
    if ('reason' in found) throw new BadRequestException(`path "${query.path}" is refused: ${found.reason}`);
    // opened, then checked: inside the vault, a regular file (never waits on a FIFO)
    const opened = await this.vault.files.openFile(found.absPath).catch((err: NodeJS.ErrnoException) => {
      if (err instanceof VaultPathError) {
        if (err.kind === 'outside')
          throw new BadRequestException(`path "${query.path}" is refused: it resolves outside the vault`);
        throw new NotFoundException(`"${query.path}" is not a file`);
      }
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR')
        throw new NotFoundException(`No file at "${query.path}" in the vault`);
      throw err;
    });
    let text: string;
    try {
      if (opened.stat.size > MAX_PREVIEW_BYTES)
        throw new BadRequestException(`"${query.path}" is larger than ${MAX_PREVIEW_BYTES} bytes`);
      text = await opened.handle.readFile('utf8');
    } finally {
      await opened.handle.close();
    }
    if (query.format === 'html') res.status(200).type('text/html; charset=utf-8').send(renderPreview(text));
    else res.status(200).type('text/markdown; charset=utf-8').send(text);
  }
}
