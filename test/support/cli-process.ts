import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as path from 'node:path';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'canvas-batch.js');

export interface CliRun {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stderr (or stdout) matches. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<void>;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/**
 * Spawns the real `canvas-batch` binary (bin/canvas-batch.js). By default it runs the TypeScript source, so the test
 * checks this checkout's code; `built: true` runs `dist/` as an installed package would.
 */
export function spawnCli(
  args: string[],
  env: Record<string, string> = {},
  options: { built?: boolean; cwd?: string } = {},
): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(options.built ? {} : { CANVAS_BATCH_FROM_SOURCE: '1' }),
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let out = '';
  let err = '';
  const waiters: { pattern: RegExp; stream: 'stdout' | 'stderr'; resolve: () => void }[] = [];
  const check = (): void => {
    for (const w of [...waiters]) {
      if (w.pattern.test(w.stream === 'stdout' ? out : err)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    check();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
    check();
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout: out, stderr: err })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (pattern, stream = 'stderr') =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ pattern, stream, resolve });
        check();
        void exited.then(({ code }) =>
          reject(new Error(`CLI exited (${code}) before ${pattern}:\n${out}\n${err}`)),
        );
      }),
  };
}

/** Runs the binary to the end with stdin closed. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  options: { built?: boolean; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = spawnCli(args, env, options);
  run.child.stdin.end();
  return run.exited;
}
