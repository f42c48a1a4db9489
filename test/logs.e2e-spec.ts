import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { writeDemoCanvas } from './support/demo-canvas';
import { http, sseClient } from './support/harness';
import { freePort, type ServiceProcess, startService } from './support/service-process';

type Json = Record<string, any>;
const SECRET = 'log-s3cret-token-value';

/** The real service's stdout: JSON lines with request ids, task/node ids on batch lines, and no secret anywhere. */
describe('structured logs', () => {
  let service: ServiceProcess;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-logs-'));
    const vault = path.join(root, 'vault');
    writeDemoCanvas(vault, 'Demo/mixed.canvas', { '2': 3 }, 2);
    service = await startService({
      PORT: String(await freePort()),
      VAULT_ROOT: vault,
      DATA_DIR: path.join(root, 'data'),
      API_TOKEN: SECRET,
      LOG_LEVEL: 'debug',
      LOG_PRETTY: 'false',
    });
  });
  afterAll(async () => {
    await service?.kill('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  });

  it('carries request ids, task_id/node_id on every batch line, and redacts the token', async () => {
    const auth = { authorization: `Bearer ${SECRET}` };
    const started = await http<Json>(
      'POST',
      `${service.url}/parallel/execute`,
      {
        canvas_path: 'Demo/mixed.canvas',
        groups: [
          {
            group_id: 1,
            agent_type: 'oral-explanation',
            node_ids: ['c2n0', 'c2n1', 'c2n2', 'missing0', 'missing1'],
          },
        ],
      },
      { ...auth, 'x-request-id': 'req-execute-1' },
    );
    expect(started.status).toBe(202);
    expect(started.headers.get('x-request-id')).toBe('req-execute-1');
    const taskId = started.body.task_id as string;
    const events = await sseClient(`${service.url}/parallel/events/${taskId}?access_token=${SECRET}`).done;
    expect(events.at(-1)!.event).toBe('session_completed');
    await http('GET', `${service.url}/parallel/status/${taskId}`, undefined, {
      ...auth,
      cookie: `canvas_batch_token=${SECRET}`,
    });
    await http('GET', `${service.url}/parallel/tasks`, undefined, { authorization: 'Bearer wrong-token' });
    // the closing line of the batch is the last one written for it: wait until it is there
    const lines = (): Json[] =>
      service.output
        .join('')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Json);
    const written = (ls: Json[]): boolean =>
      ls.some((l) => l.task_id === taskId && /partial_failure/.test(String(l.msg))) &&
      ls.some((l) => l.req?.url === `/parallel/status/${taskId}`) &&
      ls.some((l) => l.url === '/parallel/tasks');
    const end = Date.now() + 20_000;
    while (!written(lines())) {
      if (Date.now() > end) throw new Error(`expected log lines missing:\n${service.output.join('')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const all = lines();
    const text = service.output.join('');
    expect(text).not.toContain(SECRET);

    const execute = all.find((l) => l.req?.id === 'req-execute-1' && l.res)!;
    expect(execute).toMatchObject({
      msg: expect.stringMatching(/^POST \/parallel\/execute 202 \d+ ms$/),
      req: { method: 'POST', url: '/parallel/execute', headers: { authorization: '[redacted]' } },
      res: { statusCode: 202 },
      responseTime: expect.any(Number),
    });
    // a few request headers, none of the response's (the same security headers on every line)
    expect(execute.res).toEqual({ statusCode: 202 });
    expect(execute.req.headers).toMatchObject({ 'content-type': 'application/json' });
    expect(execute.req.headers).not.toHaveProperty('host');
    expect(execute.req.headers).not.toHaveProperty('x-request-id'); // it is req.id
    expect(text).not.toMatch(/content-security-policy|default-src/);
    const sse = all.find((l) => l.req?.url?.startsWith(`/parallel/events/${taskId}`))!;
    expect(sse.req.url).toBe(`/parallel/events/${taskId}?access_token=[redacted]`);
    expect(sse.task_id).toBe(taskId);
    const status = all.find((l) => l.req?.url === `/parallel/status/${taskId}`)!;
    // a request refused by the token check is logged too, with its request id
    expect(all.find((l) => l.url === '/parallel/tasks')).toMatchObject({
      level: 40,
      method: 'GET',
      status_code: 401,
      request_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(status).toMatchObject({
      task_id: taskId,
      msg: expect.stringMatching(new RegExp(`^GET /parallel/status/${taskId} 200 \\d+ ms$`)),
      req: { headers: { cookie: '[redacted]' } },
    });
    expect(typeof status.req.id).toBe('string');

    // every line that is about this batch names it as a field, and node lines name their node
    const batchLines = all.filter((l) => !l.req && String(l.msg).includes(taskId.slice(0, 8)));
    expect(batchLines.length).toBeGreaterThan(0);
    for (const l of batchLines) expect(l.task_id).toBe(taskId);
    const nodeLines = all.filter((l) => l.task_id === taskId && !l.req && /^node /.test(String(l.msg)));
    expect(nodeLines.map((l) => l.node_id).sort()).toEqual(['c2n0', 'c2n1', 'c2n2', 'missing0', 'missing1']);
    expect(nodeLines.filter((l) => l.level === 40).map((l) => [l.node_id, l.error_type])).toEqual(
      expect.arrayContaining([
        ['missing0', 'NODE_CONTENT_MISSING'],
        ['missing1', 'NODE_CONTENT_MISSING'],
      ]),
    );
  });
});
