import { writeDemoCanvas } from './support/demo-canvas';
import { http, startServer, type TestServer, waitTerminal } from './support/harness';
import {
  barRows,
  type Launcher,
  loadTerminalModules,
  parseBar,
  type PtyRun,
  spawnCliInPty,
} from './support/pty-terminal';

type Json = Record<string, any>;

const modules = loadTerminalModules();
const TASK_ID = /task ([0-9a-f-]{36}) started/;
/** A bound for a test on a busy machine, not a timing: each waits for what it looks for. */
const LONG = 300_000;

/** Figures the report quotes: bytes the CLI wrote while its question was open. */
const figures: Record<string, number> = {};

/**
 * The real `canvas-batch` in a real pseudo-terminal (node-pty), against a real server, read off the screen of a
 * headless xterm: the Ctrl-C question, the paused and redrawn bars, the final bars against the summary, and one exit
 * code per outcome whether launched by `node bin/canvas-batch.js` or `npx canvas-batch`.
 */
('missing' in modules ? describe.skip : describe)('canvas-batch in a real terminal (node-pty, xterm)', () => {
  const terminal = modules as Exclude<typeof modules, { missing: string }>;
  let slow: TestServer;
  let fast: TestServer;
  const runs: PtyRun[] = [];

  beforeAll(async () => {
    // slow enough that a batch is still running while the test presses keys; missing files fail at once
    slow = await startServer({ AGENT_LATENCY_MS: '1000-1500', SHUTDOWN_GRACE_MS: '0' }, (vault) => {
      for (const name of ['a', 'b', 'c', 'd'])
        writeDemoCanvas(vault, `Demo/slow-${name}.canvas`, { '3': 16, '5': 4 }, 2);
    });
    fast = await startServer({ AGENT_LATENCY_MS: '5-20', SHUTDOWN_GRACE_MS: '0' }, (vault) => {
      writeDemoCanvas(vault, 'Demo/colors.canvas', { '1': 3 });
      writeDemoCanvas(vault, 'Demo/mixed.canvas', { '2': 3 }, 2);
      writeDemoCanvas(vault, 'Demo/broken.canvas', {}, 2);
    });
  });
  afterEach(() => runs.splice(0).forEach((r) => r.kill()));
  afterAll(async () => {
    await slow?.close();
    await fast?.close();
  });

  const start = (launcher: Launcher, args: string[], server: TestServer | undefined): PtyRun => {
    const run = spawnCliInPty(terminal, launcher, args, server ? { CANVAS_BATCH_URL: server.url } : {}, {
      rows: 40,
    });
    runs.push(run);
    return run;
  };

  /** Two groups: 16 slow nodes, then 4 slow ones and 2 that fail at once. */
  const slowBatch = (canvas: string): string[] => [
    'run',
    canvas,
    '--agent',
    'oral-explanation',
    '--nodes',
    'color:3',
    '--agent',
    'oral-explanation',
    '--nodes',
    'c5n0,c5n1,c5n2,c5n3,missing0,missing1',
    '--max-concurrent',
    '2',
    '--wait',
  ];

  const settled = async (taskId: string): Promise<number> => {
    const { body } = await http<Json>('GET', `${slow.url}/parallel/status/${taskId}`);
    return (body.completed_nodes as number) + (body.failed_nodes as number) + (body.skipped_nodes as number);
  };

  /** Waits (bounded, not timed) until the service has settled `n` more nodes of the task. */
  const serviceMovesOn = async (taskId: string, n: number): Promise<void> => {
    const target = (await settled(taskId)) + n;
    const end = Date.now() + 60_000;
    while ((await settled(taskId)) < target) {
      if (Date.now() > end) throw new Error(`task ${taskId} did not settle ${n} more node(s)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const taskOf = async (run: PtyRun): Promise<string> => {
    const rows = await run.waitForScreen((s) => s.some((r) => TASK_ID.test(r)), 'the task id');
    return TASK_ID.exec(rows.find((r) => TASK_ID.test(r))!)![1];
  };

  const barsShown = (rows: string[]): boolean => barRows(rows).some((r) => r.startsWith(' total '));

  /** The final bars against the summary line and the group table, as printed. */
  const expectBarsMatchSummary = (lines: string[], taskId: string, status: string): void => {
    const summary = new RegExp(
      `^task ${taskId} ${status}: +(\\d+) completed, +(\\d+) failed, +(\\d+) skipped of (\\d+) in `,
    );
    const line = lines.find((l) => summary.test(l));
    expect(line).toBeDefined();
    const [, c, f, s, t] = summary.exec(line!)!.map(Number);
    const bars = barRows(lines).map(parseBar);
    // one bar per group and a total: no stale bar from an earlier frame
    expect(bars.map((b) => b.label)).toEqual(['1 oral-explanation', '2 oral-explanation', 'total']);
    const total = bars[2];
    expect(total.counts).toEqual({ completed: c, failed: f, skipped: s, total: t });
    for (const [i, bar] of bars.slice(0, 2).entries()) {
      const row = lines.find((l) => new RegExp(`^${i + 1}\\s+oral-explanation\\s+\\w+\\s+\\d`).test(l))!;
      const [completed, failed, skipped, all] = row.trim().split(/\s+/).slice(3).map(Number);
      expect(bar.counts).toEqual({ completed, failed, skipped, total: all });
    }
    for (const bar of bars) {
      const width = Object.values(bar.cells).reduce((a, b) => a + b, 0);
      // the bar is whole only when every node completed; every outcome that happened shows
      expect(bar.cells.completed === width).toBe(bar.counts.completed === bar.counts.total);
      expect(bar.cells.failed > 0).toBe(bar.counts.failed > 0);
      expect(bar.cells.skipped > 0).toBe(bar.counts.skipped > 0);
    }
  };

  it(
    'node: Ctrl-C freezes the bars under the question on its own line; "n" redraws them; "y" cancels, and the last bars say what the summary says (exit 4)',
    async () => {
      const run = start('node', slowBatch('Demo/slow-a.canvas'), slow);
      const taskId = await taskOf(run);
      await run.waitForScreen(barsShown, 'the bars');
      await serviceMovesOn(taskId, 1);

      run.type('\x03');
      const question = `Cancel batch ${taskId}? [y/N]`;
      const asked = await run.waitForScreen((s) => s.includes(question), 'the question on its own line');
      const mark = run.output().length;
      // the question is the last line, right under the frozen bars
      const last = asked.findLastIndex((r) => r !== '');
      expect(asked[last]).toBe(question);
      expect(asked[last - 1]).toMatch(/^ total +\[/);
      // the batch goes on meanwhile, and nothing is drawn: the question stays readable
      await serviceMovesOn(taskId, 3);
      figures['bytes written while the first question was open (node)'] = run.output().length - mark;
      expect(run.output().slice(mark)).toBe('');
      expect(await run.screen()).toEqual(asked);

      run.type('n');
      const resumed = await run.waitForScreen(
        (s) => s.includes(`${question} no: continuing`) && barsShown(s),
        'the bars again after "n"',
      );
      expect(resumed).not.toContain(question);
      expect(barRows(resumed)).toHaveLength(3);
      const recordAt = resumed.indexOf(`${question} no: continuing`);
      expect(resumed.findIndex((r) => r.startsWith(' total '))).toBeGreaterThan(recordAt);
      // live again: the bars follow the batch
      const before = parseBar(barRows(resumed)[2]).counts;
      await run.waitForScreen((s) => {
        const total = barRows(s).find((r) => r.startsWith(' total '));
        if (!total) return false;
        const now = parseBar(total).counts;
        return now.completed + now.failed > before.completed + before.failed;
      }, 'the bars moving after "n"');

      run.type('\x03');
      await run.waitForScreen((s) => s.filter((r) => r === question).length === 1, 'the second question');
      run.type('y');
      const { status } = await run.exited;
      const lines = await run.history();
      expect(status).toBe(4);
      expect(lines).toContain(`${question} yes`);
      expect(lines.some((l) => /Cancel requested/.test(l))).toBe(true);
      expect(lines.filter((l) => l.startsWith('Cancel batch'))).toEqual([
        `${question} no: continuing`,
        `${question} yes`,
      ]);
      expectBarsMatchSummary(lines, taskId, 'cancelled');
      expect((await http<Json>('GET', `${slow.url}/parallel/status/${taskId}`)).body.status).toBe(
        'cancelled',
      );
      figures['frames drawn in the whole node run'] = run.output().split('\x1b[2K total ').length - 1;
    },
    LONG,
  );

  // npx runs the CLI under `sh -c`; dash kills itself with a SIGINT it saw once its child exits, so a Ctrl-C that
  // reached the process group as a signal would end npx with 130 whatever the CLI returned
  it(
    'npx: Ctrl-C is read as a key (no signal reaches npx and its shell); Ctrl-C at the question means yes (exit 4)',
    async () => {
      const run = start('npx', slowBatch('Demo/slow-b.canvas'), slow);
      const taskId = await taskOf(run);
      await run.waitForScreen(barsShown, 'the bars');
      run.type('\x03');
      const question = `Cancel batch ${taskId}? [y/N]`;
      await run.waitForScreen((s) => s.includes(question), 'the question');
      const mark = run.output().length;
      await serviceMovesOn(taskId, 2);
      figures['bytes written while the question was open (npx)'] = run.output().length - mark;
      expect(run.output().slice(mark)).toBe('');
      run.type('\x03');
      const { status } = await run.exited;
      const lines = await run.history();
      expect(status).toBe(4);
      expect(lines.filter((l) => l.startsWith('Cancel batch'))).toEqual([`${question} yes`]);
      expectBarsMatchSummary(lines, taskId, 'cancelled');
    },
    LONG,
  );

  it.each<Launcher>(['node', 'npx'])(
    '%s: Ctrl-D at the question stops following and leaves the batch running (exit 130)',
    async (launcher) => {
      const run = start(
        launcher,
        slowBatch(launcher === 'node' ? 'Demo/slow-c.canvas' : 'Demo/slow-d.canvas'),
        slow,
      );
      const taskId = await taskOf(run);
      await run.waitForScreen(barsShown, 'the bars');
      run.type('\x03');
      await run.waitForScreen((s) => s.includes(`Cancel batch ${taskId}? [y/N]`), 'the question');
      run.type('\x04');
      const { status } = await run.exited;
      const lines = await run.history();
      expect(status).toBe(130);
      expect(lines).toContain(`Cancel batch ${taskId}? [y/N] no answer: leaving it running`);
      expect(lines).toContain(`task ${taskId} keeps running (canvas-batch watch ${taskId})`);
      expect(barRows(lines)).toHaveLength(3);
      expect((await http<Json>('GET', `${slow.url}/parallel/status/${taskId}`)).body.status).toBe('running');
      await http('DELETE', `${slow.url}/parallel/cancel/${taskId}?mode=abort`);
      await waitTerminal(slow, taskId, 60_000);
    },
    LONG,
  );

  it(
    'one exit code per outcome, the same by node and by npx',
    async () => {
      const outcomes: [string, string[], TestServer | undefined, number][] = [
        ['completed', ['run', 'Demo/colors.canvas', '--agent', 'oral-explanation', '--wait'], fast, 0],
        ['failed', ['run', 'Demo/broken.canvas', '--agent', 'oral-explanation', '--wait'], fast, 1],
        ['partial failure', ['run', 'Demo/mixed.canvas', '--agent', 'oral-explanation', '--wait'], fast, 2],
        ['refused', ['status', '00000000-0000-4000-8000-000000000000'], fast, 3],
        ['usage', ['run', 'Demo/colors.canvas'], fast, 64],
        ['unreachable', ['--url', 'http://127.0.0.1:9', 'tasks'], undefined, 69],
      ];
      const got: Record<string, Record<Launcher, number>> = {};
      for (const [outcome, args, server] of outcomes) {
        for (const launcher of ['node', 'npx'] as const) {
          const run = start(launcher, args, server);
          const { status } = await run.exited;
          (got[outcome] ??= { node: -1, npx: -1 })[launcher] = status;
        }
      }
      expect(got).toEqual(
        Object.fromEntries(outcomes.map(([outcome, , , code]) => [outcome, { node: code, npx: code }])),
      );
    },
    LONG,
  );

  it(
    'AGENT_STREAM: the focused node’s text grows under the bars as the agent writes it, within the terminal',
    async () => {
      const streaming = await startServer({ AGENT_STREAM: 'true', AGENT_LATENCY_MS: '4000' }, (vault) =>
        writeDemoCanvas(vault, 'Demo/stream.canvas', { '3': 2 }),
      );
      try {
        const run = start(
          'node',
          ['run', 'Demo/stream.canvas', '--agent', 'oral-explanation', '--max-concurrent', '1', '--wait'],
          streaming,
        );
        const title = /^── (c3n\d) \(group 1\) ─+$/;
        /** The panel: its node and its text rows (everything under its title). */
        const panel = (rows: string[]): { node: string; text: string } | undefined => {
          const at = rows.findIndex((r) => title.test(r));
          if (at < 0) return undefined;
          return {
            node: title.exec(rows[at])![1],
            text: rows
              .slice(at + 1)
              .join('\n')
              .trim(),
          };
        };
        const first = panel(await run.waitForScreen((s) => (panel(s)?.text ?? '') !== '', 'the first text'));
        const later = panel(
          await run.waitForScreen((s) => {
            const p = panel(s);
            return p !== undefined && p.node === first!.node && p.text.length > first!.text.length;
          }, 'the same node’s text, longer'),
        );
        expect(later!.node).toBe(first!.node);
        // it grew at its end (the panel shows the text's last rows; these are still few)
        expect(later!.text.startsWith(first!.text.split('\n').slice(0, -1).join('\n'))).toBe(true);
        // never wider than the terminal
        const screen = await run.screen();
        for (const row of screen) expect(row.length).toBeLessThan(120);
        expect((await run.exited).status).toBe(0);
      } finally {
        await streaming.close();
      }
    },
    LONG,
  );

  afterAll(() => {
    // the figures this suite measured, for the record
    process.stderr.write(`cli-pty figures: ${JSON.stringify(figures)}\n`);
  });
});

if ('missing' in modules && process.env.REQUIRE_SERVICES === '1') {
  it('node-pty and @xterm/headless load (REQUIRE_SERVICES=1)', () => {
    throw new Error(`a pseudo-terminal is required (REQUIRE_SERVICES=1): ${modules.missing}`);
  });
}
