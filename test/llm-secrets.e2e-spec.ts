import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUNDLED_VAULT } from '../src/config/example-vault';
import { writeGridCanvas } from './support/canvas-fixtures';
import { type FakeLlmServer, startFakeLlm } from './support/fake-llm-server';
import { http, sseClient, waitTerminal } from './support/harness';
import { runToExit, type ServiceProcess, startService } from './support/service-process';

type Json = Record<string, any>;

const SECRET = 'sk-ant-SECRET-never-printed-0123456789';

describe('the API key never appears in logs, events or errors (real service process, debug logging)', () => {
  let fake: FakeLlmServer;
  let service: ServiceProcess;
  let root: string;
  let ids: string[];

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-secret-'));
    cpSync(BUNDLED_VAULT, path.join(root, 'vault'), { recursive: true });
    ids = writeGridCanvas(path.join(root, 'vault'), 'Test/llm.canvas', 1, 4)[0];
    fake = await startFakeLlm({
      // the provider echoes the credential it refused, as some do: our error must not pass it on
      script: (req) => {
        const node = req.headers['x-canvas-batch-node'];
        if (node === ids[0]) return { kind: 'status', status: 401, message: `invalid x-api-key ${SECRET}` };
        if (node === ids[1]) return { kind: 'status', status: 500, message: `upstream rejected ${SECRET}` };
        if (node === ids[2]) return { kind: 'malformed-json' };
        return { kind: 'ok' };
      },
    });
    service = await startService({
      PORT: '0',
      LOG_LEVEL: 'debug',
      VAULT_ROOT: path.join(root, 'vault'),
      DATA_DIR: path.join(root, 'data'),
      AGENT_PROVIDER: 'anthropic',
      AGENT_BASE_URL: fake.baseUrl('anthropic'),
      AGENT_API_KEY: SECRET,
      AGENT_MAX_ATTEMPTS: '2',
      AGENT_RETRY_BASE_MS: '10',
      AGENT_RETRY_MAX_MS: '20',
    });
  });
  afterAll(async () => {
    await service?.kill('SIGTERM');
    await fake.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('sends the key to the provider only', async () => {
    const res = await http<Json>('POST', `${service.url}/parallel/execute`, {
      canvas_path: 'Test/llm.canvas',
      groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ids }],
    });
    expect(res.status).toBe(202);
    const events = await sseClient(`${service.url}/parallel/events/${res.body.task_id as string}`).done;
    const status = await waitTerminal(service, res.body.task_id as string);
    const errors = status.groups[0].errors as Json[];
    expect(errors.map((e) => e.error_type).sort()).toEqual([
      'AGENT_AUTH_FAILED',
      'AGENT_PROVIDER_ERROR',
      'AGENT_PROVIDER_ERROR',
    ]);
    expect(fake.log.every((e) => e.credential === SECRET)).toBe(true);
    await service.kill('SIGTERM');
    const everything = [JSON.stringify(status), JSON.stringify(events), service.output.join('')].join('\n');
    expect(everything).toContain('[redacted]'); // the echoed key was there, and was removed
    expect(everything).not.toContain(SECRET);
    expect(service.output.join('')).toContain('agents: anthropic, model claude-sonnet-4-5');
  });

  it('a bad configuration stops start-up with a clear message, without the key', async () => {
    const { code, output } = await runToExit({
      AGENT_PROVIDER: 'openai-compatible',
      AGENT_BASE_URL: 'not-a-url',
      AGENT_API_KEY: SECRET,
      DATA_DIR: path.join(root, 'data2'),
    });
    expect(code).not.toBe(0);
    // one JSON log line (LOG_PRETTY=false)
    const { msg } = JSON.parse(output) as { msg: string };
    expect(msg).toContain('AGENT_BASE_URL must be an http(s) URL (got "not-a-url")');
    expect(msg).toContain('AGENT_MODEL is required');
    expect(output).not.toContain(SECRET);
  });
});
