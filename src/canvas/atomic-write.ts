import { randomBytes } from 'node:crypto';
import {
  promises as fs,
  rename as renameCallback,
  renameSync,
  rm as rmCallback,
  writeFile as writeFileCallback,
} from 'node:fs';
import * as path from 'node:path';

/**
 * Writes `data` to a temp file in the target's folder, then renames it over the target, so a reader (Obsidian)
 * sees either the old or the new file, never half of one. `beforeRename` may veto the rename (returns false), e.g.
 * when the target changed since it was read; the temp file is then removed and `false` returned.
 */
export async function atomicWrite(
  file: string,
  data: string | Buffer,
  options: {
    /**
     * `true`: flush the temp file to disk before the rename. `'after-rename'`: flush the renamed file right after
     * the rename instead, which keeps the flush out of the window between `beforeRename` and the rename (on ext4,
     * replacing a file by rename already orders its data before the rename; the flush is for power loss).
     */
    fsync?: boolean | 'after-rename';
    beforeRename?: () => Promise<boolean>;
    /**
     * A last veto run synchronously right before a synchronous rename, so nothing can happen between the two in
     * this process and the window in which another program's write could go unnoticed is a few microseconds.
     */
    lastCheck?: () => boolean;
  } = {},
): Promise<boolean> {
  const temp = path.join(
    path.dirname(file),
    `${tempPrefix(file)}${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  if (options.fsync === undefined && !options.beforeRename && !options.lastCheck) {
    await plainReplace(temp, file, data);
    return true;
  }
  const handle = await fs.open(temp, 'wx', 0o644);
  let open = true;
  const close = async (): Promise<void> => {
    if (open) await handle.close();
    open = false;
  };
  try {
    await handle.writeFile(data, 'utf8');
    if (options.fsync === true) await handle.sync();
    if (options.fsync !== 'after-rename') await close();
  } catch (err) {
    await close();
    await fs.rm(temp, { force: true });
    throw err;
  }
  try {
    if (options.beforeRename && !(await options.beforeRename())) {
      await close();
      await fs.rm(temp, { force: true });
      return false;
    }
    if (options.lastCheck) {
      if (!options.lastCheck()) {
        await close();
        await fs.rm(temp, { force: true });
        return false;
      }
      renameSync(temp, file);
    } else {
      await fs.rename(temp, file);
    }
  } catch (err) {
    await close();
    await fs.rm(temp, { force: true });
    throw err;
  }
  try {
    if (open) await handle.sync(); // the handle follows the inode, now at `file`
  } finally {
    await close();
  }
  return true;
}

/**
 * The common case (a result file: no flush, no veto) with the callback API: three system calls without a
 * `FileHandle` and its promise machinery, which cost more than the calls themselves for files of a few kB.
 */
function plainReplace(temp: string, file: string, data: string | Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => rmCallback(temp, { force: true }, () => reject(err));
    writeFileCallback(temp, data, { encoding: 'utf8', flag: 'wx', mode: 0o644 }, (writeErr) => {
      if (writeErr) return failed(writeErr);
      renameCallback(temp, file, (renameErr) => (renameErr ? failed(renameErr) : resolve()));
    });
  });
}

function tempPrefix(file: string): string {
  return `.${path.basename(file)}.`;
}

/** `.<name>.<pid>.<8 hex>.tmp`: the temp files `atomicWrite` creates. */
const TEMP_FILE = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes temp files that another (dead) process left between writing and renaming: in `dir`, those of `target`
 * only (a user's folder), or all of ours when `target` is omitted (a folder we own). Only one process works on a
 * vault's data at a time (the database lock), so a temp file of another pid is an orphan.
 */
export async function removeStaleTempFiles(dir: string, target?: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => {
        const m = TEMP_FILE.exec(n);
        return m !== null && Number(m[2]) !== process.pid && (target === undefined || m[1] === target);
      })
      .map((n) => fs.rm(path.join(dir, n), { force: true })),
  );
}
