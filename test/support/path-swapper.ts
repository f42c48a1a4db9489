/**
 * Another program racing the service inside the vault (a sync client, a plugin, another user of a shared vault):
 * swaps a folder or file of the vault for a symlink to `outside`, holds it a moment, swaps it back, over and over,
 * from SIGUSR1 until SIGTERM. Prints READY once loaded, and on exit the number of swaps, with the original restored.
 *
 *   node -r @swc-node/register test/support/path-swapper.ts <path in the vault> <outside target>
 *   node -r @swc-node/register test/support/path-swapper.ts <path in the vault> --with <special file>
 *
 * With `--with`, the given file (e.g. a FIFO, on the same file system) is renamed onto the path instead of a link.
 */
import { existsSync, lstatSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';

const [target, outside, special] = process.argv.slice(2);
const swapIn = outside === '--with' ? special : undefined;
const parked = `${target}.parked-by-swapper`;
const pause = new Int32Array(new SharedArrayBuffer(4));
let swaps = 0;
let stopping = false;

/** Blocks this process for 0–`maxMs` ms (the swapped state holds while the service works). */
function hold(maxMs: number): void {
  Atomics.wait(pause, 0, 0, Math.random() * maxMs);
}

function swapOnce(): void {
  renameSync(target, parked);
  if (swapIn) renameSync(swapIn, target);
  else symlinkSync(outside, target);
  hold(3);
  if (swapIn) renameSync(target, swapIn);
  else unlinkSync(target);
  renameSync(parked, target);
  swaps++;
  hold(8); // mostly in place: many operations succeed, some meet the swap
}

/** Puts the original back; whatever the service made at the path meanwhile is moved aside (still in the vault). */
function restore(): void {
  if (!existsSync(parked)) return;
  const now = lstatSync(target, { throwIfNoEntry: false });
  if (swapIn && now?.isFIFO()) renameSync(target, swapIn);
  else if (now?.isSymbolicLink()) unlinkSync(target);
  else if (now) renameSync(target, `${target}.made-during-swap-${swaps}`);
  renameSync(parked, target);
}

function loop(): void {
  if (stopping) return;
  try {
    for (let i = 0; i < 20; i++) swapOnce();
  } catch (err) {
    // the service replaced the swapped-in link by renaming onto it: put things back and go on
    process.stderr.write(`swap: ${(err as Error).message}\n`);
    restore();
  }
  setImmediate(loop);
}

process.on('SIGTERM', () => {
  stopping = true;
  restore();
  process.stdout.write(`${JSON.stringify({ swaps })}\n`);
  process.exit(0);
});
// waits for SIGUSR1 (a signal handler alone does not keep the process alive)
const idle = setInterval(() => undefined, 60_000);
process.once('SIGUSR1', () => {
  clearInterval(idle);
  loop();
});
process.stdout.write('READY\n');
