import { writeGridCanvas } from './support/canvas-fixtures';
import { type Cluster, nodeNames, processKey, resolveEntry, startCluster } from './support/cluster';
import { type FakeLlmServer, peakConcurrency, startFakeLlm } from './support/fake-llm-server';
import { http, waitTerminal } from './support/harness';

type Json = Record<string, any>;

// Two real service processes start (in parallel on a 2-core machine) and one restarts: more than Jest's default 30 s
// when the source is compiled at start-up on a loaded machine.
jest.setTimeout(120_000);

/**
 * The multi-process harness itself, on what runs today: two processes of the embedded engine (no REDIS_URL), each on
 * its own DATA_DIR and port, serving one vault; one is SIGKILLed and restarted on the same port and data.
 */
describe('cluster harness: real service processes (embedded engine, no Redis)', () => {
  let cluster: Cluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
  });

  it('starts two processes, SIGKILLs one and restarts it on the same port and data', async () => {
    cluster = await startCluster({ size: 2, env: { LOG_LEVEL: 'info' } });
    const [a, b] = cluster.nodes;
    expect([a.name, b.name]).toEqual(['A', 'B']);
    expect(a.url).not.toBe(b.url);
    expect(a.dataDir).not.toBe(b.dataDir);
    expect(a.env).toMatchObject({ INSTANCE_ID: 'A', VAULT_ROOT: cluster.vault, DATA_DIR: a.dataDir });
    expect(b.env).toMatchObject({ INSTANCE_ID: 'B', VAULT_ROOT: cluster.vault, DATA_DIR: b.dataDir });
    expect(a.env.REDIS_URL).toBeUndefined();
    for (const node of cluster.nodes) {
      const health = await http<Json>('GET', `${node.url}/health`);
      expect(health.status).toBe(200);
      expect(health.body.status).toBe('ok');
    }

    const exit = await a.kill('SIGKILL');
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(a.running).toBe(false);
    await expect(fetch(`${a.url}/health`)).rejects.toThrow();
    expect((await http<Json>('GET', `${b.url}/health`)).status).toBe(200);

    await a.restart();
    expect(a.running).toBe(true);
    const again = await http<Json>('GET', `${a.url}/health`);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('ok');
    expect(a.output).toContain('--- A run 2 ---');
    expect(a.output).toContain('listening on');
  });

  it('names processes A, B, C… and runs the build only when it is current', () => {
    expect(nodeNames(3)).toEqual(['A', 'B', 'C']);
    expect(() => nodeNames(0)).toThrow();
    expect(resolveEntry('source')).toEqual(['-r', '@swc-node/register', 'src/main.ts']);
    expect(['dist/main.js', 'src/main.ts']).toContain(resolveEntry('auto').at(-1));
  });
});

/** Each process calls the fake provider with its own key, so the provider's log names the process of every call. */
describe('cluster harness: calls to the fake provider name their process', () => {
  let cluster: Cluster | undefined;
  let fake: FakeLlmServer;
  beforeAll(async () => {
    fake = await startFakeLlm({ latencyMs: { min: 5, max: 20 } });
  });
  afterAll(async () => {
    await cluster?.stop();
    await fake.close();
  });

  it('A and B each run a batch on their own canvas of the shared vault; every call is attributed', async () => {
    const ids: Record<string, string[]> = {};
    cluster = await startCluster({
      size: 2,
      llm: { fake, wire: 'anthropic' },
      setupVault: (vault) => {
        for (const name of ['A', 'B']) ids[name] = writeGridCanvas(vault, `Test/${name}.canvas`, 1, 3)[0];
      },
    });
    expect(cluster.node('B').env.AGENT_API_KEY).toBe(processKey('B'));
    for (const node of cluster.nodes) {
      const res = await http<Json>('POST', `${node.url}/parallel/execute`, {
        canvas_path: `Test/${node.name}.canvas`,
        groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ids[node.name] }],
      });
      expect(res.status).toBe(202);
      expect((await waitTerminal(node, res.body.task_id as string, 60_000)).status).toBe('completed');
    }
    await fake.idle();
    for (const name of ['A', 'B']) {
      const mine = fake.log.filter((e) => e.process === name);
      expect(mine.map((e) => e.node).sort()).toEqual([...ids[name]].sort());
      expect(mine.every((e) => e.status === 200 && e.credential === processKey(name))).toBe(true);
    }
    const { byProcess } = peakConcurrency(fake.log);
    expect(Object.keys(byProcess).sort()).toEqual(['A', 'B']);
  });
});
