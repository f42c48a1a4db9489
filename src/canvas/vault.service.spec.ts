import { Logger } from '@nestjs/common';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  promises as fsp,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import { CanvasNotFoundError, CanvasPathOutsideVaultError } from './canvas.errors';
import type { VaultDir } from './vault-fs';
import { VaultService } from './vault.service';

describe('VaultService', () => {
  let base: string;
  let vaultRoot: string;
  let outside: string;
  let vault: VaultService;

  beforeEach(() => {
    base = realpathSync(mkdtempSync(path.join(tmpdir(), 'vault-service-')));
    vaultRoot = path.join(base, 'vault');
    outside = path.join(base, 'outside');
    mkdirSync(path.join(vaultRoot, 'Biology', 'notes'), { recursive: true });
    mkdirSync(path.join(vaultRoot, 'Real folder'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(path.join(vaultRoot, 'Biology', 'cells.canvas'), '{}');
    writeFileSync(path.join(vaultRoot, 'Real folder', 'inner.canvas'), '{}');
    writeFileSync(path.join(vaultRoot, 'root.canvas'), '{}');
    writeFileSync(path.join(outside, 'secret.canvas'), '{}');
    // Symlinks: a canvas leaving the vault, a folder leaving it, and a folder staying inside.
    symlinkSync(path.join(outside, 'secret.canvas'), path.join(vaultRoot, 'escape.canvas'));
    symlinkSync(outside, path.join(vaultRoot, 'outside-link'));
    symlinkSync(path.join(vaultRoot, 'Real folder'), path.join(vaultRoot, 'inside-link'));
    vault = new VaultService(resolveOptions({ vaultRoot, dataDir: path.join(base, 'data') }));
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(base, { recursive: true, force: true });
  });

  const refusal = async (canvasPath: string): Promise<CanvasPathOutsideVaultError> => {
    const err: unknown = await vault.resolveCanvas(canvasPath).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CanvasPathOutsideVaultError);
    return err as CanvasPathOutsideVaultError;
  };

  describe('construction', () => {
    it('resolves the vault root to its real path', () => {
      const link = path.join(base, 'vault-link');
      symlinkSync(vaultRoot, link);
      const viaLink = new VaultService(resolveOptions({ vaultRoot: link, dataDir: base }));
      expect(viaLink.root).toBe(vaultRoot);
    });

    it('refuses a vault root that does not exist, naming it', () => {
      const missing = path.join(base, 'nope');
      expect(() => new VaultService(resolveOptions({ vaultRoot: missing, dataDir: base }))).toThrow(
        `VAULT_ROOT ${missing} does not exist or cannot be read`,
      );
    });

    it('logs the vault root on module init', () => {
      const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
      vault.onModuleInit();
      expect(log).toHaveBeenCalledWith(`vault ${vaultRoot}`);
    });
  });

  describe('resolveCanvas', () => {
    it('resolves a plain relative path', async () => {
      await expect(vault.resolveCanvas('Biology/cells.canvas')).resolves.toEqual({
        relPath: 'Biology/cells.canvas',
        absPath: path.join(vaultRoot, 'Biology', 'cells.canvas'),
      });
    });

    it('normalizes "." segments, doubled and trailing slashes', async () => {
      await expect(vault.resolveCanvas('./Biology//./cells.canvas')).resolves.toMatchObject({
        relPath: 'Biology/cells.canvas',
      });
    });

    it('accepts backslash separators and returns a "/" path', async () => {
      await expect(vault.resolveCanvas('Biology\\cells.canvas')).resolves.toEqual({
        relPath: 'Biology/cells.canvas',
        absPath: path.join(vaultRoot, 'Biology', 'cells.canvas'),
      });
    });

    it.each([
      ['../outside/secret.canvas'],
      ['Biology/../../outside/secret.canvas'],
      ['Biology/../root.canvas'],
      ['..\\outside\\secret.canvas'],
      ['..'],
    ])('refuses ".." segments: %s', async (p) => {
      const err = await refusal(p);
      expect(err.errors).toEqual([{ field: 'canvas_path', message: '".." segments are not allowed' }]);
      expect(err.message).toContain(`canvas_path "${p}" is refused`);
    });

    it.each([
      ['/etc/passwd'],
      ['/tmp/vault/root.canvas'],
      ['\\\\server\\share\\x.canvas'],
      ['\\root.canvas'],
    ])('refuses absolute paths: %s', async (p) => {
      expect((await refusal(p)).errors?.[0].message).toBe('it must be relative to the vault');
    });

    it.each([['C:\\vault\\x.canvas'], ['c:/x.canvas'], ['D:x.canvas']])(
      'refuses Windows drive paths: %s',
      async (p) => {
        expect((await refusal(p)).errors?.[0].message).toBe('it must be relative to the vault');
      },
    );

    it.each([['%2e%2e/outside/secret.canvas'], ['Biology%2Fcells.canvas'], ['%2E%2E%2Fx']])(
      'refuses percent-encoded paths: %s',
      async (p) => {
        expect((await refusal(p)).errors?.[0].message).toBe(
          'percent-encoded characters are not allowed; send the path decoded',
        );
      },
    );

    it('accepts a literal percent sign that is not an escape', async () => {
      writeFileSync(path.join(vaultRoot, '100% sure.canvas'), '{}');
      await expect(vault.resolveCanvas('100% sure.canvas')).resolves.toMatchObject({
        relPath: '100% sure.canvas',
      });
    });

    it('refuses a NUL character', async () => {
      expect((await refusal('Biology/cells.canvas\0.png')).errors?.[0].message).toBe(
        'it contains a NUL character',
      );
    });

    it.each([[''], ['.'], ['./'], ['././/.']])('refuses an empty path: %j', async (p) => {
      expect((await refusal(p)).errors?.[0].message).toBe('it is empty');
    });

    it('refuses a symlinked canvas whose target is outside the vault', async () => {
      expect((await refusal('escape.canvas')).errors?.[0].message).toBe('it resolves outside the vault');
    });

    it('refuses a canvas under a symlinked folder that leaves the vault', async () => {
      expect((await refusal('outside-link/secret.canvas')).errors?.[0].message).toBe(
        'it resolves outside the vault',
      );
    });

    it('refuses (rather than reports missing) a missing file under a folder that leaves the vault', async () => {
      expect((await refusal('outside-link/deeper/missing.canvas')).errors?.[0].message).toBe(
        'it resolves outside the vault',
      );
    });

    it('allows a canvas under a symlinked folder whose target is inside the vault, returning the real path', async () => {
      await expect(vault.resolveCanvas('inside-link/inner.canvas')).resolves.toEqual({
        relPath: 'inside-link/inner.canvas',
        absPath: path.join(vaultRoot, 'Real folder', 'inner.canvas'),
      });
    });

    it('accepts names that merely start with two dots', async () => {
      writeFileSync(path.join(vaultRoot, '..notes.canvas'), '{}');
      mkdirSync(path.join(vaultRoot, '..drafts'));
      writeFileSync(path.join(vaultRoot, '..drafts', 'a.canvas'), '{}');
      await expect(vault.resolveCanvas('..notes.canvas')).resolves.toMatchObject({
        relPath: '..notes.canvas',
      });
      await expect(vault.resolveCanvas('..drafts/a.canvas')).resolves.toMatchObject({
        relPath: '..drafts/a.canvas',
      });
    });

    it('fails closed when no ancestor of the path can be resolved at all', async () => {
      jest.spyOn(fsp, 'realpath').mockRejectedValue(Object.assign(new Error('EACCES'), { code: 'EACCES' }));
      expect((await refusal('Biology/cells.canvas')).errors?.[0].message).toBe(
        'it resolves outside the vault',
      );
    });

    it('reports a missing file as not found, with the normalized path', async () => {
      const err: unknown = await vault.resolveCanvas('./Biology/missing.canvas').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CanvasNotFoundError);
      expect((err as Error).message).toBe('No canvas file at "Biology/missing.canvas" in the vault');
    });

    it('reports a missing file in a missing folder as not found', async () => {
      await expect(vault.resolveCanvas('No/Such/Folder/x.canvas')).rejects.toBeInstanceOf(
        CanvasNotFoundError,
      );
    });

    it('reports a directory as not found', async () => {
      await expect(vault.resolveCanvas('Biology')).rejects.toBeInstanceOf(CanvasNotFoundError);
      await expect(vault.resolveCanvas('inside-link')).rejects.toBeInstanceOf(CanvasNotFoundError);
    });

    it('reports a dangling symlink inside the vault as not found', async () => {
      symlinkSync(path.join(vaultRoot, 'gone.canvas'), path.join(vaultRoot, 'dangling.canvas'));
      await expect(vault.resolveCanvas('dangling.canvas')).rejects.toBeInstanceOf(CanvasNotFoundError);
    });
  });

  describe('pathOf', () => {
    it('gives the absolute path to open a vault-relative path by, normalized', () => {
      expect(vault.pathOf('Biology//notes/./cell.md')).toEqual({
        absPath: path.join(vaultRoot, 'Biology', 'notes', 'cell.md'),
      });
    });

    it.each([
      ['../outside/secret.canvas', '".." segments are not allowed'],
      ['/etc/passwd', 'it must be relative to the vault'],
      ['%2e%2e/x', 'percent-encoded characters are not allowed; send the path decoded'],
      ['a\0b', 'it contains a NUL character'],
      ['', 'it is empty'],
    ])('gives a reason instead of a path for %j', (p, reason) => {
      expect(vault.pathOf(p)).toEqual({ reason });
    });
  });

  describe('ensureFolder', () => {
    const opened: VaultDir[] = [];
    const ensure = async (rel: string): Promise<VaultDir> => {
      const dir = await vault.ensureFolder(rel);
      opened.push(dir);
      return dir;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((d) => d.close()));
    });

    it('creates nested folders inside the vault and opens the deepest, with its real path', async () => {
      const dir = await ensure('Biology/cells-explanations/deeper');
      expect(dir.realPath).toBe(path.join(vaultRoot, 'Biology', 'cells-explanations', 'deeper'));
      expect(existsSync(dir.realPath)).toBe(true);
      writeFileSync(dir.entry('x.md'), 'x');
      expect(readFileSync(path.join(dir.realPath, 'x.md'), 'utf8')).toBe('x');
    });

    it('opens an existing folder as it is, following an inside symlink', async () => {
      expect((await ensure('Biology')).realPath).toBe(path.join(vaultRoot, 'Biology'));
      expect((await ensure('inside-link')).realPath).toBe(path.join(vaultRoot, 'Real folder'));
    });

    it('refuses a symlinked folder that leaves the vault', async () => {
      await expect(ensure('outside-link')).rejects.toThrow('resolves outside the vault');
    });

    it('refuses a folder under a symlink that leaves the vault without creating anything outside', async () => {
      await expect(ensure('outside-link/new-folder')).rejects.toThrow('resolves outside the vault');
      expect(existsSync(path.join(outside, 'new-folder'))).toBe(false);
    });

    it('still refuses when the folder is swapped for an outside symlink while it is being created', async () => {
      const realMkdir = fsp.mkdir.bind(fsp);
      jest.spyOn(fsp, 'mkdir').mockImplementation(async (p) => {
        symlinkSync(outside, p);
        return realMkdir(p, { recursive: true });
      });
      await expect(ensure('Biology/raced')).rejects.toThrow('resolves outside the vault');
    });

    it('opens the folder again on every call: one swapped for an outside link is refused, one removed is recreated', async () => {
      const created = (await ensure('Biology/results')).realPath;
      expect((await ensure('Biology/results')).realPath).toBe(created);
      rmSync(created, { recursive: true });
      expect((await ensure('Biology/results')).realPath).toBe(created);
      expect(existsSync(created)).toBe(true);
      rmSync(created, { recursive: true });
      symlinkSync(outside, created);
      await expect(ensure('Biology/results')).rejects.toThrow('resolves outside the vault');
    });

    it('lets concurrent calls for a new folder all succeed on the same folder', async () => {
      const dirs = await Promise.all(Array.from({ length: 20 }, () => ensure('Biology/many/deep')));
      expect(new Set(dirs.map((d) => d.realPath))).toEqual(
        new Set([path.join(vaultRoot, 'Biology', 'many', 'deep')]),
      );
    });

    it('refuses a ".." folder without creating anything outside', async () => {
      await expect(ensure('../created-outside')).rejects.toThrow('resolves outside the vault');
      expect(existsSync(path.join(base, 'created-outside'))).toBe(false);
    });
  });

  describe('relative and contains', () => {
    it('gives the vault-relative "/" path of an absolute path', () => {
      expect(vault.relative(path.join(vaultRoot, 'Biology', 'notes', 'x.md'))).toBe('Biology/notes/x.md');
      expect(vault.relative(vaultRoot)).toBe('');
    });

    it('contains the root and what is below it, nothing else', () => {
      expect(vault.contains(vaultRoot)).toBe(true);
      expect(vault.contains(path.join(vaultRoot, 'a', 'b'))).toBe(true);
      expect(vault.contains(path.join(vaultRoot, '..foo'))).toBe(true);
      expect(vault.contains(base)).toBe(false);
      expect(vault.contains(outside)).toBe(false);
      expect(vault.contains(`${vaultRoot}-sibling`)).toBe(false);
      expect(vault.contains('/')).toBe(false);
    });
  });
});
