import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * Writes `data` to a temp file in the target's folder, then renames it over the target, so a reader (Obsidian)
 * sees either the old or the new file, never half of one. `beforeRename` may veto the rename (returns false), e.g.
 * when the target changed since it was read; the temp file is then removed and `false` returned.
 */
export async function atomicWrite(
  file: string,
  data: string,
  options: { fsync?: boolean; beforeRename?: () => Promise<boolean> } = {},
): Promise<boolean> {
  const temp = path.join(
    path.dirname(file),
    `${tempPrefix(file)}${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  const handle = await fs.open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(data, 'utf8');
    if (options.fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.beforeRename && !(await options.beforeRename())) {
      await fs.rm(temp, { force: true });
      return false;
    }
    await fs.rename(temp, file);
    return true;
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
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
