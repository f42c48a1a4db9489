import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '..', '..');

/**
 * The test process's environment without the service settings a suite must choose itself: a child service only
 * talks to the Neo4j of NEO4J_URI (which .ci/run exports for the memory suites) or the Redis of REDIS_URL when its
 * suite passes it explicitly, so crash tests never write into, or SIGKILL a service in the middle of creating,
 * another suite's graph, and a suite of the embedded engine stays embedded when .ci/run exports REDIS_URL.
 */
function baseEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NEO4J_|MEMORY_|REDIS_)/.test(k)));
}

/** Node's arguments that run the service from its TypeScript source (no build needed). */
export const SOURCE_ENTRY = ['-r', '@swc-node/register', 'src/main.ts'];

/** The real service (`src/main.ts`) as a child process, on a fixed port so clients can reconnect across restarts. */
export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Who the child process runs as: another user than the test's (needs root), e.g. for permission errors. */
export interface ChildUser {
  uid?: number;
  gid?: number;
}

/**
 * Spawns the service and resolves once it logs that it listens (or rejects with its output if it exits first).
 * `entry`: Node's arguments, from the checkout (default: the TypeScript source; `['dist/main.js']` for the build).
 */
export function startService(
  env: Record<string, string>,
  user: ChildUser = {},
  entry: string[] = SOURCE_ENTRY,
): Promise<ServiceProcess> {
  const output: string[] = [];
  const child = spawn(process.execPath, entry, {
    cwd: repo,
    // the result cache off unless a suite turns it on (as in harness.ts: repeats of a node must run)
    env: { ...baseEnv(), LOG_PRETTY: 'false', LOG_LEVEL: 'info', RESULT_CACHE: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...user,
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output.push(chunk.toString());
      const m = /listening on (http:\/\/[^\s"]+)/.exec(output.join(''));
      if (m) {
        child.stdout.off('data', onData);
        child.stdout.on('data', (c: Buffer) => output.push(c.toString()));
        resolve({
          child,
          url: m[1],
          output,
          exited,
          kill: (signal = 'SIGKILL') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c: Buffer) => output.push(c.toString()));
    void exited.then(({ code, signal }) =>
      reject(new Error(`service exited (${code ?? signal}) before listening:\n${output.join('')}`)),
    );
  });
}

/**
 * Runs the service to completion of its start-up only, for start-up failures: resolves with exit code and output
 * (both streams, and each apart). With `timeoutMs`, a service that starts instead of failing is killed then
 * (`timedOut`), so a test of a refusal fails instead of hanging.
 */
export async function runToExit(
  env: Record<string, string>,
  options: ChildUser & { timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string; stdout: string; stderr: string; timedOut: boolean }> {
  const { timeoutMs, ...user } = options;
  const output: string[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
    cwd: repo,
    env: { ...baseEnv(), LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...user,
  });
  const collect = (into: string[]) => (c: Buffer) => {
    output.push(c.toString());
    into.push(c.toString());
  };
  child.stdout.on('data', collect(stdout));
  child.stderr.on('data', collect(stderr));
  let timedOut = false;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, output: output.join(''), stdout: stdout.join(''), stderr: stderr.join(''), timedOut };
}

/**
 * Whether a user can run the service from this checkout (reads its source): tests that run the service as `nobody`
 * when they run as root need a checkout others can traverse (not one under a private home folder).
 */
export function checkoutReadableBy(uid: number): boolean {
  const main = JSON.stringify(path.join(repo, 'src', 'main.ts'));
  return (
    spawnSync(process.execPath, ['-e', `require('node:fs').accessSync(${main})`], { uid, gid: uid })
      .status === 0
  );
}
