import { Logger } from '@nestjs/common';
import Database from 'better-sqlite3';
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUNDLED_VAULT } from '../src/config/example-vault';
import { resolveOptions } from '../src/config/canvas-batch-options';
import { DATABASE_FILE, SqliteDatabase } from '../src/database/sqlite-database';
import { writeGridCanvas } from './support/canvas-fixtures';
import { http, waitTerminal } from './support/harness';
import { checkoutReadableBy, type ChildUser, runToExit, startService } from './support/service-process';

type Json = Record<string, any>;

/**
 * Start-up refusals of the real service process (`src/main.ts`): each is one clean log line — pino's JSON with
 * `LOG_PRETTY=false`, no stack trace, no colour — saying what is wrong and what to do, then exit 1.
 *
 * Permission cases need a process that the permissions apply to: as root (CI) the service runs as `nobody` (uid
 * 65534) over root-owned read-only folders; as another user, as that user over folders it made read-only.
 */
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const child: ChildUser = asRoot ? { uid: NOBODY, gid: NOBODY } : {};
/** As root, `nobody` must be able to read this checkout, or the permission cases cannot run (and say so). */
const nobodyCannotRead = asRoot && !checkoutReadableBy(NOBODY);

/** The one line the failed start-up logged, parsed; fails unless the whole output is exactly that line. */
function oneFatalLine(run: { stdout: string; stderr: string; output: string }): Json {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(run.output).not.toContain('\u001b['); // no colour
  expect(run.output).not.toMatch(/\n\s+at /); // no stack trace
  const line = JSON.parse(lines[0]) as Json;
  expect(line).toMatchObject({ level: 60, context: 'Bootstrap' });
  expect(line.msg).toMatch(/^canvas-batch failed to start: /);
  return line;
}

describe('start-up refusals (real service process)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-startup-'));
  const vault = path.join(root, 'vault');
  beforeAll(() => {
    chmodSync(root, 0o755); // `nobody` must reach the vault
    cpSync(BUNDLED_VAULT, vault, { recursive: true });
  });
  afterAll(() => {
    // read-only folders of a non-root run must be writable again to be removed
    for (const dir of readdirSync(root)) chmodSync(path.join(root, dir), 0o755);
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses a real database corrupted in a middle page, leaves it byte for byte as it was', async () => {
    const dataDir = path.join(root, 'corrupt');
    const file = path.join(dataDir, DATABASE_FILE);
    const ids = writeGridCanvas(vault, 'Test/corrupt.canvas', 4, 50);
    // a real populated database: a 200-node batch run by the service
    const service = await startService({ PORT: '0', VAULT_ROOT: vault, DATA_DIR: dataDir });
    try {
      const res = await http<Json>('POST', `${service.url}/parallel/execute`, {
        canvas_path: 'Test/corrupt.canvas',
        groups: ids.map((nodeIds, i) => ({
          group_id: i + 1,
          agent_type: 'oral-explanation',
          node_ids: nodeIds,
        })),
      });
      expect(res.status).toBe(202);
      expect((await waitTerminal(service, res.body.task_id as string, 60_000)).status).toBe('completed');
    } finally {
      expect((await service.kill('SIGTERM')).code).toBe(0);
    }
    // the middle leaf page of the node results, overwritten with garbage (what a torn write or a bad disk leaves)
    const db = new Database(file);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const leaves = (
      db
        .prepare(
          "SELECT pageno FROM dbstat WHERE name = 'node_results' AND pagetype = 'leaf' ORDER BY pageno",
        )
        .all() as { pageno: number }[]
    ).map((r) => r.pageno);
    db.close();
    expect(leaves.length).toBeGreaterThan(2);
    const page = leaves[Math.floor(leaves.length / 2)];
    const bytes = readFileSync(file);
    expect(page).toBeLessThan(bytes.length / pageSize); // a middle page, not the header
    for (let i = 0; i < pageSize; i++) bytes[(page - 1) * pageSize + i] = (i * 131 + 7) % 251;
    writeFileSync(file, bytes);
    const filesBefore = readdirSync(dataDir).sort();

    const run = await runToExit({ PORT: '0', VAULT_ROOT: vault, DATA_DIR: dataDir }, { timeoutMs: 20_000 });
    expect(run.timedOut).toBe(false); // it did not start and serve wrong counts
    expect(run.code).toBe(1);
    expect(oneFatalLine(run).msg).toMatch(
      new RegExp(
        `^canvas-batch failed to start: Cannot open the database ${escape(file)}: the integrity check ` +
          '\\(PRAGMA quick_check\\) found it damaged: .+\\. The file was left untouched; move it away or point ' +
          'DATA_DIR elsewhere to start with an empty database\\.$',
      ),
    );
    expect(readFileSync(file).equals(bytes)).toBe(true);
    expect(readdirSync(dataDir).sort()).toEqual(filesBefore);
  }, 120_000);

  it('a bad configuration: one JSON line with every problem (and one human-readable line with LOG_PRETTY)', async () => {
    const env = { PORT: 'eighty', GLOBAL_MAX_CONCURRENT: '0', DATA_DIR: path.join(root, 'unused') };
    const json = await runToExit(env, { timeoutMs: 20_000 });
    expect(json.code).toBe(1);
    expect(oneFatalLine(json).msg).toBe(
      'canvas-batch failed to start: Invalid configuration: PORT must be an integer between 0 and 65535 (got "eighty"); ' +
        'GLOBAL_MAX_CONCURRENT must be an integer between 1 and 1000 (got "0")',
    );
    const pretty = await runToExit({ ...env, LOG_PRETTY: 'true' }, { timeoutMs: 20_000 });
    expect(pretty.code).toBe(1);
    expect(pretty.stdout).toBe('');
    expect(pretty.stderr.trim().split('\n')).toHaveLength(1);
    // the service's human-readable line: time, level, message (no pid, no JSON object, no stack trace)
    expect(pretty.stderr).toMatch(
      /^\[[\d:.]+\] FATAL: canvas-batch failed to start: Invalid configuration: PORT must be [^{]*\n$/,
    );
    expect(pretty.stderr).not.toMatch(/^\s+at /m);
  }, 60_000);

  it("a port in use: one line naming PORT and HOST, not Nest's error line and a stack trace", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const run = await runToExit(
        { PORT: String(port), VAULT_ROOT: vault, DATA_DIR: path.join(root, 'port-in-use') },
        { timeoutMs: 20_000 },
      );
      expect(run.code).toBe(1);
      expect(oneFatalLine(run).msg).toBe(
        `canvas-batch failed to start: PORT ${port} on HOST 127.0.0.1 is already in use (EADDRINUSE): stop the ` +
          'process that listens there, or set PORT to a free port (0 picks one)',
      );
    } finally {
      taken.close();
    }
  }, 60_000);

  if (nobodyCannotRead)
    process.stderr.write(
      '[skip] start-up permission cases: running as root in a checkout user nobody cannot read (clone it under a folder others can traverse)\n',
    );
  (nobodyCannotRead ? describe.skip : describe)(
    `permissions (the service runs as ${asRoot ? 'nobody, uid 65534' : 'this user'})`,
    () => {
      const user = asRoot ? 'user nobody \\(uid 65534\\)' : `user \\S+ \\(uid ${process.getuid?.() ?? ''}\\)`;

      it('a DATA_DIR whose parent is read-only: says which folder, not a raw EACCES mkdir stack trace', async () => {
        const parent = path.join(root, 'ro-parent');
        mkdirSync(parent);
        chmodSync(parent, 0o555);
        const dataDir = path.join(parent, 'data');
        for (const env of [{ VAULT_ROOT: vault }, { VAULT_ROOT: '' }]) {
          const run = await runToExit(
            { PORT: '0', DATA_DIR: dataDir, ...env },
            { ...child, timeoutMs: 20_000 },
          );
          expect(run.code).toBe(1);
          expect(oneFatalLine(run).msg).toMatch(
            new RegExp(
              `^canvas-batch failed to start: DATA_DIR ${escape(dataDir)} does not exist and cannot be created: ` +
                `${escape(parent)} is not writable for ${user} \\(EACCES\\)\\. Create DATA_DIR for that user, or set ` +
                'DATA_DIR to a folder that user can write\\.$',
            ),
          );
        }
      }, 60_000);

      it('an empty read-only DATA_DIR: "not writable", not "left untouched; move it away"', async () => {
        const dataDir = path.join(root, 'ro-empty');
        mkdirSync(dataDir);
        chmodSync(dataDir, 0o555);
        const withVault = await runToExit(
          { PORT: '0', DATA_DIR: dataDir, VAULT_ROOT: vault },
          { ...child, timeoutMs: 20_000 },
        );
        expect(withVault.code).toBe(1);
        const msg = oneFatalLine(withVault).msg as string;
        expect(msg).toMatch(
          new RegExp(
            `^canvas-batch failed to start: DATA_DIR ${escape(dataDir)} is not writable for ${user} \\(EACCES\\): ` +
              'canvas-batch keeps its database there\\. Make the folder writable for that user, or set DATA_DIR to a ' +
              'folder that user can write\\.$',
          ),
        );
        expect(msg).not.toMatch(/untouched|move it away/);
        // without VAULT_ROOT the example vault is copied there first: the same refusal, saying so
        const bundled = await runToExit(
          { PORT: '0', DATA_DIR: dataDir, VAULT_ROOT: '' },
          { ...child, timeoutMs: 20_000 },
        );
        expect(bundled.code).toBe(1);
        expect(oneFatalLine(bundled).msg).toMatch(
          new RegExp(
            `DATA_DIR ${escape(dataDir)} is not writable for ${user} \\(EACCES\\): canvas-batch copies its example ` +
              `vault to ${escape(path.join(dataDir, 'vault'))} on first start \\(set VAULT_ROOT to use your own vault\\)`,
          ),
        );
        expect(readdirSync(dataDir)).toEqual([]);
      }, 60_000);

      it('a read-only database: says so and what to do, not "disk I/O error"; the file is untouched', async () => {
        const dataDir = path.join(root, 'ro-database');
        const file = path.join(dataDir, DATABASE_FILE);
        jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
        new SqliteDatabase(resolveOptions({ vaultRoot: vault, dataDir })).onApplicationShutdown();
        jest.restoreAllMocks();
        // the folder stays writable for the service, the file is not
        if (asRoot) chownSync(dataDir, NOBODY, NOBODY);
        chmodSync(file, 0o444);
        const bytes = readFileSync(file);
        const run = await runToExit(
          { PORT: '0', DATA_DIR: dataDir, VAULT_ROOT: vault },
          { ...child, timeoutMs: 20_000 },
        );
        expect(run.code).toBe(1);
        const msg = oneFatalLine(run).msg as string;
        expect(msg).toMatch(
          new RegExp(
            `^canvas-batch failed to start: Cannot open the database ${escape(file)}: it is read-only for ${user} ` +
              '\\(EACCES\\)\\. canvas-batch writes to its database: make it writable for that user, or run ' +
              'canvas-batch as the user that owns the file\\. The file was left untouched\\.$',
          ),
        );
        expect(msg).not.toContain('disk I/O error');
        expect(readFileSync(file).equals(bytes)).toBe(true);
        expect(readdirSync(dataDir)).toEqual([DATABASE_FILE]);
        expect(statSync(file).mode & 0o777).toBe(0o444);
      }, 60_000);
    },
  );
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
