import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUNDLED_VAULT, resolveVaultRoot } from './example-vault';

describe('resolveVaultRoot', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'example-vault-'));
  });

  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('points at the example vault shipped in the repository', () => {
    expect(BUNDLED_VAULT).toBe(path.resolve(__dirname, '..', '..', 'examples', 'vault'));
    expect(existsSync(path.join(BUNDLED_VAULT, 'Biology', 'cells.canvas'))).toBe(true);
  });

  it('uses VAULT_ROOT when set and copies nothing', () => {
    expect(resolveVaultRoot('/my/vault', dataDir)).toEqual({ root: '/my/vault', copied: false });
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('copies the bundled vault into DATA_DIR/vault on first use', () => {
    const root = path.join(dataDir, 'vault');
    expect(resolveVaultRoot(undefined, dataDir)).toEqual({ root, copied: true });
    for (const rel of ['Biology/cells.canvas', '数学/微积分.canvas', 'README.md']) {
      expect(readFileSync(path.join(root, rel))).toEqual(readFileSync(path.join(BUNDLED_VAULT, rel)));
    }
    expect(readdirSync(root).sort()).toEqual(readdirSync(BUNDLED_VAULT).sort());
  });

  it('creates DATA_DIR when it does not exist yet', () => {
    const nested = path.join(dataDir, 'a', 'b');
    expect(resolveVaultRoot(undefined, nested)).toEqual({ root: path.join(nested, 'vault'), copied: true });
    expect(existsSync(path.join(nested, 'vault', 'Biology', 'cells.canvas'))).toBe(true);
  });

  it('keeps an existing copy, with the user’s edits, on later starts', () => {
    const root = path.join(dataDir, 'vault');
    resolveVaultRoot(undefined, dataDir);
    const edited = path.join(root, 'Biology', 'cells.canvas');
    writeFileSync(edited, '{"nodes":[],"edges":[]}');
    rmSync(path.join(root, 'README.md'));
    expect(resolveVaultRoot(undefined, dataDir)).toEqual({ root, copied: false });
    expect(readFileSync(edited, 'utf8')).toBe('{"nodes":[],"edges":[]}');
    expect(existsSync(path.join(root, 'README.md'))).toBe(false);
  });

  describe('when DATA_DIR cannot take the copy', () => {
    // the module object itself (an `import * as` namespace would be a copy): root cannot be refused for real
    const fs = jest.requireActual<typeof import('node:fs')>('node:fs');
    afterEach(() => jest.restoreAllMocks());

    it('refuses a file where DATA_DIR should be', () => {
      const file = path.join(dataDir, 'file');
      writeFileSync(file, 'x');
      expect(() => resolveVaultRoot(undefined, file)).toThrow(
        `DATA_DIR ${file} cannot be created: ${file} is a file, not a folder (EEXIST). Set DATA_DIR to a folder, ` +
          'or move the file away.',
      );
    });

    it('says DATA_DIR is not writable, and that VAULT_ROOT avoids the copy', () => {
      jest.spyOn(fs, 'cpSync').mockImplementation(() => {
        throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      });
      jest.spyOn(fs, 'accessSync').mockImplementation(() => {
        throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      });
      expect(() => resolveVaultRoot(undefined, dataDir)).toThrow(
        new RegExp(
          `^DATA_DIR ${dataDir} is not writable for .+ \\(EACCES\\): canvas-batch copies its example vault to ` +
            `${path.join(dataDir, 'vault')} on first start \\(set VAULT_ROOT to use your own vault\\)\\. Make the ` +
            'folder writable for that user, or set DATA_DIR to a folder that user can write\\.$',
        ),
      );
    });

    it('says what else went wrong, and what to do', () => {
      jest.spyOn(fs, 'cpSync').mockImplementation(() => {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      });
      expect(() => resolveVaultRoot(undefined, dataDir)).toThrow(
        `The example vault cannot be copied to ${path.join(dataDir, 'vault')} (ENOSPC: no space left on device): ` +
          'set VAULT_ROOT to your vault, or set DATA_DIR to a folder canvas-batch can write.',
      );
    });
  });

  it('keeps an existing, unrelated DATA_DIR/vault folder untouched', () => {
    const root = path.join(dataDir, 'vault');
    mkdirSync(root);
    writeFileSync(path.join(root, 'mine.canvas'), '{}');
    expect(resolveVaultRoot('', dataDir)).toEqual({ root, copied: false });
    expect(readdirSync(root)).toEqual(['mine.canvas']);
  });
});
