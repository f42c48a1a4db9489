import {
  mkdirSync,
  mkdtempSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { atomicWrite } from './atomic-write';

describe('atomicWrite', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'atomic-write-'));
    file = path.join(dir, 'target.canvas');
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a new file with the given content and leaves no temp file', async () => {
    await expect(atomicWrite(file, 'héllo 世界')).resolves.toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('héllo 世界');
    expect(readdirSync(dir)).toEqual(['target.canvas']);
  });

  it('replaces an existing file by rename (new inode, never a partial write)', async () => {
    writeFileSync(file, 'old content that is longer than the new one');
    const inodeBefore = statSync(file).ino;
    const renameSpy = jest.spyOn(fsp, 'rename');
    await expect(atomicWrite(file, 'new', { fsync: true })).resolves.toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(statSync(file).ino).not.toBe(inodeBefore);
    expect(renameSpy).toHaveBeenCalledTimes(1);
    const [from, to] = renameSpy.mock.calls[0];
    expect(to).toBe(file);
    expect(path.dirname(from as string)).toBe(dir);
    expect(path.basename(from as string)).toMatch(/^\.target\.canvas\.\d+\.[0-9a-f]{8}\.tmp$/);
    expect(readdirSync(dir)).toEqual(['target.canvas']);
  });

  it('calls beforeRename after the temp file is complete, and renames when it agrees', async () => {
    let tempSeen: string[] = [];
    const ok = await atomicWrite(file, 'data', {
      beforeRename: () => {
        tempSeen = readdirSync(dir).filter((f) => f.endsWith('.tmp'));
        expect(readFileSync(path.join(dir, tempSeen[0]), 'utf8')).toBe('data');
        return Promise.resolve(true);
      },
    });
    expect(ok).toBe(true);
    expect(tempSeen).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).toBe('data');
  });

  it('returns false, keeps the target and removes the temp file when beforeRename vetoes', async () => {
    writeFileSync(file, 'original');
    await expect(
      atomicWrite(file, 'replacement', { beforeRename: () => Promise.resolve(false) }),
    ).resolves.toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('original');
    expect(readdirSync(dir)).toEqual(['target.canvas']);
  });

  it('rethrows a beforeRename failure and removes the temp file', async () => {
    writeFileSync(file, 'original');
    await expect(
      atomicWrite(file, 'replacement', { beforeRename: () => Promise.reject(new Error('check failed')) }),
    ).rejects.toThrow('check failed');
    expect(readFileSync(file, 'utf8')).toBe('original');
    expect(readdirSync(dir)).toEqual(['target.canvas']);
  });

  it('rethrows a failed rename (target is a non-empty directory) and removes the temp file', async () => {
    mkdirSync(path.join(file, 'inside'), { recursive: true });
    await expect(atomicWrite(file, 'x')).rejects.toMatchObject({
      code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/),
    });
    expect(readdirSync(dir)).toEqual(['target.canvas']);
  });

  it.each([{ fsync: true }, { fsync: 'after-rename' as const }, { lastCheck: () => true }])(
    'rethrows a failed rename and removes the temp file on the flushing/vetoing path too (%o)',
    async (options) => {
      mkdirSync(path.join(file, 'inside'), { recursive: true });
      await expect(atomicWrite(file, 'x', options)).rejects.toMatchObject({
        code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/),
      });
      expect(readdirSync(dir)).toEqual(['target.canvas']);
    },
  );

  it('fails without creating anything when the folder does not exist', async () => {
    const missing = path.join(dir, 'missing', 'x.canvas');
    await expect(atomicWrite(missing, 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(readdirSync(dir)).toEqual([]);
  });
});
