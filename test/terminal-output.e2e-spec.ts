import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePort, runToExit, type ServiceProcess, startService } from './support/service-process';

const TOKEN = 'terminal-output-token-0123456789';
const UNKNOWN_TASK = '00000000-0000-4000-8000-000000000000';

/** The text a terminal shows: colour codes removed, one entry per line. */
function screenLines(output: readonly string[]): string[] {
  return (
    output
      .join('')
      // eslint-disable-next-line no-control-regex
      .replace(/\u001b\[[0-9;]*m/g, '')
      .split('\n')
      .filter((l) => l.trim() !== '')
  );
}

/** Waits (generously: a shared machine) until `ready` holds for the service's lines. */
async function waitForLines(
  service: ServiceProcess,
  ready: (lines: string[]) => boolean,
  what: string,
): Promise<string[]> {
  const end = Date.now() + 30_000;
  for (;;) {
    const lines = screenLines(service.output);
    if (ready(lines)) return lines;
    if (Date.now() > end) throw new Error(`${what} never appeared:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Issue 15 item 5: what an operator sees in the terminal with the human-readable format (`LOG_PRETTY=true`, as on a
 * terminal) at the default `LOG_LEVEL`: a short start banner, then one line per request, and a known start-up failure
 * as one line.
 */
describe('terminal output of the real service process (LOG_PRETTY=true)', () => {
  let root: string;
  let service: ServiceProcess | undefined;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-terminal-'));
  });
  afterEach(async () => {
    await service?.kill('SIGTERM');
    service = undefined;
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('starts with a short banner (URL, vault, data dir, agents, engine), then one line per request', async () => {
    const dataDir = path.join(root, 'info');
    service = await startService({
      PORT: String(await freePort()),
      DATA_DIR: dataDir,
      VAULT_ROOT: '',
      API_TOKEN: TOKEN,
      LOG_PRETTY: 'true',
      LOG_LEVEL: '', // the default
    });
    const url = service.url;
    const boot = await waitForLines(service, (ls) => ls.some((l) => /INFO: engine: /.test(l)), 'the banner');

    // the banner: at most 8 lines, each one short and plain (no JSON object, no Nest module or route listing)
    expect(boot.length).toBeLessThanOrEqual(8);
    const text = boot.join('\n');
    expect(text).toMatch(
      new RegExp(`INFO: canvas-batch \\d+\\.\\d+\\.\\d+\\S* listening on ${escape(url)} `),
    );
    expect(text).toContain(`INFO: vault: ${path.join(dataDir, 'vault')} (the example vault`);
    expect(text).toContain(`INFO: data dir: ${dataDir}`);
    expect(text).toContain('INFO: agents: offline provider');
    expect(text).toMatch(/INFO: engine: embedded .*cap 12/);
    expect(text).not.toMatch(/InstanceLoader|RouterExplorer|Mapped \{|dependencies initialized|\{"/);
    for (const line of boot) expect(line.length).toBeLessThan(200);

    // requests: accepted, refused by validation, not found, an SSE stream with the token in its query
    const auth = { authorization: `Bearer ${TOKEN}` };
    const calls: [string, string, RequestInit][] = [
      ['GET /parallel/tasks?limit=5 200', '/parallel/tasks?limit=5', { headers: auth }],
      ['GET /agents 200', '/agents', { headers: auth }],
      ['POST /parallel/execute 400', '/parallel/execute', { method: 'POST', headers: auth }],
      [
        `GET /parallel/events/${UNKNOWN_TASK}?access_token=[redacted] 404`,
        `/parallel/events/${UNKNOWN_TASK}?access_token=${TOKEN}`,
        {},
      ],
    ];
    for (const [, route, init] of calls) await (await fetch(`${url}${route}`, init)).arrayBuffer();
    // refused by the token check, before the request logger: its own line, read the same way
    const refused = 'GET /parallel/tasks?access_token=[redacted] 401 — request refused: no valid API token';
    await (await fetch(`${url}/parallel/tasks?access_token=wrong-${TOKEN}`)).arrayBuffer();
    const lines = await waitForLines(
      service,
      (ls) => [...calls.map(([expected]) => expected), refused].every((e) => ls.some((l) => l.includes(e))),
      'the request lines',
    );
    // nothing else was written: the banner (and the memory line, which may come just after it) and a line each
    const requestLines = lines.filter((l) => /^\[[\d:.]+\] \w+: (GET|POST) \//.test(l));
    expect(requestLines).toHaveLength(calls.length + 1);
    expect(lines.length - requestLines.length).toBeLessThanOrEqual(8);
    for (const [expected] of calls) {
      const matching = requestLines.filter((l) => l.includes(expected));
      expect(matching).toHaveLength(1);
      expect(matching[0]).toMatch(new RegExp(`^\\[[\\d:.]+\\] (INFO|WARN): ${escape(expected)} \\d+ ms$`));
    }
    expect(requestLines).toContainEqual(
      expect.stringMatching(new RegExp(`^\\[[\\d:.]+\\] WARN: ${escape(refused)}$`)),
    );
    const all = lines.join('\n');
    expect(all).not.toMatch(/content-security-policy|default-src|user-agent|x-request-id/i);
    expect(all).not.toContain(TOKEN);
  }, 90_000);

  it("shows Nest's module and route lines with LOG_LEVEL=debug", async () => {
    service = await startService({
      PORT: String(await freePort()),
      DATA_DIR: path.join(root, 'debug'),
      VAULT_ROOT: '',
      LOG_PRETTY: 'true',
      LOG_LEVEL: 'debug',
    });
    const lines = await waitForLines(service, (ls) => ls.some((l) => /INFO: engine: /.test(l)), 'the banner');
    expect(lines.join('\n')).toMatch(/DEBUG: Mapped \{\/parallel\/execute, POST\} route/);
    expect(lines.join('\n')).toMatch(/DEBUG: OrchestratorModule dependencies initialized/);
  }, 90_000);

  it('a port in use: one line saying so and what to do, no stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const run = await runToExit(
        { PORT: String(port), DATA_DIR: path.join(root, 'port'), VAULT_ROOT: '', LOG_PRETTY: 'true' },
        { timeoutMs: 30_000 },
      );
      expect(run.code).toBe(1);
      const lines = screenLines([run.output]);
      expect(lines).toEqual([
        expect.stringMatching(
          new RegExp(
            `^\\[[\\d:.]+\\] FATAL: canvas-batch failed to start: PORT ${port} on HOST 127\\.0\\.0\\.1 is already ` +
              'in use \\(EADDRINUSE\\): stop the process that listens there, or set PORT to a free port \\(0 picks one\\)$',
          ),
        ),
      ]);
      expect(run.output).not.toMatch(/^\s+at /m);
    } finally {
      taken.close();
    }
  }, 60_000);

  it('a bad configuration: one line listing every problem, no stack trace', async () => {
    const run = await runToExit(
      { PORT: 'eighty', LOG_LEVEL: 'loud', DATA_DIR: path.join(root, 'config'), LOG_PRETTY: 'true' },
      { timeoutMs: 30_000 },
    );
    expect(run.code).toBe(1);
    const lines = screenLines([run.output]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/FATAL: canvas-batch failed to start: Invalid configuration: /);
    expect(lines[0]).toContain('PORT must be an integer between 0 and 65535 (got "eighty")');
    expect(lines[0]).toContain('LOG_LEVEL must be one of');
    expect(run.output).not.toMatch(/^\s+at /m);
  }, 60_000);
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
