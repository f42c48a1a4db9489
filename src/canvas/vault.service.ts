import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { promises as fs, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../config/canvas-batch-options';
import { CanvasNotFoundError, CanvasPathOutsideVaultError } from './canvas.errors';

/** A canvas path checked to lie inside the vault. */
export interface ResolvedCanvasPath {
  /** Normalized vault-relative path with `/` separators. */
  relPath: string;
  /** Real absolute path on disk (symlinks resolved). */
  absPath: string;
}

const WINDOWS_DRIVE = /^[a-zA-Z]:/;
const PERCENT_ESCAPE = /%[0-9a-fA-F]{2}/;
const MAX_KNOWN_FOLDERS = 64;

/**
 * The vault: every path the service touches is checked here against the vault's real root, after resolving
 * symlinks, so nothing can read or write outside it.
 */
@Injectable()
export class VaultService implements OnModuleInit {
  private readonly logger = new Logger(VaultService.name);
  /** Folders `ensureFolder` created and checked, with their real paths (oldest check first; the first to go). */
  private readonly folders = new Map<string, string>();
  /** Folder checks-and-creations in progress, by vault-relative folder. */
  private readonly creating = new Map<string, Promise<string>>();
  /** Real path of the vault root. */
  readonly root: string;

  constructor(@InjectCanvasBatchOptions() options: ResolvedCanvasBatchOptions) {
    try {
      this.root = realpathSync(options.vaultRoot);
    } catch {
      throw new Error(`VAULT_ROOT ${options.vaultRoot} does not exist or cannot be read`);
    }
  }

  onModuleInit(): void {
    this.logger.log(`vault ${this.root}`);
  }

  /**
   * Checks a client-supplied canvas path and resolves it. Refuses (400) absolute paths, `..` segments, percent
   * escapes, NUL and anything whose real path (symlinks followed) leaves the vault; 404 when nothing is there.
   */
  async resolveCanvas(canvasPath: string): Promise<ResolvedCanvasPath> {
    const relPath = this.checkRelative(
      canvasPath,
      (reason) => new CanvasPathOutsideVaultError(canvasPath, reason),
    );
    const joined = path.join(this.root, relPath);
    let real: string;
    try {
      real = await fs.realpath(joined);
    } catch {
      const parent = await this.nearestExistingAncestor(path.dirname(joined));
      if (!this.contains(parent))
        throw new CanvasPathOutsideVaultError(canvasPath, 'it resolves outside the vault');
      throw new CanvasNotFoundError(relPath);
    }
    if (!this.contains(real))
      throw new CanvasPathOutsideVaultError(canvasPath, 'it resolves outside the vault');
    const stat = await fs.stat(real);
    if (!stat.isFile()) throw new CanvasNotFoundError(relPath);
    return { relPath, absPath: real };
  }

  /**
   * Resolves a vault-relative path found inside a canvas (a file node's `file`), symlinks followed. Returns the
   * reason instead when it is refused (absolute, `..`, percent escapes, NUL, empty), resolves outside the vault or
   * does not exist. It may be a directory: callers check what they need.
   */
  async resolveExisting(relative: string): Promise<{ absPath: string } | { reason: string }> {
    let rel: string;
    try {
      rel = this.checkRelative(relative, (reason) => new Error(reason));
    } catch (err) {
      return { reason: (err as Error).message };
    }
    try {
      const real = await fs.realpath(path.join(this.root, rel));
      return this.contains(real) ? { absPath: real } : { reason: 'it resolves outside the vault' };
    } catch {
      return { reason: 'the file does not exist' };
    }
  }

  /**
   * Creates (if needed) a folder inside the vault and returns its real path; refuses a folder whose real path
   * (e.g. through a symlink) leaves the vault. A folder created and checked before is only resolved again (one
   * `realpath`, every call): while it resolves to the same real path it is taken as it is; otherwise (gone, or
   * replaced by a link) it is checked and created as new.
   */
  async ensureFolder(relFolder: string): Promise<string> {
    const known = this.folders.get(relFolder);
    if (known !== undefined) {
      const now = await fs.realpath(path.join(this.root, relFolder)).catch(() => undefined);
      if (now === known) return known;
    }
    // the results of one batch ask at once: they share one check-and-create
    let creating = this.creating.get(relFolder);
    if (!creating) {
      creating = this.createFolder(relFolder)
        .then((real) => {
          this.folders.delete(relFolder);
          this.folders.set(relFolder, real);
          if (this.folders.size > MAX_KNOWN_FOLDERS)
            this.folders.delete(this.folders.keys().next().value as string);
          return real;
        })
        .finally(() => this.creating.delete(relFolder));
      this.creating.set(relFolder, creating);
    }
    return creating;
  }

  private async createFolder(relFolder: string): Promise<string> {
    const joined = path.join(this.root, relFolder);
    // Check what exists already before creating anything, so a symlink or `..` never makes mkdir write outside.
    if (!this.contains(await this.nearestExistingAncestor(joined))) {
      throw new Error(`folder ${relFolder} resolves outside the vault`);
    }
    await fs.mkdir(joined, { recursive: true });
    const real = await fs.realpath(joined);
    if (!this.contains(real)) throw new Error(`folder ${relFolder} resolves outside the vault`);
    return real;
  }

  /** Vault-relative `/` path of an absolute path inside the vault. */
  relative(absPath: string): string {
    return path.relative(this.root, absPath).split(path.sep).join('/');
  }

  contains(realPath: string): boolean {
    const rel = path.relative(this.root, realPath);
    // `..name` is a name inside the root; only `..` itself or `../…` leaves it.
    return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
  }

  private checkRelative(input: string, fail: (reason: string) => Error): string {
    if (input.includes('\0')) throw fail('it contains a NUL character');
    if (PERCENT_ESCAPE.test(input))
      throw fail('percent-encoded characters are not allowed; send the path decoded');
    const slashed = input.replace(/\\/g, '/');
    if (slashed.startsWith('/') || WINDOWS_DRIVE.test(slashed))
      throw fail('it must be relative to the vault');
    const segments = slashed.split('/').filter((s) => s !== '' && s !== '.');
    if (segments.includes('..')) throw fail('".." segments are not allowed');
    if (segments.length === 0) throw fail('it is empty');
    return segments.join('/');
  }

  private async nearestExistingAncestor(dir: string): Promise<string> {
    for (let current = dir; ; current = path.dirname(current)) {
      try {
        return await fs.realpath(current);
      } catch {
        if (path.dirname(current) === current) return current;
      }
    }
  }
}
