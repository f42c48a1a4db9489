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

  it('keeps an existing, unrelated DATA_DIR/vault folder untouched', () => {
    const root = path.join(dataDir, 'vault');
    mkdirSync(root);
    writeFileSync(path.join(root, 'mine.canvas'), '{}');
    expect(resolveVaultRoot('', dataDir)).toEqual({ root, copied: false });
    expect(readdirSync(root)).toEqual(['mine.canvas']);
  });
});
