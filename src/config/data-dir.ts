import { accessSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import * as path from 'node:path';
import { StartupError } from './startup-error';

/** `user NAME (uid N)`: who must be able to write `DATA_DIR`. */
export function processUser(): string {
  const uid = process.getuid?.();
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    /* no passwd entry for this uid */
  }
  if (uid === undefined) return name ? `user ${name}` : 'the user running canvas-batch';
  return name ? `user ${name} (uid ${uid})` : `uid ${uid}`;
}

/** The error code `access(2)` gives for `mode` on `target` (`EACCES`, `EROFS`, `EPERM`…), or `undefined` when allowed. */
export type AccessCheck = (target: string, mode: number) => string | undefined;

export const checkAccess: AccessCheck = (target, mode) => {
  try {
    accessSync(target, mode);
    return undefined;
  } catch (err) {
    return String((err as NodeJS.ErrnoException).code ?? 'EACCES');
  }
};

function notWritable(code: string): string {
  return code === 'EROFS'
    ? 'is on a read-only file system (EROFS)'
    : `is not writable for ${processUser()} (${code})`;
}

/** What to do about it: `fix` for a permission, another folder for a read-only file system. */
function remedy(code: string, fix: string): string {
  return code === 'EROFS'
    ? 'Set DATA_DIR to a folder on a writable file system.'
    : `${fix}, or set DATA_DIR to a folder that user can write.`;
}

/** `DATA_DIR` exists but cannot be written: nothing canvas-batch keeps there can be created. */
export class DataDirNotWritableError extends StartupError {
  constructor(dataDir: string, code: string, purpose = 'keeps its database there') {
    super(
      `DATA_DIR ${dataDir} ${notWritable(code)}: canvas-batch ${purpose}. ${remedy(code, 'Make the folder writable for that user')}`,
    );
  }
}

/**
 * Creates `DATA_DIR` (with its parents) when it is missing. Refuses, saying what is in the way and what to do, when
 * it cannot: a parent that is not writable, or a file where a folder is needed.
 */
export function ensureDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true }); // EEXIST when a file is there
  } catch (err) {
    throw dataDirCreationError(dataDir, err);
  }
}

function dataDirCreationError(dataDir: string, err: unknown): StartupError {
  const code = String((err as NodeJS.ErrnoException).code ?? 'unknown error');
  let existing = path.dirname(dataDir);
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  if (existsSync(dataDir) || !statSync(existing).isDirectory()) {
    const file = existsSync(dataDir) ? dataDir : existing;
    return new StartupError(
      `DATA_DIR ${dataDir} cannot be created: ${file} is a file, not a folder (${code}). ` +
        'Set DATA_DIR to a folder, or move the file away.',
      { cause: err },
    );
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new StartupError(
      `DATA_DIR ${dataDir} does not exist and cannot be created: ${existing} ${notWritable(code)}. ` +
        remedy(code, 'Create DATA_DIR for that user'),
      { cause: err },
    );
  }
  return new StartupError(
    `DATA_DIR ${dataDir} does not exist and cannot be created (${code}: ${(err as Error).message}). ` +
      'Create it, or set DATA_DIR to another folder.',
    { cause: err },
  );
}
