import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runCli, spawnCli } from './support/cli-process';
import { writeDemoCanvas } from './support/demo-canvas';
import { http, startServer, type TestServer, waitTerminal } from './support/harness';

type Json = Record<string, any>;

/**
 * The real `canvas-batch` binary (a child process) against a real server: output, exit codes per final status,
 * --json, Ctrl-C handling, errors.
 */
describe('canvas-batch CLI (real binary, real server)', () => {
  let server: TestServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '20-60', API_TOKEN: 'cli-token-0123456789' }, (vault) => {
      writeDemoCanvas(vault, 'Demo/colors.canvas', { '1': 4, '4': 3 });
      writeDemoCanvas(vault, 'Demo/mixed.canvas', { '2': 3 }, 2);
      writeDemoCanvas(vault, 'Demo/broken.canvas', {}, 2);
    });
    env = { CANVAS_BATCH_URL: server.url, CANVAS_BATCH_TOKEN: 'cli-token-0123456789' };
  });
  afterAll(() => server.close());

  const auth = { authorization: 'Bearer cli-token-0123456789' };

  it('run --wait: live progress on stderr, a summary table on stdout, exit 0 when every node completed', async () => {
    const { code, stdout, stderr } = await runCli(
      [
        'run',
        'Demo/colors.canvas',
        '--agent',
        'oral-explanation',
        '--nodes',
        'color:1',
        '--agent',
        'basic-decomposition',
        '--nodes',
        'color:4',
        '--wait',
      ],
      env,
    );
    expect({ code, stderr }).toEqual({
      code: 0,
      stderr: expect.stringContaining('progress: 7 completed, 0 failed, 0 skipped of 7'),
    });
    expect(stderr).toMatch(/task [0-9a-f-]{36} started: 7 node\(s\)/);
    expect(stderr).toContain('group 1 oral-explanation: 4 completed, 0 failed, 0 skipped of 4');
    expect(stderr).toContain('group 2 basic-decomposition: 3 completed, 0 failed, 0 skipped of 3');
    // not a terminal: plain lines, no bars, no cursor movement
    expect(stderr).not.toContain('\x1b');
    expect(stderr).not.toMatch(/\[[█▓░·]+\]/);
    expect(stdout).toMatch(
      /^task [0-9a-f-]{36} completed: 7 completed, 0 failed, 0 skipped of 7 in [\d.]+ s$/m,
    );
    expect(stdout).toMatch(/^GROUP\s+AGENT\s+STATUS\s+COMPLETED\s+FAILED\s+SKIPPED\s+TOTAL$/m);
    expect(stdout).toMatch(/^1\s+oral-explanation\s+completed\s+4\s+0\s+0\s+4$/m);
    expect(stdout).toMatch(/^2\s+basic-decomposition\s+completed\s+3\s+0\s+0\s+3$/m);
    // every listed result file exists in the vault
    const files = [...stdout.matchAll(/^c\dn\d\s+(Demo\/colors-explanations\/.+\.md)$/gm)].map((m) => m[1]);
    expect(files).toHaveLength(7);
    for (const f of files) expect(existsSync(path.join(server.vault, f))).toBe(true);
  });

  it('exit 2 on partial failure, with the failed nodes and their error type', async () => {
    const { code, stdout, stderr } = await runCli(
      ['run', 'Demo/mixed.canvas', '--agent', 'oral-explanation', '--wait'],
      env,
    );
    expect(code).toBe(2);
    expect(stdout).toMatch(/ partial_failure: 3 completed, 2 failed, 0 skipped of 5 /);
    // the last progress line says what the summary says: not "100 %"
    expect(stderr).toMatch(/progress: 3 completed, 2 failed, 0 skipped of 5\n/);
    expect(stderr).not.toMatch(/100 ?%/);
    expect(stdout).toMatch(/^missing0\s+1\s+NODE_CONTENT_MISSING\s+\S.*$/m);
    expect(stdout).toMatch(/^missing1\s+1\s+NODE_CONTENT_MISSING\s+\S.*$/m);
  });

  it('exit 1 when every node failed', async () => {
    const { code, stdout } = await runCli(
      ['run', 'Demo/broken.canvas', '--agent', 'oral-explanation', '--wait'],
      env,
    );
    expect(code).toBe(1);
    expect(stdout).toMatch(/ failed: 0 completed, 2 failed, 0 skipped of 2 /);
  });

  it('--json prints one valid JSON document per command', async () => {
    const run = await runCli(
      // by colour: the first test's question cards are in the canvas now
      ['--json', 'run', 'Demo/colors.canvas', '--agent', 'oral-explanation', '--nodes', 'color:1', '--wait'],
      env,
    );
    expect(run.code).toBe(0);
    const final = JSON.parse(run.stdout) as Json;
    expect(final).toMatchObject({
      status: 'completed',
      total_nodes: 4,
      completed_nodes: 4,
      progress_percent: 100,
    });
    const stored = await http<Json>('GET', `${server.url}/parallel/status/${final.task_id}`, undefined, auth);
    expect(final).toEqual(stored.body);

    const started = await runCli(
      ['run', 'Demo/colors.canvas', '--agent', 'oral-explanation', '--nodes', 'c1n0,c4n2', '--json'],
      env,
    );
    expect(started.code).toBe(0);
    const accepted = JSON.parse(started.stdout) as Json;
    expect(accepted).toMatchObject({
      total_nodes: 2,
      links: { status: `/parallel/status/${accepted.task_id}` },
    });
    await waitTerminal({ url: server.url }, accepted.task_id as string).catch(() => undefined);

    for (const args of [
      ['tasks'],
      ['agents'],
      ['status', final.task_id as string],
      ['tasks', '--status', 'completed', '--limit', '2'],
    ]) {
      const res = await runCli(['--json', ...args], env);
      expect({ args, code: res.code }).toEqual({ args, code: 0 });
      expect(() => JSON.parse(res.stdout)).not.toThrow();
    }
    const tasks = JSON.parse((await runCli(['tasks', '--json', '--limit', '2'], env)).stdout) as Json;
    expect(tasks.tasks).toHaveLength(2);
    const agents = JSON.parse((await runCli(['agents', '--json'], env)).stdout) as Json;
    expect(agents.agents.map((a: Json) => a.name)).toContain('oral-explanation');
  });

  it('"all" leaves out the cards earlier batches generated, unless --include-generated', async () => {
    // the partial-failure run above linked 3 result files into Demo/mixed.canvas
    const plain = await runCli(['--json', 'run', 'Demo/mixed.canvas', '--agent', 'oral-explanation'], env);
    expect(plain.code).toBe(0);
    const a = JSON.parse(plain.stdout) as Json;
    expect(a.total_nodes).toBe(5);
    await waitTerminal({ url: server.url }, a.task_id as string, 60_000);
    const all = await runCli(
      ['--json', 'run', 'Demo/mixed.canvas', '--agent', 'oral-explanation', '--include-generated'],
      env,
    );
    expect(all.code).toBe(0);
    const b = JSON.parse(all.stdout) as Json;
    expect(b.total_nodes).toBeGreaterThan(5);
    await waitTerminal({ url: server.url }, b.task_id as string, 60_000);
  });

  it('tasks, agents and status print tables', async () => {
    const tasks = await runCli(['tasks'], env);
    expect(tasks.code).toBe(0);
    expect(tasks.stdout).toMatch(
      /^TASK\s+STATUS\s+PROGRESS\s+COMPLETED\s+FAILED\s+SKIPPED\s+TOTAL\s+CANVAS\s+CREATED$/m,
    );
    // a segmented bar: the failed part shows, the bar is not a whole "done" one
    expect(tasks.stdout).toMatch(/partial_failure\s+\[█+▓+\]\s+3\s+2\s+0\s+5\s+Demo\/mixed\.canvas/);
    const agents = await runCli(['agents'], env);
    expect(agents.stdout).toMatch(/^oral-explanation\s+markdown\s+yes\s+/m);
  });

  it('not on a terminal, Ctrl-C cancels gracefully without a question and exits 4; a second one changes nothing', async () => {
    // graceful cancel: the 2 running nodes finish (3 s each) and keep their results, the other 4 never start
    const slow = await startServer({ AGENT_LATENCY_MS: '3000', SHUTDOWN_GRACE_MS: '0' }, (vault) =>
      writeDemoCanvas(vault, 'Demo/slow.canvas', { '3': 6 }),
    );
    try {
      const cli = spawnCli(
        ['run', 'Demo/slow.canvas', '--agent', 'oral-explanation', '--max-concurrent', '2', '--wait'],
        { CANVAS_BATCH_URL: slow.url },
      );
      await cli.waitFor(/progress: 0 completed, 0 failed, 0 skipped of 6/);
      cli.child.kill('SIGINT');
      await cli.waitFor(/interrupted: cancelling batch [0-9a-f-]{36}; running nodes finish/);
      cli.child.kill('SIGINT');
      const { code, stdout, stderr } = await cli.exited;
      expect(stderr).not.toContain('[y/N]');
      expect(stderr.match(/interrupted: cancelling/g)).toHaveLength(1);
      expect(stderr).toMatch(/Cancel requested/);
      expect(code).toBe(4);
      // normally 2 completed + 4 skipped; a very slow machine may let a second pair start before the cancel
      const [, completed, skipped] = / cancelled: (\d) completed, 0 failed, (\d) skipped of 6 /.exec(stdout)!;
      expect(Number(completed) + Number(skipped)).toBe(6);
      expect(Number(skipped)).toBeGreaterThan(0);
      // the last progress line is the summary's counts, not 100 %
      expect(stderr).toContain(`progress: ${completed} completed, 0 failed, ${skipped} skipped of 6\n`);
      const taskId = /task ([0-9a-f-]{36}) cancelled/.exec(stdout)![1];
      expect((await http<Json>('GET', `${slow.url}/parallel/status/${taskId}`)).body.status).toBe(
        'cancelled',
      );
    } finally {
      await slow.close();
    }
  });

  it('watch follows a batch started elsewhere; a cancel from another shell ends it with exit 4', async () => {
    const slow = await startServer({ AGENT_LATENCY_MS: '60000', SHUTDOWN_GRACE_MS: '0' }, (vault) =>
      writeDemoCanvas(vault, 'Demo/slow.canvas', { '3': 2 }),
    );
    try {
      const started = await runCli(['run', 'Demo/slow.canvas', '--agent', 'oral-explanation'], {
        CANVAS_BATCH_URL: slow.url,
      });
      const taskId = /started task ([0-9a-f-]{36})/.exec(started.stdout)![1];
      const watcher = spawnCli(['watch', taskId], { CANVAS_BATCH_URL: slow.url });
      await watcher.waitFor(/progress: 0 completed, 0 failed, 0 skipped of 2/);
      const cancel = await runCli(['cancel', taskId, '--abort'], { CANVAS_BATCH_URL: slow.url });
      expect(cancel.code).toBe(0);
      expect(cancel.stdout).toMatch(/\(status (running|cancelled)\)/);
      const watched = await watcher.exited;
      expect(watched.code).toBe(4);
      expect(watched.stdout).toMatch(/ cancelled: /);
    } finally {
      await slow.close();
    }
  });

  it('without --url, the service is found where PORT and HOST (environment or ./.env) put it', async () => {
    const port = new URL(server.url).port;
    const token = { CANVAS_BATCH_TOKEN: 'cli-token-0123456789' };
    expect((await runCli(['--json', 'agents'], { ...token, PORT: port })).code).toBe(0);
    expect((await runCli(['--json', 'agents'], { ...token, PORT: port, HOST: '0.0.0.0' })).code).toBe(0);
    const dir = mkdtempSync(path.join(tmpdir(), 'canvas-batch-cwd-'));
    try {
      writeFileSync(path.join(dir, '.env'), `PORT=${port}\nAPI_TOKEN=cli-token-0123456789\n`);
      const viaFile = await runCli(['--json', 'agents'], {}, { cwd: dir });
      expect({ code: viaFile.code, stderr: viaFile.stderr }).toEqual({ code: 0, stderr: '' });
      // the environment wins over the file, as for the service
      const down = await runCli(['tasks'], { PORT: '9' }, { cwd: dir });
      expect(down.code).toBe(69);
      expect(down.stderr).toContain('cannot reach canvas-batch at http://127.0.0.1:9');
      const empty = mkdtempSync(path.join(dir, 'empty-'));
      const zero = await runCli(['tasks'], { PORT: '0' }, { cwd: empty });
      expect(zero.code).toBe(64);
      expect(zero.stderr).toContain('PORT=0 lets the service pick a free port: give --url');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('errors: service refusals exit 3, an unreachable service 69, usage errors 64', async () => {
    const unknown = await runCli(['run', 'Nope/missing.canvas', '--agent', 'oral-explanation'], env);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('error: Canvas file not found');
    const denied = await runCli(['tasks'], { CANVAS_BATCH_URL: server.url, CANVAS_BATCH_TOKEN: 'wrong' });
    expect(denied.code).toBe(3);
    expect(denied.stderr).toContain('Unauthorized');
    const badAgent = await runCli(['run', 'Demo/colors.canvas', '--agent', 'no-such-agent'], env);
    expect(badAgent.code).toBe(3);
    expect(badAgent.stderr).toContain('groups[0].agent_type: unknown agent "no-such-agent"');
    const down = await runCli(['tasks'], { CANVAS_BATCH_URL: 'http://127.0.0.1:9' });
    expect(down.code).toBe(69);
    expect(down.stderr).toContain('cannot reach canvas-batch at http://127.0.0.1:9');
    const noMatch = await runCli(
      ['run', 'Demo/colors.canvas', '--agent', 'oral-explanation', '--nodes', 'color:6'],
      env,
    );
    expect(noMatch.code).toBe(64);
    expect(noMatch.stderr).toContain('--nodes color:6 matches no node of Demo/colors.canvas');
    const usage = await runCli(['run', 'Demo/colors.canvas'], env);
    expect(usage.code).toBe(64);
    expect(usage.stderr).toContain("required option '--agent <type>' not specified");
    const unknownTask = await runCli(['status', '00000000-0000-4000-8000-000000000000'], env);
    expect(unknownTask.code).toBe(3);
    expect(unknownTask.stderr).toContain('Task not found');
  });

  const built = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  (existsSync(built) ? it : it.skip)('the built binary (dist/, as installed) runs too', async () => {
    const res = await runCli(['--json', 'agents'], env, { built: true });
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as Json).agents.length).toBeGreaterThan(5);
  });
});
