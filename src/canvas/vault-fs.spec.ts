import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  constants,
  openSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DESCRIPTOR_PATHS, type VaultDir, VaultFs, VaultPathError } from './vault-fs';

const linuxOnly = DESCRIPTOR_PATHS ? it : it.skip;

describe.each([
  ['descriptor paths (Linux)', true],
  ['real paths (other systems)', false],
])('VaultFs with %s', (_label, descriptorPaths) => {
  let base: string;
  let root: string;
  let outside: string;
  let files: VaultFs;
  const open: VaultDir[] = [];
  const track = (d: VaultDir): VaultDir => (open.push(d), d);

  beforeEach(() => {
    base = realpathSync(mkdtempSync(path.join(tmpdir(), 'vault-fs-')));
    root = path.join(base, 'vault');
    outside = path.join(base, 'outside');
    mkdirSync(path.join(root, 'notes'), { recursive: true });
    mkdirSync(path.join(root, 'real'));
    mkdirSync(outside);
    writeFileSync(path.join(root, 'notes', 'a.md'), 'inside');
    writeFileSync(path.join(outside, 'secret.md'), 'SECRET');
    symlinkSync(outside, path.join(root, 'out-link'));
    symlinkSync(path.join(root, 'real'), path.join(root, 'in-link'));
    symlinkSync(path.join(outside, 'secret.md'), path.join(root, 'notes', 'escape.md'));
    files = new VaultFs(root, descriptorPaths && DESCRIPTOR_PATHS);
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(open.splice(0).map((d) => d.close()));
    rmSync(base, { recursive: true, force: true });
  });

  const refusal = async (p: Promise<unknown>): Promise<VaultPathError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VaultPathError);
    return err as VaultPathError;
  };

  describe('openDir', () => {
    it('opens a folder of the vault, following a link that stays inside, and addresses its entries', async () => {
      const dir = track(await files.openDir(path.join(root, 'in-link')));
      expect(dir.realPath).toBe(path.join(root, 'real'));
      writeFileSync(dir.entry('x.md'), 'x');
      expect(readFileSync(path.join(root, 'real', 'x.md'), 'utf8')).toBe('x');
    });

    it('refuses a folder that resolves outside the vault, and the parent of the root', async () => {
      const err = await refusal(files.openDir(path.join(root, 'out-link')));
      expect(err).toMatchObject({ kind: 'outside', message: 'resolves outside the vault' });
      await refusal(files.openDir(path.join(root, '..')));
    });

    it('throws ENOENT for a missing folder and ENOTDIR for a file', async () => {
      await expect(files.openDir(path.join(root, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(files.openDir(path.join(root, 'notes', 'a.md'))).rejects.toMatchObject({
        code: 'ENOTDIR',
      });
    });

    it('runs work inside an opened folder and closes it, also when the work fails', async () => {
      await expect(
        files.inDir(path.join(root, 'notes'), (d) => fsp.readdir(d.where).then((n) => n.sort())),
      ).resolves.toEqual(['a.md', 'escape.md']);
      await expect(
        files.inDir(path.join(root, 'notes'), () => Promise.reject(new Error('work failed'))),
      ).rejects.toThrow('work failed');
    });
  });

  describe('openFile and readFile', () => {
    it('reads a regular file of the vault', async () => {
      await expect(files.readFile(path.join(root, 'notes', 'a.md'))).resolves.toEqual(Buffer.from('inside'));
      await expect(files.readFile(path.join(root, 'notes', 'a.md'), 3)).resolves.toEqual(Buffer.from('ins'));
      const opened = await files.openFile(path.join(root, 'notes', 'a.md'));
      await opened.handle.close();
      expect(opened).toMatchObject({ realPath: path.join(root, 'notes', 'a.md') });
      expect(Number(opened.stat.size)).toBe(6);
    });

    it('refuses a link out of the vault without reading it', async () => {
      const err = await refusal(files.readFile(path.join(root, 'notes', 'escape.md')));
      expect(err.kind).toBe('outside');
      expect(err.message).not.toContain('SECRET');
    });

    it('refuses a directory', async () => {
      const err = await refusal(files.openFile(path.join(root, 'notes')));
      expect(err).toMatchObject({ kind: 'not-file', message: 'is a directory' });
    });

    (process.platform === 'win32' ? it.skip : it)(
      'refuses a FIFO at once instead of waiting for a writer',
      async () => {
        execFileSync('mkfifo', [path.join(root, 'notes', 'pipe.md')]);
        const err = await refusal(files.readFile(path.join(root, 'notes', 'pipe.md')));
        expect(err).toMatchObject({ kind: 'not-file', message: 'is not a regular file' });
      },
    );

    it('reads a file that grows while it is read up to its end, or up to the cap', async () => {
      const file = path.join(root, 'notes', 'growing.md');
      writeFileSync(file, 'start');
      const openFile = files.openFile.bind(files);
      jest.spyOn(files, 'openFile').mockImplementation(async (f) => {
        const opened = await openFile(f);
        appendFileSync(file, '+more'.repeat(30_000)); // after its size was taken
        return opened;
      });
      expect((await files.readFile(file)).length).toBe(5 + 5 * 30_000);
      expect((await files.readFile(file, 70_000)).length).toBe(70_000);
    });
  });

  describe('ensureDir', () => {
    it('opens an existing folder, or creates the missing levels inside the vault', async () => {
      expect(track(await files.ensureDir('notes')).realPath).toBe(path.join(root, 'notes'));
      const deep = track(await files.ensureDir('notes/x/y/z'));
      expect(deep.realPath).toBe(path.join(root, 'notes', 'x', 'y', 'z'));
      expect(existsSync(deep.realPath)).toBe(true);
      expect(track(await files.ensureDir('in-link/new')).realPath).toBe(path.join(root, 'real', 'new'));
    });

    it('refuses a way out through a link or "..", creating nothing outside', async () => {
      await refusal(files.ensureDir('out-link'));
      await refusal(files.ensureDir('out-link/new/deeper'));
      await refusal(files.ensureDir('../escaped'));
      expect(readdirSync(outside)).toEqual(['secret.md']);
      expect(existsSync(path.join(base, 'escaped'))).toBe(false);
    });

    it('refuses a level swapped for a link out of the vault while it is being created', async () => {
      const mkdir = fsp.mkdir.bind(fsp);
      jest.spyOn(fsp, 'mkdir').mockImplementation(async (p) => {
        symlinkSync(outside, p);
        return mkdir(p, { recursive: true });
      });
      await refusal(files.ensureDir('notes/raced/deeper'));
      expect(readdirSync(outside)).toEqual(['secret.md']);
    });

    it('passes on other failures to create a level (a file in the way)', async () => {
      writeFileSync(path.join(root, 'blocker'), 'a file');
      await expect(files.ensureDir('blocker/inner')).rejects.toMatchObject({ code: 'ENOTDIR' });
    });
  });
});

describe('VaultFs on Linux: checked when used, whatever is swapped in afterwards', () => {
  let base: string;
  let root: string;
  let outside: string;
  let files: VaultFs;

  beforeEach(() => {
    base = realpathSync(mkdtempSync(path.join(tmpdir(), 'vault-fs-')));
    root = path.join(base, 'vault');
    outside = path.join(base, 'outside');
    mkdirSync(path.join(root, 'results'), { recursive: true });
    mkdirSync(outside);
    files = new VaultFs(root);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(base, { recursive: true, force: true });
  });

  linuxOnly(
    'writes through an opened folder land in it even after its path is swapped for a link out',
    async () => {
      const dir = await files.openDir(path.join(root, 'results'));
      try {
        renameSync(path.join(root, 'results'), path.join(root, 'moved'));
        symlinkSync(outside, path.join(root, 'results'));
        writeFileSync(dir.entry('r.tmp'), 'result', { flag: 'wx' });
        renameSync(dir.entry('r.tmp'), dir.entry('r.md'));
      } finally {
        await dir.close();
      }
      expect(readdirSync(outside)).toEqual([]);
      expect(readFileSync(path.join(root, 'moved', 'r.md'), 'utf8')).toBe('result');
    },
  );

  linuxOnly(
    'reads a file replaced by a rename after its open (an editor saving) as the file it opened',
    async () => {
      writeFileSync(path.join(root, 'results', 'r.md'), 'old');
      const realOpen = fsp.open.bind(fsp);
      const spy = jest.spyOn(fsp, 'open').mockImplementation((async (p: string, flags: number) => {
        const handle = await realOpen(p, flags);
        writeFileSync(path.join(root, 'results', 'r.tmp'), 'new');
        renameSync(path.join(root, 'results', 'r.tmp'), p);
        return handle;
      }) as typeof fsp.open);
      await expect(files.readFile(path.join(root, 'results', 'r.md'))).resolves.toEqual(Buffer.from('old'));
      spy.mockRestore();
      // …but one that was outside the vault when it was removed is still refused
      writeFileSync(path.join(outside, 'x.md'), 'x');
      symlinkSync(path.join(outside, 'x.md'), path.join(root, 'results', 'link.md'));
      jest.spyOn(fsp, 'open').mockImplementation((async (p: string, flags: number) => {
        const handle = await realOpen(p, flags);
        rmSync(path.join(outside, 'x.md'));
        return handle;
      }) as typeof fsp.open);
      await expect(files.readFile(path.join(root, 'results', 'link.md'))).rejects.toMatchObject({
        kind: 'outside',
      });
    },
  );

  linuxOnly('treats a folder removed while it is being opened as gone (ENOENT)', async () => {
    // removed between its open and its check: opened through a descriptor kept on the removed folder
    const keep = openSync(path.join(root, 'results'), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      rmSync(path.join(root, 'results'), { recursive: true });
      await expect(files.openDir(`/proc/self/fd/${keep}`)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      closeSync(keep);
    }
  });

  it('without descriptor paths, refuses a file swapped between its open and its check', async () => {
    writeFileSync(path.join(root, 'results', 'a.md'), 'a');
    writeFileSync(path.join(root, 'results', 'b.md'), 'b');
    const fallback = new VaultFs(root, false);
    // the path now names another file than the one opened
    jest.spyOn(fsp, 'realpath').mockResolvedValue(path.join(root, 'results', 'b.md'));
    const err = await fallback.readFile(path.join(root, 'results', 'a.md')).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'outside' });
  });
});
