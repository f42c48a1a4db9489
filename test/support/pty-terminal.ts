import * as path from 'node:path';
import type { IPty } from 'node-pty';
import type { Terminal } from '@xterm/headless';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'canvas-batch.js');

type PtyModule = typeof import('node-pty');
type XtermModule = typeof import('@xterm/headless');

/** node-pty (a native module) and @xterm/headless, or why they cannot be loaded. */
export function loadTerminalModules(): { pty: PtyModule; xterm: XtermModule } | { missing: string } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pty = require('node-pty') as PtyModule;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const xterm = require('@xterm/headless') as XtermModule;
    return { pty, xterm };
  } catch (err) {
    return { missing: (err as Error).message };
  }
}

/** How the CLI is started: as `node bin/canvas-batch.js`, or as a user of this checkout would with `npx`. */
export type Launcher = 'node' | 'npx';

export interface PtyRun {
  /** Every byte the program wrote to the terminal so far. */
  output(): string;
  /** The visible screen (the viewport), one string per row, trailing blanks trimmed; parsed up to now. */
  screen(): Promise<string[]>;
  /** Every row written so far, scrolled-off ones first (what the user sees by scrolling back), trailing blanks trimmed. */
  history(): Promise<string[]>;
  /** Types into the terminal, as a user's keys (`\x03` is Ctrl-C, `\x04` Ctrl-D). */
  type(keys: string): void;
  /** Resolves with the screen once `test` holds for it; rejects when the program exits first or after `timeoutMs`. */
  waitForScreen(test: (rows: string[]) => boolean, what: string, timeoutMs?: number): Promise<string[]>;
  /** `status` is what a shell's `$?` says: the exit code, or 128 + the signal that ended the program. */
  exited: Promise<{ status: number; exitCode: number; signal: number | undefined }>;
  kill(): void;
}

/**
 * The real `canvas-batch` in a real pseudo-terminal (node-pty), its output fed to a headless xterm: tests read the
 * screen a user would see, and type keys whose Ctrl-C the terminal turns into SIGINT for its foreground processes.
 */
export function spawnCliInPty(
  modules: { pty: PtyModule; xterm: XtermModule },
  launcher: Launcher,
  args: string[],
  env: Record<string, string>,
  options: { cols?: number; rows?: number; cwd?: string } = {},
): PtyRun {
  const cols = options.cols ?? 120;
  const rows = options.rows ?? 30;
  const term: Terminal = new modules.xterm.Terminal({ cols, rows, allowProposedApi: true, scrollback: 1000 });
  const [file, argv] =
    launcher === 'node'
      ? [process.execPath, [BIN, ...args]]
      : ['npx', ['--no-install', 'canvas-batch', ...args]];
  const child: IPty = modules.pty.spawn(file, argv, {
    name: 'xterm-256color',
    cols,
    rows,
    cwd: options.cwd ?? ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TERM: 'xterm-256color',
      // this checkout's TypeScript, not a possibly stale dist/
      CANVAS_BATCH_FROM_SOURCE: '1',
      // npm's notices and engine warnings are not the CLI's
      npm_config_update_notifier: 'false',
      npm_config_loglevel: 'error',
      ...env,
    },
  });
  let raw = '';
  let exitedAlready = false;
  const checks = new Set<() => void>();
  const flush = (): Promise<void> => new Promise((resolve) => term.write('', resolve));
  const screenNow = (): string[] => {
    const buffer = term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < rows; y++) lines.push(rowText(buffer.getLine(buffer.viewportY + y)));
    return lines;
  };
  child.onData((data) => {
    raw += data;
    term.write(data, () => checks.forEach((c) => c()));
  });
  const exited = new Promise<{ status: number; exitCode: number; signal: number | undefined }>((resolve) =>
    child.onExit(({ exitCode, signal }) => {
      exitedAlready = true;
      void flush().then(() => {
        checks.forEach((c) => c());
        resolve({ status: signal ? 128 + signal : exitCode, exitCode, signal: signal || undefined });
      });
    }),
  );
  return {
    output: () => raw,
    screen: async () => {
      await flush();
      return screenNow();
    },
    history: async () => {
      await flush();
      const buffer = term.buffer.active;
      const lines: string[] = [];
      for (let y = 0; y < buffer.length; y++) lines.push(rowText(buffer.getLine(y)));
      while (lines.length && lines[lines.length - 1] === '') lines.pop();
      return lines;
    },
    type: (keys) => child.write(keys),
    waitForScreen: (test, what, timeoutMs = 90_000) =>
      new Promise<string[]>((resolve, reject) => {
        const timer = setTimeout(() => fail(`not seen within ${timeoutMs} ms`), timeoutMs);
        const fail = (why: string): void => {
          checks.delete(check);
          clearTimeout(timer);
          reject(
            new Error(
              `${what}: ${why}. Screen:\n${screenNow().join('\n')}\nLast output: ${JSON.stringify(raw.slice(-1500))}`,
            ),
          );
        };
        const check = (): void => {
          const lines = screenNow();
          if (test(lines)) {
            checks.delete(check);
            clearTimeout(timer);
            resolve(lines);
          } else if (exitedAlready) fail('the program exited first');
        };
        checks.add(check);
        void flush().then(check);
      }),
    exited,
    kill: () => {
      if (!exitedAlready) child.kill('SIGKILL');
    },
  };
}

/** A row as seen: trailing blanks (written spaces too) are invisible. */
function rowText(line: { translateToString(trimRight?: boolean): string } | undefined): string {
  return (line?.translateToString(true) ?? '').trimEnd();
}

/** The rows of a screen that hold a progress bar (` <label> [███▓░··] n completed, …`). */
export function barRows(rows: string[]): string[] {
  return rows.filter((r) => /^ \S.* \[[█▓░·]+\] /.test(r));
}

/** A bar row's label, cells and counts. */
export function parseBar(row: string): {
  label: string;
  cells: { completed: number; failed: number; skipped: number; pending: number };
  counts: { completed: number; failed: number; skipped: number; total: number };
} {
  const m = /^ (.+?)\s+\[([█▓░·]+)\] +(\d+) completed, +(\d+) failed, +(\d+) skipped of (\d+)/.exec(row);
  if (!m) throw new Error(`not a bar row: ${row}`);
  const count = (c: string): number => [...m[2]].filter((x) => x === c).length;
  return {
    label: m[1],
    cells: { completed: count('█'), failed: count('▓'), skipped: count('░'), pending: count('·') },
    counts: { completed: +m[3], failed: +m[4], skipped: +m[5], total: +m[6] },
  };
}
