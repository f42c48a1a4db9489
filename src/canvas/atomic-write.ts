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
    `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
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
