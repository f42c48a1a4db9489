import { setTimeout as sleep } from 'node:timers/promises';

/** File-system calls of this process still waiting in libuv's thread pool. */
export function pendingFileCalls(): number {
  return process.getActiveResourcesInfo().filter((r) => r.startsWith('FSReq')).length;
}

export interface ExitHooks {
  log(message: string): void;
  /** `process.exit`. */
  exit(code: number): void;
  /** Ends the process at once, without waiting for anything (SIGKILL to itself). */
  kill(): void;
  /** How long to wait for file calls in flight (default 2 s). */
  waitMs?: number;
}

const PROCESS_EXIT: Omit<ExitHooks, 'log'> = {
  exit: (code) => process.exit(code),
  kill: () => process.kill(process.pid, 'SIGKILL'),
};

/**
 * Ends the process with `code` once the file calls in flight are done. Node's own exit waits for every thread of
 * its pool, so a call that never returns (a hung network drive or FUSE mount under the vault) would keep a stopping
 * process alive forever: after `waitMs` it ends itself at once instead (SIGKILL, status 137), saying why first.
 * Nothing is lost: every result is committed to the database when it is recorded.
 */
export async function exitAfterFileCalls(
  code: number,
  hooks: Pick<ExitHooks, 'log'> & Partial<ExitHooks>,
): Promise<void> {
  const { log, exit, kill, waitMs = 2_000 } = { ...PROCESS_EXIT, ...hooks };
  const until = performance.now() + waitMs;
  while (pendingFileCalls() > 0 && performance.now() < until) await sleep(20);
  const stuck = pendingFileCalls();
  if (stuck > 0) {
    log(
      `${stuck} file-system call(s) have not returned for ${waitMs} ms (a hung drive under the vault?); ` +
        'ending the process without waiting for them',
    );
    kill();
    return;
  }
  exit(code);
}

/**
 * A last resort for a shutdown that does not finish within `limitMs` (something waits forever, e.g. file I/O on a
 * hung drive): says so and ends the process at once. Returns the function that disarms it.
 */
export function shutdownWatchdog(
  limitMs: number,
  hooks: Pick<ExitHooks, 'log'> & Partial<ExitHooks>,
): () => void {
  const { log, kill } = { ...PROCESS_EXIT, ...hooks };
  const timer = setTimeout(() => {
    log(`shutdown did not finish within ${limitMs} ms; ending the process now`);
    kill();
  }, limitMs);
  timer.unref();
  return () => clearTimeout(timer);
}
