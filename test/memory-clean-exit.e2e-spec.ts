import { withoutRedis } from './support/redis';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUNDLED_VAULT } from '../src/config/example-vault';
import { writeGridCanvas } from './support/canvas-fixtures';
import { freePort } from './support/service-process';

const REPO = path.join(__dirname, '..');

/** A TCP server that accepts connections and never answers: a Neo4j that hangs. */
async function blackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Runs the child to its natural end (bounded: 90 s, then SIGKILL and a failure). */
function runChild(
  env: Record<string, string>,
): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve) => {
    const out: string[] = [];
    const child = spawn(
      process.execPath,
      ['-r', '@swc-node/register', 'test/support/close-with-pending.ts'],
      {
        cwd: REPO,
        env: { ...withoutRedis(process.env), LOG_PRETTY: 'false', LOG_LEVEL: 'warn', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout.on('data', (c: Buffer) => out.push(c.toString()));
    child.stderr.on('data', (c: Buffer) => out.push(c.toString()));
    const timer = setTimeout(() => {
      out.push('\n[test] still alive 90 s after start: killed\n');
      child.kill('SIGKILL');
    }, 90_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out: out.join('') });
    });
  });
}

describe('the process exits by itself after app.close() with memory events still pending', () => {
  let root: string;
  let hole: { port: number; close(): Promise<void> };
  let ids: string[][];
  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-clean-exit-'));
    cpSync(BUNDLED_VAULT, path.join(root, 'vault'), { recursive: true });
    ids = writeGridCanvas(path.join(root, 'vault'), 'Test/exit.canvas', 1, 20);
    hole = await blackHole();
  });
  afterAll(async () => {
    await hole.close();
    rmSync(root, { recursive: true, force: true });
  });

  it.each([
    ['Neo4j refuses connections (the loop is backing off)', 'refused'],
    ['Neo4j accepts and never answers (an attempt hangs)', 'hangs'],
  ])(
    '%s',
    async (_name, mode) => {
      const dataDir = path.join(root, `data-${mode}`);
      const port = mode === 'refused' ? await freePort() : hole.port;
      const { code, signal, out } = await runChild({
        VAULT_ROOT: path.join(root, 'vault'),
        DATA_DIR: dataDir,
        NEO4J_URI: `bolt://127.0.0.1:${port}`,
        NEO4J_PASSWORD: 'never-used-for-real',
        MEMORY_ATTEMPT_TIMEOUT_MS: '1000',
        MEMORY_SHUTDOWN_MS: '1000',
        BATCH_REQUEST: JSON.stringify({
          canvas_path: 'Test/exit.canvas',
          groups: [{ group_id: 'g', agent_type: 'memory-anchor', node_ids: ids[0] }],
        }),
      });
      expect(out).not.toMatch(/UNHANDLED|FAILED|still alive/);
      expect(out).toContain('CLOSED');
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      const status = JSON.parse(/STATUS (.*)/.exec(out)![1]) as { pending: number; failed_attempts: number };
      expect(status.pending).toBe(21);
      expect(status.failed_attempts).toBeGreaterThanOrEqual(1);
      expect(out).toMatch(/21 memory events stay in the outbox; they are delivered after the next start/);
      expect(out).not.toContain('never-used-for-real');

      const db = new Database(path.join(dataDir, 'canvas-batch.sqlite'), { readonly: true });
      try {
        expect(
          db.prepare('SELECT count(*) AS n, sum(delivered_at IS NULL) AS pending FROM memory_outbox').get(),
        ).toEqual({
          n: 21,
          pending: 21,
        });
      } finally {
        db.close();
      }
    },
    120_000,
  );
});
