import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { promises as fs, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { InjectCanvasOptions, type CanvasModuleOptions } from './canvas.module-definition';
import { CanvasNotFoundError, CanvasPathOutsideVaultError } from './canvas.errors';
import { type VaultDir, VaultFs } from './vault-fs';

/** A canvas path checked to lie inside the vault. */
export interface ResolvedCanvasPath {
  /** Normalized vault-relative path with `/` separators. */
  relPath: string;
  /** Real absolute path on disk (symlinks resolved). */
  absPath: string;
}

const WINDOWS_DRIVE = /^[a-zA-Z]:/;
const PERCENT_ESCAPE = /%[0-9a-fA-F]{2}/;
/** How often the vault's file I/O is probed (a `stat` of its root), and from when a probe unanswered means stuck. */
export const IO_PROBE_INTERVAL_MS = 1_000;
export const IO_STALL_MS = 5_000;

/**
 * The vault: every path the service touches is checked here against the vault's real root, after resolving
 * symlinks, so nothing can read or write outside it — client paths when they arrive, and every read and write again
 * when it happens (`files`), since other programs write in the vault while a batch runs.
 */
@Injectable()
export class VaultService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(VaultService.name);
  /** When the probe still waiting for its answer started (`performance.now()`). */
  private probeStartedAt: number | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Real path of the vault root. */
  readonly root: string;
  /** Reads and writes confined to the vault, checked when they happen. */
  readonly files: VaultFs;

  constructor(@InjectCanvasOptions() options: CanvasModuleOptions) {
    try {
      this.root = realpathSync(options.vaultRoot);
    } catch {
      throw new Error(`VAULT_ROOT ${options.vaultRoot} does not exist or cannot be read`);
    }
    this.files = new VaultFs(this.root);
  }

  onModuleInit(): void {
    this.logger.log(`vault ${this.root}`);
    this.probeTimer = setInterval(() => this.probe(), IO_PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.probeTimer);
  }

  /**
   * How long the vault's file I/O has been stuck: the age of the probe still waiting for its answer (0 when none
   * is). File calls run in a small pool of threads; a hung network drive or FUSE mount, or calls that wait forever,
   * can take them all, and then every read and write of the service waits behind them — `/health` reports it.
   */
  ioStalledMs(): number {
    return this.probeStartedAt === undefined ? 0 : Math.round(performance.now() - this.probeStartedAt);
  }

  private probe(): void {
    if (this.probeStartedAt !== undefined) return; // the last one is still waiting: that is the measurement
    this.probeStartedAt = performance.now();
    const answered = (): void => {
      this.probeStartedAt = undefined;
    };
    fs.stat(this.root).then(answered, answered);
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
    // (removed in the moment since: not found either)
    const stat = await fs.stat(real).catch(() => undefined);
    if (!stat?.isFile()) throw new CanvasNotFoundError(relPath);
    return { relPath, absPath: real };
  }

  /**
   * Checks a vault-relative path found inside a canvas or a query (a file node's `file`) and gives the absolute path
   * to open it by — through `files`, which checks what it opened. Returns the reason instead when it is refused
   * (absolute, `..`, percent escapes, NUL, empty).
   */
  pathOf(relative: string): { absPath: string } | { reason: string } {
    try {
      return {
        absPath: path.join(
          this.root,
          this.checkRelative(relative, (reason) => new Error(reason)),
        ),
      };
    } catch (err) {
      return { reason: (err as Error).message };
    }
  }

  /**
   * Opens a folder of the vault for writing into, creating what is missing of it; refuses (VaultPathError) a folder
   * that resolves outside the vault (e.g. through a link) without creating anything outside. Opened and checked on
   * every call: a folder swapped for a link since the last call is refused, one removed is created again.
   */
  ensureFolder(relFolder: string): Promise<VaultDir> {
    return this.files.ensureDir(relFolder);
  }

  /** Vault-relative `/` path of an absolute path inside the vault. */
  relative(absPath: string): string {
    return path.relative(this.root, absPath).split(path.sep).join('/');
  }

  contains(realPath: string): boolean {
    return this.files.contains(realPath);
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
