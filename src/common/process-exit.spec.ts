import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, promises as fsp, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { exitAfterFileCalls, pendingFileCalls, shutdownWatchdog } from './process-exit';

describe('process exit with file calls that never return', () => {
  let dir: string;
  let fifo: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'process-exit-'));
    fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
  });

  afterEach(() => {
    jest.useRealTimers();
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)); // lets a blocked open return
    } catch {
      // nobody was waiting on it
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits with the code at once when no file call is in flight', async () => {
    const hooks = { log: jest.fn(), exit: jest.fn(), kill: jest.fn(), waitMs: 50 };
    await exitAfterFileCalls(3, hooks);
    expect(hooks.exit).toHaveBeenCalledWith(3);
    expect(hooks.kill).not.toHaveBeenCalled();
    expect(hooks.log).not.toHaveBeenCalled();
  });

  it('waits for file calls that finish, then exits normally', async () => {
    const hooks = { log: jest.fn(), exit: jest.fn(), kill: jest.fn(), waitMs: 5_000 };
    const reads = Array.from({ length: 3 }, () => fsp.readFile(__filename));
    expect(pendingFileCalls()).toBeGreaterThan(0);
    await exitAfterFileCalls(0, hooks);
    await Promise.all(reads);
    expect(hooks.exit).toHaveBeenCalledWith(0);
    expect(hooks.kill).not.toHaveBeenCalled();
  });

  it('ends the process at once (not a normal exit, which would wait forever) when a file call never returns', async () => {
    const hooks = { log: jest.fn(), exit: jest.fn(), kill: jest.fn(), waitMs: 100 };
    const stuck = fsp.open(fifo, 'r').then(
      (h) => h.close(),
      () => undefined,
    );
    await exitAfterFileCalls(0, hooks);
    expect(hooks.kill).toHaveBeenCalledTimes(1);
    expect(hooks.exit).not.toHaveBeenCalled();
    expect(hooks.log).toHaveBeenCalledWith(
      expect.stringMatching(/^1 file-system call\(s\) have not returned for 100 ms/),
    );
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    await stuck;
  });

  it('a watchdog ends a shutdown that does not finish in time, unless disarmed first', () => {
    jest.useFakeTimers();
    const fired = { log: jest.fn(), kill: jest.fn() };
    shutdownWatchdog(1_000, fired);
    jest.advanceTimersByTime(999);
    expect(fired.kill).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(fired.log).toHaveBeenCalledWith('shutdown did not finish within 1000 ms; ending the process now');
    expect(fired.kill).toHaveBeenCalledTimes(1);

    const disarmed = { log: jest.fn(), kill: jest.fn() };
    shutdownWatchdog(1_000, disarmed)();
    jest.advanceTimersByTime(5_000);
    expect(disarmed.kill).not.toHaveBeenCalled();
  });
});
