import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ServerPathRedactor, UNKNOWN_SERVER_PATH } from './server-paths';

describe('ServerPathRedactor', () => {
  const paths = new ServerPathRedactor({ vaultRoot: '/srv/data/vault', dataDir: '/srv/data/' });

  it.each([
    [
      "EACCES: permission denied, open '/srv/data/vault/Biology/cells-explanations/x y.md.tmp'",
      "EACCES: permission denied, open 'Biology/cells-explanations/x y.md.tmp'",
    ],
    ["EACCES: permission denied, mkdir '/srv/data/vault'", "EACCES: permission denied, mkdir '<vault>'"],
    [
      'disk full writing /srv/data/canvas-batch.sqlite-wal',
      'disk full writing <DATA_DIR>/canvas-batch.sqlite-wal',
    ],
    ['node n1 failed (/srv/data)', 'node n1 failed (<DATA_DIR>)'],
    ['C:\\vaults\\notes\\x.md is missing', `${UNKNOWN_SERVER_PATH} is missing`],
    ["rename '/tmp/a b.tmp' -> '/tmp/a b'", `rename '${UNKNOWN_SERVER_PATH}' -> '${UNKNOWN_SERVER_PATH}'`],
    ['file /etc/passwd is outside the vault', `file ${UNKNOWN_SERVER_PATH} is outside the vault`],
    // the tail of another path is not the vault
    ['/mnt/srv/data/vault/x.md', UNKNOWN_SERVER_PATH],
    // through an open folder's descriptor: the name is kept, the descriptor number is not
    [
      "EACCES: permission denied, open '/proc/self/fd/23/oral-explanation - Cells.md.1.tmp'",
      "EACCES: permission denied, open 'oral-explanation - Cells.md.1.tmp'",
    ],
    ['descriptor /proc/self/fd/23 was closed', 'descriptor <open folder> was closed'],
  ])('%s', (text, shown) => {
    expect(paths.redact(text)).toBe(shown);
  });

  it.each([
    'fetch failed: http://127.0.0.1:11434/v1/chat/completions',
    'and / or 1/2 km/h',
    'Biology/cells.canvas has 3 nodes',
    '',
  ])('leaves text without absolute paths as it is: %s', (text) => {
    expect(paths.redact(text)).toBe(text);
  });

  it('in "quoted" mode, replaces only absolute paths quoted like file-system errors (not a client\'s own input)', () => {
    expect(paths.redact("Cannot GET /etc/passwd; open '/etc/shadow x'", 'quoted')).toBe(
      `Cannot GET /etc/passwd; open '${UNKNOWN_SERVER_PATH}'`,
    );
    // the known roots everywhere
    expect(paths.redact('at /srv/data/vault/a.md', 'quoted')).toBe('at a.md');
  });

  it('recognises the real path of a root reached through a symlink', () => {
    const base = realpathSync(mkdtempSync(path.join(tmpdir(), 'server-paths-')));
    try {
      mkdirSync(path.join(base, 'real-vault'));
      symlinkSync(path.join(base, 'real-vault'), path.join(base, 'link'));
      const redactor = new ServerPathRedactor({ vaultRoot: path.join(base, 'link') });
      expect(redactor.redact(`open '${base}/real-vault/a.md' or '${base}/link/b.md'`)).toBe(
        "open 'a.md' or 'b.md'",
      );
      // a root that does not exist is matched as it is spelled
      expect(new ServerPathRedactor({ dataDir: '/no/such/dir' }).redact('/no/such/dir/x')).toBe(
        '<DATA_DIR>/x',
      );
      expect(new ServerPathRedactor({}).redact('/no/such/dir/x')).toBe(UNKNOWN_SERVER_PATH);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
