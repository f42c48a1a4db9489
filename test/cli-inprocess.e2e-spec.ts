import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { ApiClient, ApiError } from '../src/cli/api-client';
import { type CliIo, EXIT, exitCodeFor, runCli, selectNodes } from '../src/cli/cli';
import { formatTable } from '../src/cli/table';
import { writeDemoCanvas } from './support/demo-canvas';
import { startServer, type TestServer } from './support/harness';

/** `runCli` in this process (same code as the binary) with captured streams, against a real server. */
function io(env: Record<string, string>, tty = false) {
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: tty, columns: 100 });
  // a terminal's stdin can switch to raw mode; the modes set are recorded
  const modes: boolean[] = [];
  const stdin = Object.assign(
    new PassThrough(),
    tty ? { isTTY: true, setRawMode: (mode: boolean) => void modes.push(mode) } : {},
  );
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  let interrupt: (() => void) | undefined;
  const value: CliIo = {
    stdout,
    stderr,
    stdin,
    env,
    onInterrupt: (h) => {
      interrupt = h;
      return () => (interrupt = undefined);
    },
  };
  return {
    io: value,
    stdin,
    modes,
    out: () => out,
    err: () => err,
    interrupt: () => interrupt?.(),
    untilFollowing: async () => {
      const end = Date.now() + 20_000;
      while (!interrupt) {
        if (Date.now() > end) throw new Error(`never followed:\n${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    until: async (pattern: RegExp) => {
      const end = Date.now() + 20_000;
      while (!pattern.test(err)) {
        if (Date.now() > end) throw new Error(`stderr never matched ${pattern}:\n${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

describe('runCli in-process', () => {
  let server: TestServer;
  let env: Record<string, string>;
  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '10-30', SHUTDOWN_GRACE_MS: '0' }, (vault) => {
      writeDemoCanvas(vault, 'Demo/colors.canvas', { '1': 3, '#ff8800': 2 }, 1);
    });
    env = { CANVAS_BATCH_URL: server.url };
  });
  afterAll(() => server.close());

  it('says so when there are no tasks, then draws bars on a terminal and prints the summary', async () => {
    const empty = io(env);
    expect(await runCli(['tasks'], empty.io)).toBe(0);
    expect(empty.out()).toBe('no tasks\n');

    const t = io(env, true);
    const code = await runCli(['run', 'Demo/colors.canvas', '--agent', 'oral-explanation', '--wait'], t.io);
    expect(code).toBe(EXIT.partialFailure);
    // coloured: completed green, failed red
    expect(t.err()).toMatch(
      / 1 oral-explanation \[.\[32m█+.\[0m.\[31m▓+.\[0m\] 5 completed, 1 failed, 0 skipped of 6/,
    );
    expect(t.err()).toMatch(/ total +\[.*\] 5 completed, 1 failed, 0 skipped of 6/);
    // raw mode for the keys while following, and back
    expect(t.modes).toEqual([true, false]);
    expect(t.out()).toMatch(/partial_failure: 5 completed, 1 failed, 0 skipped of 6/);
    expect(t.out()).toMatch(/^missing0\s+1\s+NODE_CONTENT_MISSING/m);
  });

  it('selects nodes by hex colour and prints how to follow a batch started without --wait', async () => {
    const t = io(env);
    expect(
      await runCli(
        ['run', 'Demo/colors.canvas', '--agent', 'oral-explanation', '--nodes', 'color:#FF8800'],
        t.io,
      ),
    ).toBe(0);
    expect(t.out()).toMatch(/^started task ([0-9a-f-]{36}): 2 node\(s\) in 1 group\(s\)$/m);
    const id = /started task ([0-9a-f-]{36})/.exec(t.out())![1];
    const w = io(env);
    expect(await runCli(['watch', id], w.io)).toBe(0);
    const s = io(env);
    expect(await runCli(['status', id], s.io)).toBe(0);
    expect(s.out()).toMatch(/completed: 2 completed/);
    const c = io(env);
    expect(await runCli(['cancel', id], c.io)).toBe(EXIT.apiError);
    expect(c.err()).toContain('Task already finished');
  });

  it('not on a terminal, Ctrl-C cancels gracefully; with --json too', async () => {
    const slow = await startServer({ AGENT_LATENCY_MS: '60000', SHUTDOWN_GRACE_MS: '0' }, (vault) =>
      writeDemoCanvas(vault, 'Demo/slow.canvas', { '2': 2 }),
    );
    try {
      const e = { CANVAS_BATCH_URL: slow.url };
      const a = io(e);
      const running = runCli(['run', 'Demo/slow.canvas', '--agent', 'oral-explanation', '--wait'], a.io);
      await a.until(/progress: 0 completed/);
      a.interrupt();
      a.interrupt();
      await a.until(/Cancel requested/);
      expect(a.err().match(/interrupted: cancelling batch/g)).toHaveLength(1);
      const id = /cancelling batch ([0-9a-f-]{36})/.exec(a.err())![1];
      // the graceful cancel waits for the 60 s nodes: abort them from another "shell"
      expect(await runCli(['cancel', id, '--abort', '--json'], io(e).io)).toBe(0);
      expect(await running).toBe(EXIT.cancelled);

      const b = io(e, true);
      const started = runCli(
        ['--json', 'run', 'Demo/slow.canvas', '--agent', 'oral-explanation', '--wait'],
        b.io,
      );
      // --json prints nothing until the end: wait until the CLI follows (its Ctrl-C handler is in place)
      await b.untilFollowing();
      b.interrupt();
      await b.until(/interrupted: cancelling batch/);
      const id2 = /cancelling batch ([0-9a-f-]{36})/.exec(b.err())![1];
      expect(await runCli(['cancel', id2, '--abort'], io(e).io)).toBe(0);
      expect(await started).toBe(EXIT.cancelled);
      expect(JSON.parse(b.out())).toMatchObject({ status: 'cancelled' });
      // --json on a terminal: no bars, no raw mode
      expect(b.modes).toEqual([]);
      expect(b.err()).not.toContain('[');
    } finally {
      await slow.close();
    }
  });

  it('on a terminal: Ctrl-C asks, "n" goes on, "y" cancels, the next Ctrl-C offers to abort', async () => {
    const slow = await startServer({ AGENT_LATENCY_MS: '60000', SHUTDOWN_GRACE_MS: '0' }, (vault) =>
      writeDemoCanvas(vault, 'Demo/slow.canvas', { '2': 2 }),
    );
    try {
      const e = { CANVAS_BATCH_URL: slow.url };
      const a = io(e, true);
      const running = runCli(['run', 'Demo/slow.canvas', '--agent', 'oral-explanation', '--wait'], a.io);
      await a.until(/0 skipped of 2\n/);
      const id = /task ([0-9a-f-]{36}) started/.exec(a.err())![1];
      const question = `Cancel batch ${id}? [y/N] `;
      a.stdin.write('x');
      a.stdin.write('\x03');
      await a.until(/\[y\/N\] $/);
      // a SIGINT (kill -INT) while the question is open asks nothing more
      a.interrupt();
      a.stdin.write('n');
      await a.until(/no: continuing\n/);
      a.interrupt();
      await a.until(/\[y\/N\] $/);
      a.stdin.write('y');
      await a.until(/Cancel requested/);
      a.stdin.write('\x03');
      await a.until(/Abort the nodes of batch [0-9a-f-]{36} that are running\? \[y\/N\] $/);
      a.stdin.write('\x03');
      expect(await running).toBe(EXIT.cancelled);
      expect(a.err().match(/\[y\/N\] (yes|no: continuing)/g)).toEqual([
        '[y/N] no: continuing',
        '[y/N] yes',
        '[y/N] yes',
      ]);
      expect(a.err()).toContain(`${question}no: continuing`);
      expect(a.out()).toMatch(/ cancelled: 0 completed, \d failed, \d skipped of 2/);
      expect(a.modes).toEqual([true, false]);
    } finally {
      await slow.close();
    }
  });

  it('on a terminal: end of input at the question leaves the batch running (exit 130); a batch that ends closes the question', async () => {
    const slow = await startServer({ AGENT_LATENCY_MS: '60000', SHUTDOWN_GRACE_MS: '0' }, (vault) =>
      writeDemoCanvas(vault, 'Demo/slow.canvas', { '2': 2 }),
    );
    try {
      const e = { CANVAS_BATCH_URL: slow.url };
      const a = io(e, true);
      const running = runCli(['run', 'Demo/slow.canvas', '--agent', 'oral-explanation', '--wait'], a.io);
      await a.until(/0 skipped of 2\n/);
      a.interrupt();
      await a.until(/\[y\/N\] $/);
      a.stdin.end();
      expect(await running).toBe(EXIT.interrupted);
      expect(a.err()).toMatch(/no answer: leaving it running\n/);
      const id = /task ([0-9a-f-]{36}) keeps running \(canvas-batch watch /.exec(a.err())![1];

      const b = io(e, true);
      const watching = runCli(['watch', id], b.io);
      await b.until(/0 skipped of 2\n/);
      b.stdin.write('\x03');
      await b.until(/\[y\/N\] $/);
      expect(await runCli(['cancel', id, '--abort'], io(e).io)).toBe(0);
      expect(await watching).toBe(EXIT.cancelled);
      expect(b.err()).toContain(`Cancel batch ${id}? [y/N] (the batch ended)`);
    } finally {
      await slow.close();
    }
  });

  it('prints tables for tasks and agents, cancels in plain text, and lists only the first results and failures', async () => {
    const big = await startServer({ SHUTDOWN_GRACE_MS: '0' }, (vault) =>
      writeDemoCanvas(vault, 'Demo/big.canvas', { '3': 22 }, 51),
    );
    try {
      const e = { CANVAS_BATCH_URL: big.url };
      const t = io(e);
      expect(await runCli(['run', 'Demo/big.canvas', '--agent', 'oral-explanation', '--wait'], t.io)).toBe(
        EXIT.partialFailure,
      );
      expect(t.out()).toMatch(/… and 1 more \(canvas-batch status [0-9a-f-]{36} --json\)/);
      expect(t.out()).toMatch(/… and 2 more \(canvas-batch status [0-9a-f-]{36} --json\)/);
      expect(t.out().match(/NODE_CONTENT_MISSING/g)).toHaveLength(50);

      const tasks = io(e);
      expect(await runCli(['tasks', '--status', 'partial_failure'], tasks.io)).toBe(0);
      expect(tasks.out()).toMatch(/^TASK\s+STATUS/m);
      expect(tasks.out()).toMatch(/partial_failure\s+\[█+▓+\]\s+22\s+51\s+0\s+73\s+Demo\/big\.canvas/);
      const agents = io(e);
      expect(await runCli(['agents'], agents.io)).toBe(0);
      expect(agents.out()).toMatch(/^basic-decomposition\s+questions\s+yes\s+/m);
      const none = io(e);
      expect(
        await runCli(
          ['run', 'Demo/big.canvas', '--agent', 'oral-explanation', '--nodes', 'color:9'],
          none.io,
        ),
      ).toBe(EXIT.usage);
      expect(none.err()).toContain('--nodes color:9 matches no node of Demo/big.canvas');
      const badAgent = io(e);
      expect(await runCli(['run', 'Demo/big.canvas', '--agent', 'nope'], badAgent.io)).toBe(EXIT.apiError);
      expect(badAgent.err()).toContain('\n  - groups[0].agent_type: unknown agent "nope"');
    } finally {
      await big.close();
    }
  });

  it('starts a batch without --wait and cancels it with the cancel command', async () => {
    const slow = await startServer({ AGENT_LATENCY_MS: '1500', SHUTDOWN_GRACE_MS: '0' }, (vault) =>
      writeDemoCanvas(vault, 'Demo/slow.canvas', { '2': 2 }),
    );
    try {
      const e = { CANVAS_BATCH_URL: slow.url };
      const c = io(e);
      expect(await runCli(['run', 'Demo/slow.canvas', '--agent', 'oral-explanation'], c.io)).toBe(0);
      const id2 = /started task ([0-9a-f-]{36})/.exec(c.out())![1];
      const cancel = io(e);
      expect(await runCli(['cancel', id2], cancel.io)).toBe(0);
      expect(cancel.out()).toMatch(/^Cancel requested; .* \(status running\)$/m);
    } finally {
      await slow.close();
    }
  });

  it('maps statuses to exit codes and parses --nodes', () => {
    expect([
      exitCodeFor('completed'),
      exitCodeFor('partial_failure'),
      exitCodeFor('failed'),
      exitCodeFor('cancelled'),
    ]).toEqual([0, 2, 1, 4]);
    const nodes = [
      { id: 'a', type: 'text', color: '1', result: false },
      { id: 'b', type: 'group', color: '1', result: false },
      { id: 'c', type: 'file', color: '1', result: true },
      { id: 'd', type: 'link', result: false },
    ] as Parameters<typeof selectNodes>[0];
    expect(selectNodes(nodes, 'all')).toEqual(['a', 'd']);
    expect(selectNodes(nodes, 'color:1')).toEqual(['a']);
    expect(selectNodes(nodes, ' x, y ,')).toEqual(['x', 'y']);
    expect(() => selectNodes(nodes, 'color:')).toThrow('needs a colour');
    expect(() => selectNodes(nodes, ',')).toThrow('names no node');
    expect(formatTable(['A', 'BB'], [['xyz', '1']], [false, true])).toBe('A    BB\nxyz   1');
  });

  it('usage errors exit 64 without calling the service', async () => {
    for (const argv of [
      ['run', 'x.canvas', '--agent', 'a', '--nodes', 'all', '--nodes', 'all'],
      ['run', 'x.canvas', '--agent', 'a', '--agent', 'b', '--nodes', 'all'],
      ['tasks', '--limit', 'ten'],
      ['no-such-command'],
    ]) {
      const t = io({ CANVAS_BATCH_URL: 'http://127.0.0.1:9' });
      expect({ argv, code: await runCli(argv, t.io) }).toEqual({ argv, code: EXIT.usage });
    }
    const help = io(env);
    expect(await runCli(['--help'], help.io)).toBe(0);
    expect(help.out()).toContain('Usage: canvas-batch');
  });
});

describe('ApiClient event stream', () => {
  let http: Server;
  let url: string;
  const seen: (string | undefined)[] = [];

  beforeAll(async () => {
    // a stream that breaks after two events; the reconnect must continue after the last id it saw
    http = createServer((req, res) => {
      const last = req.headers['last-event-id'] as string | undefined;
      seen.push(last);
      if (req.url?.includes('finished')) {
        // a finished task: its two events, then (resumed past them) 204 — nothing more will come
        if (last === '0') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end('id: 1\nevent: progress_update\ndata: {"type":"progress_update","data":{}}\n\n');
        } else res.writeHead(204).end();
        return;
      }
      if (req.url?.includes('gone')) {
        res.writeHead(404, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ title: 'Task not found', detail: 'no task gone', status: 404 }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const ev = (id: number, type: string): string =>
        `id: ${id}\r\nevent: ${type}\r\ndata: {"type":"${type}","data":{"n":${id}}}\r\n\r\n`;
      if (last === '0') {
        res.write(': stream open\n\n');
        res.write(ev(1, 'progress_update') + ev(2, 'task_completed'));
        res.end();
      } else {
        res.end(ev(3, 'session_completed') + ev(4, 'after_the_end'));
      }
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => http.close(() => r())));

  it('reconnects with Last-Event-ID and stops after session_completed', async () => {
    const client = new ApiClient({ baseUrl: `${url}/`, reconnectDelayMs: 1 });
    const got = [];
    // this stub's payloads are `{ n }`, not the service's: read past the event types
    for await (const e of client.events('t1')) got.push([e.id, e.type, (e.data as { n?: number }).n]);
    expect(got).toEqual([
      [1, 'progress_update', 1],
      [2, 'task_completed', 2],
      [3, 'session_completed', 3],
    ]);
    expect(seen).toEqual(['0', '2']);
  });

  it('ends quietly when a resume is answered 204 (the task finished, nothing more will come)', async () => {
    const client = new ApiClient({ baseUrl: url, reconnectDelayMs: 1 });
    const got: number[] = [];
    for await (const e of client.events('finished')) got.push(e.id);
    expect(got).toEqual([1]);
  });

  it('reports a refused stream and an unreachable service as ApiError', async () => {
    const client = new ApiClient({ baseUrl: url });
    await expect(client.events('gone').next()).rejects.toMatchObject({ status: 404 });
    const down = new ApiClient({ baseUrl: 'http://127.0.0.1:9', maxReconnects: 1, reconnectDelayMs: 1 });
    const err = (await down
      .events('t')
      .next()
      .catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(0);
    expect(err.message).toContain('cannot reach canvas-batch');
  });
});

describe('ApiClient requests', () => {
  let stub: Server;
  let url: string;
  beforeAll(async () => {
    stub = createServer((req, res) => {
      if (req.url === '/text-error') {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('upstream down');
      } else if (req.url === '/empty-error') {
        res.writeHead(500);
        res.end();
      } else if (req.url === '/needs-token') {
        const ok = req.headers.authorization === 'Bearer t0k';
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(ok ? '{"tasks":[]}' : '{"title":"Unauthorized","detail":"no token"}');
      } else {
        res.writeHead(204);
        res.end();
      }
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => stub.close(() => r())));

  it('reports non-JSON and empty error bodies, sends the token, and accepts an empty success', async () => {
    const client = new ApiClient({ baseUrl: url, token: 't0k' });
    await expect(client.request('GET', '/text-error')).rejects.toMatchObject({
      status: 502,
      message: 'HTTP 502: upstream down',
    });
    await expect(client.request('GET', '/empty-error')).rejects.toMatchObject({ status: 500 });
    await expect(client.request('GET', '/needs-token')).resolves.toEqual({ tasks: [] });
    await expect(new ApiClient({ baseUrl: url }).request('GET', '/needs-token')).rejects.toMatchObject({
      status: 401,
      message: 'Unauthorized: no token',
    });
    await expect(client.request('POST', '/nothing', { a: 1 })).resolves.toBeUndefined();
  });
});
