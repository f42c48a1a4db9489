import { constants, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { StartupError } from './startup-error';
import { checkAccess, DataDirNotWritableError, ensureDataDir, processUser } from './data-dir';

describe('DATA_DIR', () => {
  let base: string;
  beforeEach(() => (base = mkdtempSync(path.join(tmpdir(), 'data-dir-'))));
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(base, { recursive: true, force: true });
  });

  /** The error `ensureDataDir` throws, with `mkdirSync` failing as `code` says (root cannot be refused for real). */
  const refusal = (dataDir: string, code?: string): StartupError => {
    if (code)
      // the module object itself (an `import * as` namespace would be a copy)
      jest
        .spyOn(jest.requireActual<typeof import('node:fs')>('node:fs'), 'mkdirSync')
        .mockImplementation(() => {
          throw Object.assign(new Error(`${code}: refused, mkdir '${dataDir}'`), { code });
        });
    try {
      ensureDataDir(dataDir);
    } catch (err) {
      return err as StartupError;
    }
    throw new Error('ensureDataDir did not refuse');
  };

  it('creates a missing DATA_DIR with its parents, and accepts an existing one', () => {
    const dataDir = path.join(base, 'a', 'b');
    ensureDataDir(dataDir);
    expect(statSync(dataDir).isDirectory()).toBe(true);
    expect(() => ensureDataDir(dataDir)).not.toThrow();
  });

  it('refuses a file where DATA_DIR, or one of its parents, should be', () => {
    const file = path.join(base, 'file');
    writeFileSync(file, 'x');
    const itself = refusal(file);
    expect(itself).toBeInstanceOf(StartupError);
    expect(itself.message).toBe(
      `DATA_DIR ${file} cannot be created: ${file} is a file, not a folder (EEXIST). Set DATA_DIR to a folder, or ` +
        'move the file away.',
    );
    expect(refusal(path.join(file, 'sub', 'data')).message).toBe(
      `DATA_DIR ${path.join(file, 'sub', 'data')} cannot be created: ${file} is a file, not a folder (ENOTDIR). ` +
        'Set DATA_DIR to a folder, or move the file away.',
    );
  });

  it('names the nearest existing folder that cannot be written, and who must be able to', () => {
    const dataDir = path.join(base, 'x', 'data');
    expect(refusal(dataDir, 'EACCES').message).toBe(
      `DATA_DIR ${dataDir} does not exist and cannot be created: ${base} is not writable for ${processUser()} ` +
        '(EACCES). Create DATA_DIR for that user, or set DATA_DIR to a folder that user can write.',
    );
    expect(refusal(dataDir, 'EROFS').message).toBe(
      `DATA_DIR ${dataDir} does not exist and cannot be created: ${base} is on a read-only file system (EROFS). ` +
        'Set DATA_DIR to a folder on a writable file system.',
    );
    expect(refusal(dataDir, 'ENOSPC').message).toBe(
      `DATA_DIR ${dataDir} does not exist and cannot be created (ENOSPC: ENOSPC: refused, mkdir '${dataDir}'). ` +
        'Create it, or set DATA_DIR to another folder.',
    );
  });

  it('says what a DATA_DIR that is not writable is needed for', () => {
    expect(new DataDirNotWritableError('/d', 'EACCES').message).toBe(
      `DATA_DIR /d is not writable for ${processUser()} (EACCES): canvas-batch keeps its database there. Make the ` +
        'folder writable for that user, or set DATA_DIR to a folder that user can write.',
    );
    expect(new DataDirNotWritableError('/d', 'EROFS', 'copies its example vault there').message).toBe(
      'DATA_DIR /d is on a read-only file system (EROFS): canvas-batch copies its example vault there. Set DATA_DIR ' +
        'to a folder on a writable file system.',
    );
  });

  it('checks access like access(2): nothing for an allowed mode, the error code otherwise', () => {
    expect(checkAccess(base, constants.W_OK)).toBeUndefined();
    expect(checkAccess(path.join(base, 'missing'), constants.W_OK)).toBe('ENOENT');
  });

  it('names the user by name and uid', () => {
    expect(processUser()).toMatch(/^user \S+ \(uid \d+\)$|^uid \d+$/);
  });
});
