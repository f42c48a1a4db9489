import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { http, waitTerminal } from './support/harness';

const repo = path.resolve(__dirname, '..');

/** Waits for the "listening on http://…" line the service logs once it serves. */
function listeningUrl(child: ChildProcess, output: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      const m = /listening on (http:\/\/[^\s"]+)/.exec(output.join(''));
      if (m) resolve(m[1]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`exited with ${code} before listening:\n${output.join('')}`)),
    );
  });
}

/** The test's environment without the NEO4J_ and MEMORY_ settings .ci/run exports for the memory suites. */
function embeddedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NEO4J_|MEMORY_|REDIS_)/.test(k)));
}

describe('npm start on the embedded defaults (real child process)', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'canvas-batch-start-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('builds, then serves the API on the bundled example vault and runs a batch', async () => {
    const output: string[] = [];
    const child = spawn('npm', ['start'], {
      cwd: repo,
      env: { ...embeddedEnv(), PORT: '0', DATA_DIR: dataDir, LOG_PRETTY: 'false', VAULT_ROOT: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: npm and the service are stopped together
    });
    const exited = new Promise<unknown>((resolve) => child.once('exit', resolve));
    try {
      const url = await listeningUrl(child, output);
      expect((await http('GET', `${url}/health`)).status).toBe(200);
      expect((await http('GET', `${url}/docs`)).status).toBe(200);
      const res = await http<Record<string, any>>('POST', `${url}/parallel/execute`, {
        canvas_path: '数学/微积分.canvas',
        groups: [{ group_id: 1, agent_type: 'oral-explanation', node_ids: ['7a3d1f9c0e5b2864'] }],
      });
      expect(res.status).toBe(202);
      const final = await waitTerminal({ url }, res.body.task_id);
      expect(final.status).toBe('completed');
      const file = path.join(dataDir, 'vault', final.groups[0].results[0].file_path);
      expect(existsSync(file)).toBe(true);
      expect(existsSync(path.join(repo, 'examples/vault/数学/微积分-explanations'))).toBe(false);
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
  }, 120_000);

  it('exits 0 on SIGTERM', async () => {
    const output: string[] = [];
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: repo,
      env: { ...embeddedEnv(), PORT: '0', DATA_DIR: dataDir, LOG_PRETTY: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const url = await listeningUrl(child, output);
    expect((await http('GET', `${url}/health`)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 30_000);

  it('refuses a bad configuration at start-up with a clear message, in one JSON log line', () => {
    const run = spawnSync(process.execPath, ['dist/main.js'], {
      cwd: repo,
      env: {
        ...embeddedEnv(),
        PORT: 'eighty',
        GLOBAL_MAX_CONCURRENT: '0',
        AGENT_PROVIDER: 'gpt',
        DATA_DIR: dataDir,
        LOG_PRETTY: 'false',
      },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    const { level, msg } = JSON.parse(lines[0]) as { level: number; msg: string };
    expect(level).toBe(60);
    expect(msg).toMatch(/^canvas-batch failed to start: Invalid configuration: /);
    expect(msg).toContain('PORT must be an integer between 0 and 65535 (got "eighty")');
    expect(msg).toContain('GLOBAL_MAX_CONCURRENT must be an integer between 1 and 1000 (got "0")');
    expect(msg).toContain('AGENT_PROVIDER must be one of offline');
  });
});
