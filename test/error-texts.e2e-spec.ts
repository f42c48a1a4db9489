import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUNDLED_VAULT } from '../src/config/example-vault';
import { http, sseClient, startServer, type TestServer, waitTerminal } from './support/harness';
import {
  checkoutReadableBy,
  type ChildUser,
  type ServiceProcess,
  startService,
} from './support/service-process';

type Json = Record<string, any>;

/** Error texts of the API say what is wrong and what to do, and never show where the server keeps its files. */
describe('error texts of the API (real server)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ EXECUTE_RATE_LIMIT: '2' });
  });
  afterAll(() => server.close());

  it('100,000 unknown node ids are counted as 100,000 (the first 1000 listed), with what to do', async () => {
    const groups = Array.from({ length: 10 }, (_, g) => ({
      group_id: g + 1,
      agent_type: 'oral-explanation',
      node_ids: Array.from({ length: 10_000 }, (_, i) => `missing-${g}-${i}`),
    }));
    const res = await http<Json>('POST', `${server.url}/parallel/execute`, {
      canvas_path: 'Biology/cells.canvas',
      groups,
    });
    expect(res.status).toBe(422);
    expect(res.body.type).toBe('https://canvas-batch.dev/problems/unknown-node-ids');
    expect(res.body.detail).toBe(
      '100000 node id(s) are not in "Biology/cells.canvas" (the first 1000 are listed in errors): use ids of nodes ' +
        'in this canvas (GET /canvases/nodes?path=Biology/cells.canvas lists them)',
    );
    expect(res.body.errors).toHaveLength(1000);
    expect(res.body.errors[0]).toEqual({
      field: 'groups[0].node_ids[0]',
      message: 'node "missing-0-0" is not in the canvas',
    });
  }, 60_000);

  it('the rate limit answers 429 saying which limit and when to try again, not "ThrottlerException"', async () => {
    const body = {
      canvas_path: 'Biology/cells.canvas',
      groups: [{ group_id: 1, agent_type: 'oral-explanation', node_ids: ['b10c0ffee0000001'] }],
    };
    let res = await http<Json>('POST', `${server.url}/parallel/execute`, body);
    for (let i = 0; i < 5 && res.status !== 429; i++)
      res = await http<Json>('POST', `${server.url}/parallel/execute`, body);
    expect(res.status).toBe(429);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.body).toEqual({
      type: 'https://canvas-batch.dev/problems/too-many-requests',
      title: 'Too many requests',
      status: 429,
      detail:
        'Too many batches from this client: POST /parallel/execute takes EXECUTE_RATE_LIMIT requests per client a ' +
        'minute. Wait the number of seconds in the Retry-After header, then try again.',
      instance: '/parallel/execute',
    });
  });
});

/** Issue 15 item 6: the slips people make with `POST /parallel/execute` and the query parameters, said plainly. */
describe('validation texts for common slips (real server)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());

  const GOOD = {
    canvas_path: 'Biology/cells.canvas',
    groups: [{ group_id: 1, agent_type: 'oral-explanation', node_ids: ['b10c0ffee0000001'] }],
  };
  const JSON_BODY =
    'the body must be JSON (Content-Type: application/json): an object with the fields `canvas_path`, `groups`, ' +
    '`max_concurrent`, `timeout`, `cache`, `budget_usd`';

  /** A raw POST /parallel/execute, its problem parsed. */
  async function execute(init: { headers?: Record<string, string>; body?: string }): Promise<{
    status: number;
    type: string | null;
    problem: Json;
  }> {
    const res = await fetch(`${server.url}/parallel/execute`, { method: 'POST', ...init });
    return { status: res.status, type: res.headers.get('content-type'), problem: (await res.json()) as Json };
  }

  it.each([
    ['no body, no Content-Type', {}],
    [
      'a JSON body sent as text/plain',
      { headers: { 'content-type': 'text/plain' }, body: JSON.stringify(GOOD) },
    ],
    [
      'a form',
      { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'canvas_path=a.canvas' },
    ],
    ['Content-Type: application/json and no body', { headers: { 'content-type': 'application/json' } }],
    [
      'Content-Type: application/json and an empty body',
      { headers: { 'content-type': 'application/json' }, body: '' },
    ],
  ])('%s: one problem, "the body must be JSON"', async (_name, init) => {
    const { status, type, problem } = await execute(init);
    expect(status).toBe(400);
    expect(type).toMatch(/^application\/problem\+json/);
    expect(problem).toEqual({
      type: 'https://canvas-batch.dev/problems/validation-failed',
      title: 'Request validation failed',
      status: 400,
      detail: JSON_BODY,
      instance: '/parallel/execute',
    });
  });

  it('a JSON array: one problem saying an object is expected', async () => {
    const { status, problem } = await execute({
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([GOOD]),
    });
    expect(status).toBe(400);
    expect(problem.detail).toBe(
      'the body must be a JSON object, not an array, with the fields `canvas_path`, `groups`, `max_concurrent`, ' +
        '`timeout`, `cache`, `budget_usd`',
    );
    expect(problem).not.toHaveProperty('errors');
  });

  it('missing fields are "required", once each, without their type and range checks', async () => {
    const res = await http<Json>('POST', `${server.url}/parallel/execute`, {
      groups: [{ group_id: 1, node_ids: ['b10c0ffee0000001'] }],
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([
      { field: 'canvas_path', message: '`canvas_path` is required' },
      { field: 'groups[0].agent_type', message: '`agent_type` is required' },
    ]);
    expect(res.body.detail).toBe(
      'canvas_path: `canvas_path` is required; groups[0].agent_type: `agent_type` is required',
    );
    const empty = await http<Json>('POST', `${server.url}/parallel/execute`, {});
    expect(empty.body.errors).toEqual([
      { field: 'canvas_path', message: '`canvas_path` is required' },
      { field: 'groups', message: '`groups` is required' },
    ]);
  });

  it('camelCase (and other) spellings of every field get "did you mean", not also "required"', async () => {
    const res = await http<Json>('POST', `${server.url}/parallel/execute`, {
      canvasPath: GOOD.canvas_path,
      groups: [{ groupId: 1, agentType: 'oral-explanation', nodeIds: ['b10c0ffee0000001'] }],
      maxConcurrent: 2,
      Timeout: 600,
      priority: 'high',
    });
    expect(res.status).toBe(400);
    expect(res.body.type).toBe('https://canvas-batch.dev/problems/validation-failed');
    expect(res.body.errors).toEqual([
      { field: 'canvasPath', message: 'unknown field `canvasPath`: did you mean `canvas_path`?' },
      { field: 'maxConcurrent', message: 'unknown field `maxConcurrent`: did you mean `max_concurrent`?' },
      { field: 'Timeout', message: 'unknown field `Timeout`: did you mean `timeout`?' },
      {
        field: 'priority',
        message:
          'unknown field `priority` (the fields are `canvas_path`, `groups`, `max_concurrent`, `timeout`, `cache`, `budget_usd`)',
      },
      { field: 'groups[0].groupId', message: 'unknown field `groupId`: did you mean `group_id`?' },
      { field: 'groups[0].agentType', message: 'unknown field `agentType`: did you mean `agent_type`?' },
      { field: 'groups[0].nodeIds', message: 'unknown field `nodeIds`: did you mean `node_ids`?' },
    ]);
    expect(JSON.stringify(res.body)).not.toMatch(/should not exist|is required|must be a string/);
  });

  it.each([
    ['/parallel/tasks?Limit=5', 'Limit', 'limit'],
    [
      `/parallel/status/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}?resultsLimit=5`,
      'resultsLimit',
      'results_limit',
    ],
    [
      `/parallel/status/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}?resultsOffset=5`,
      'resultsOffset',
      'results_offset',
    ],
    [
      `/parallel/events/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}?lastEventId=5`,
      'lastEventId',
      'last_event_id',
    ],
    [
      `/parallel/events/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}?accessToken=x`,
      'accessToken',
      'access_token',
    ],
    ['/canvases/nodes?Path=Biology/cells.canvas', 'Path', 'path'],
  ])('query %s: did you mean', async (route, slip, field) => {
    const res = await http<Json>('GET', `${server.url}${route}`);
    expect(res.status).toBe(400);
    expect(res.body.errors).toContainEqual({
      field: slip,
      message: `unknown field \`${slip}\`: did you mean \`${field}\`?`,
    });
  });
});

/**
 * A result that cannot be written: the node fails with the file system's error, which names the file by its absolute
 * path. Status and events show it vault-relative. As root (CI) the service runs as `nobody` over a results folder
 * owned by root; as another user, over a results folder it made read-only.
 */
const runsAsRoot = process.getuid?.() === 0;
const nobodyCannotRead = runsAsRoot && !checkoutReadableBy(65534);
if (nobodyCannotRead)
  process.stderr.write(
    '[skip] unwritable result case: running as root in a checkout user nobody cannot read (clone it under a folder others can traverse)\n',
  );

(nobodyCannotRead ? describe.skip : describe)(
  'no absolute server path in what the status API and the events return (real service process)',
  () => {
    const asRoot = runsAsRoot;
    const child: ChildUser = asRoot ? { uid: 65534, gid: 65534 } : {};
    const root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-paths-'));
    const vault = path.join(root, 'vault');
    const dataDir = path.join(root, 'data');
    const results = path.join(vault, 'Biology', 'cells-explanations');
    let service: ServiceProcess | undefined;

    beforeAll(() => {
      chmodSync(root, 0o755);
      cpSync(BUNDLED_VAULT, vault, { recursive: true });
      mkdirSync(dataDir);
      if (asRoot) chownTree(root, 65534);
      mkdirSync(results);
      if (asRoot) chownSync(results, 0, 0);
      chmodSync(results, 0o555);
    });
    afterAll(async () => {
      await service?.kill('SIGKILL');
      chmodSync(results, 0o755);
      rmSync(root, { recursive: true, force: true });
    });

    it('a result that cannot be written fails its node with a vault-relative message', async () => {
      service = await startService({ PORT: '0', VAULT_ROOT: vault, DATA_DIR: dataDir }, child);
      const res = await http<Json>('POST', `${service.url}/parallel/execute`, {
        canvas_path: 'Biology/cells.canvas',
        groups: [{ group_id: 1, agent_type: 'oral-explanation', node_ids: ['b10c0ffee0000001'] }],
      });
      expect(res.status).toBe(202);
      const taskId = res.body.task_id as string;
      const status = await waitTerminal(service, taskId);
      const events = await sseClient(`${service.url}/parallel/events/${taskId}`).done;
      expect(status.status).toBe('failed');
      const [error] = status.groups[0].errors as Json[];
      expect(error.error_type).toBe('CANVAS_WRITE_FAILED');
      // the file system named the file by an absolute path; the client sees its name (vault-relative, or relative
      // to the open folder it was written through), no absolute path at all
      expect(error.error_message).toMatch(/EACCES: permission denied, \w+ '[^'/][^']*\.md[^']*'/);
      expect(error.error_message).not.toMatch(/(^|[\s'"(=])(\/[^\s'"/]|[A-Za-z]:\\)/);
      const failed = events.find((e) => e.data.type === 'task_failed');
      expect(failed?.data.data.error_message).toBe(error.error_message);
      for (const text of [JSON.stringify(status), JSON.stringify(events)]) {
        expect(text).not.toContain(root);
        expect(text).not.toContain(tmpdir());
      }
      // the operator's log still names the vault, once, at start-up
      expect(service.output.join('')).toContain(vault);
    }, 60_000);
  },
);

function chownTree(dir: string, uid: number): void {
  chownSync(dir, uid, uid);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(p, uid);
    else chownSync(p, uid, uid);
  }
}
