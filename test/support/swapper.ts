import { type ChildProcessByStdio, spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Readable } from 'node:stream';

/** A running `path-swapper.ts`: `start()` begins the swapping, `stop()` ends it and gives the number of swaps. */
export interface Swapper {
  start(): void;
  stop(): Promise<number>;
}

/**
 * Spawns `test/support/path-swapper.ts` on `target` (a path in the vault), swapping in a symlink to `outside`, or
 * with `{ with: file }` that file (e.g. a FIFO). Resolves once it is loaded; it swaps from `start()` on.
 */
export function startSwapper(target: string, swapIn: string | { with: string }): Promise<Swapper> {
  const args = typeof swapIn === 'string' ? [swapIn] : ['--with', swapIn.with];
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(
    process.execPath,
    ['-r', '@swc-node/register', 'test/support/path-swapper.ts', target, ...args],
    { cwd: path.join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`swapper exited early (${code}): ${out}`)));
    const ready = setInterval(() => {
      if (!out.includes('READY')) return;
      clearInterval(ready);
      resolve({
        start: () => child.kill('SIGUSR1'),
        stop: () =>
          new Promise((done, fail) => {
            const finish = (): void => {
              const m = /\{"swaps":\d+\}/.exec(out);
              if (m) done((JSON.parse(m[0]) as { swaps: number }).swaps);
              else fail(new Error(`the swapper ended without a count: ${out}`));
            };
            child.removeAllListeners('exit');
            if (child.exitCode !== null || child.signalCode !== null) return finish();
            child.once('exit', finish);
            child.kill('SIGTERM');
          }),
      });
    }, 10);
  });
}
