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
