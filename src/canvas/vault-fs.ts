import {
  type BigIntStats,
  closeSync,
  constants,
  existsSync,
  fstat,
  promises as fs,
  open as openCallback,
  readlinkSync,
} from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

/**
 * Linux names an open descriptor `/proc/self/fd/<n>`; a path through it resolves from the open folder itself, not
 * from its name, so `/proc/self/fd/<n>/<name>` works like `openat(n, name)`: whatever is swapped in on the folder's
 * path later, the name lands in the folder that was opened and checked.
 */
const PROC_FD = '/proc/self/fd';
export const DESCRIPTOR_PATHS = process.platform === 'linux' && existsSync(PROC_FD);

/** `open` never waits for a writer on a FIFO (or a device) with O_NONBLOCK; it has no effect on regular files. */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
const DIR_FLAGS = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | (constants.O_NONBLOCK ?? 0);

/**
 * Why a path was refused: `outside` (it resolves out of the vault), `not-file` (a folder, FIFO, device…). The message
 * is a predicate to put after what was refused ("resolves outside the vault", "is a directory"); it names no path.
 */
export class VaultPathError extends Error {
  constructor(
    readonly kind: 'outside' | 'not-file',
    message: string,
  ) {
    super(message);
    this.name = 'VaultPathError';
  }
}

/** An open folder of the vault, checked to lie inside it when it was opened. */
export interface VaultDir {
  /** The folder's real path when it was opened. */
  readonly realPath: string;
  /** Where to address entries: the open descriptor's path (Linux) or the real path (elsewhere). */
  readonly where: string;
  /** The path of an entry of this very folder (`where/name`). */
  entry(name: string): string;
  close(): Promise<void>;
}

/** A regular file of the vault opened for reading, with its status from the open descriptor. */
export interface OpenedFile {
  handle: FileHandle;
  stat: BigIntStats;
  /** The file's real path. */
  realPath: string;
}

/**
 * File access confined to the vault, checked at the moment of use rather than once before: every folder and file is
 * opened first, and what was opened is verified — its real path (that of the descriptor, symlinks resolved) must lie
 * inside the vault, a file must be a regular file — before anything is read or written through it. Writes go
 * through an opened folder (`VaultDir.entry`), so a folder swapped for a link to the outside after the check cannot
 * redirect them. Opens never block on a FIFO or device.
 *
 * Where descriptors have no path (not Linux), a folder is addressed by the real path found when it was opened, and a
 * file's descriptor is compared (device and inode) with the file its real path names: reads stay confined; writes
 * keep a window of microseconds between that check and the write.
 */
export class VaultFs {
  constructor(
    readonly root: string,
    private readonly descriptorPaths: boolean = DESCRIPTOR_PATHS,
  ) {}

  /** Whether a real (symlink-free) absolute path lies inside the vault. */
  contains(realPath: string): boolean {
    const rel = path.relative(this.root, realPath);
    // `..name` is a name inside the root; only `..` itself or `../…` leaves it.
    return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
  }

  /**
   * Opens a folder (symlinks followed) and checks that the folder opened lies inside the vault: VaultPathError
   * `outside` otherwise; ENOENT / ENOTDIR as `fs` throws them.
   */
  async openDir(dir: string): Promise<VaultDir> {
    // a plain descriptor, not a FileHandle (whose promise machinery costs more than these calls), closed
    // synchronously: closing a folder's descriptor writes nothing
    const fd = await new Promise<number>((resolve, reject) =>
      openCallback(dir, DIR_FLAGS, (err, opened) => (err ? reject(err) : resolve(opened))),
    );
    let open = true;
    const close = (): Promise<void> => {
      if (open) closeSync(fd);
      open = false;
      return Promise.resolve();
    };
    try {
      const realPath = this.descriptorPaths ? descriptorPath(fd, 'folder') : await this.sameRealPath(dir, fd);
      if (!this.contains(realPath)) throw outside();
      if (!this.descriptorPaths) await close();
      const where = this.descriptorPaths ? `${PROC_FD}/${fd}` : realPath;
      return { realPath, where, entry: (name) => path.join(where, name), close };
    } catch (err) {
      await close();
      throw err;
    }
  }

  /**
   * Opens a file for reading: never blocks (a FIFO or device is refused, not waited on), and refuses anything that is
   * not a regular file inside the vault (VaultPathError). The caller closes the handle.
   */
  async openFile(file: string): Promise<OpenedFile> {
    const handle = await fs.open(file, READ_FLAGS);
    try {
      const stat = await handle.stat({ bigint: true });
      const realPath = this.descriptorPaths
        ? descriptorPath(handle.fd, 'file')
        : await this.sameRealPath(file, handle.fd);
      if (!this.contains(realPath)) throw outside();
      if (!stat.isFile()) {
        const what = stat.isDirectory() ? 'a directory' : 'not a regular file';
        throw new VaultPathError('not-file', `is ${what}`);
      }
      return { handle, stat, realPath };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** A regular file's bytes (at most `maxBytes`), read from the opened and checked file. */
  async readFile(file: string, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
    const { handle, stat } = await this.openFile(file);
    try {
      return await readFrom(handle, Math.min(maxBytes, Number(stat.size)), maxBytes);
    } finally {
      await handle.close();
    }
  }

  /**
   * Opens a folder of the vault, creating what is missing of it one level at a time, each level created inside the
   * checked folder above it and checked in turn: a link to the outside anywhere on the way is refused, and nothing
   * is ever created outside the vault.
   */
  async ensureDir(relFolder: string): Promise<VaultDir> {
    try {
      return await this.openDir(path.join(this.root, relFolder));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let dir = await this.openDir(this.root);
    try {
      for (const segment of relFolder.split('/').filter(Boolean)) {
        const next = dir.entry(segment);
        await fs.mkdir(next).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        const child = await this.openDir(next);
        await dir.close();
        dir = child;
      }
      return dir;
    } catch (err) {
      await dir.close();
      throw err;
    }
  }

  /** Runs `work` with a folder of the vault opened and checked, closing it afterwards. */
  async inDir<T>(dir: string, work: (d: VaultDir) => Promise<T>): Promise<T> {
    const opened = await this.openDir(dir);
    try {
      return await work(opened);
    } finally {
      await opened.close();
    }
  }

  /**
   * Without descriptor paths: the real path of `p`, provided it names the very file or folder `fd` has open
   * (same device and inode) — a swap between the open and this check is refused as leaving the vault.
   */
  private async sameRealPath(p: string, fd: number): Promise<string> {
    const real = await fs.realpath(p);
    const [opened, named] = await Promise.all([
      new Promise<BigIntStats>((resolve, reject) =>
        fstat(fd, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st))),
      ),
      fs.stat(real, { bigint: true }),
    ]);
    if (opened.dev !== named.dev || opened.ino !== named.ino) throw outside();
    return real;
  }
}

const DELETED = ' (deleted)';

/**
 * The real path of what a descriptor has open. A file removed since it was opened (an editor replacing it by a rename)
 * is still the file that was opened: the path it had when removed is checked. A folder removed meanwhile reads as
 * gone (ENOENT): nothing can be created in it.
 */
function descriptorPath(fd: number, what: 'file' | 'folder'): string {
  const target = readlinkSync(`${PROC_FD}/${fd}`);
  if (!target.endsWith(DELETED)) return target;
  if (what === 'file') return target.slice(0, -DELETED.length);
  throw Object.assign(new Error('ENOENT: the folder was removed while being opened'), { code: 'ENOENT' });
}

function outside(): VaultPathError {
  return new VaultPathError('outside', 'resolves outside the vault');
}

/**
 * Reads up to `limit` bytes from the start of an open file; a file that grew since its stat is read on up to `cap`
 * (default `limit`: no more).
 */
export async function readFrom(handle: FileHandle, limit: number, cap = limit): Promise<Buffer> {
  let buf = Buffer.allocUnsafe(Math.max(limit, 0));
  let filled = 0;
  for (;;) {
    if (filled === buf.length) {
      if (buf.length >= cap) break;
      // grown since its stat (another program is writing): keep reading until the end or the cap
      const bigger = Buffer.allocUnsafe(Math.min(cap, Math.max(64 * 1024, buf.length * 2)));
      buf.copy(bigger, 0, 0, filled);
      buf = bigger;
    }
    const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
}
