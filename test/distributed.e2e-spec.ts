import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeGridCanvas } from './support/canvas-fixtures';
import { type Cluster, type ClusterNode, startCluster } from './support/cluster';
import {
  type FakeLlmServer,
  peakConcurrency,
  type RequestLogEntry,
  startFakeLlm,
} from './support/fake-llm-server';
import { http, type ReceivedEvent, sseClient } from './support/harness';
import neo4j, { type Driver } from 'neo4j-driver';
import { type GraphEvent, graphEventsOf } from './support/memory-graph';
import { describeWithService, neo4jFromEnv, reachableSync } from './support/neo4j';
import { describeWithRedis, RedisServer, redisMissing, testRedisUrl, uniquePrefix } from './support/redis';

type Json = Record<string, any>;

// Three real service processes per cluster, started in parallel on a 2-core machine, batches of hundreds of nodes.
jest.setTimeout(240_000);

/** A take-over happens once a dead owner's lease expires: short here, so the tests do not wait 10 s each time. */
const LEASE_MS = 3_000;

const settings = {
  TASK_LEASE_MS: String(LEASE_MS),
  GLOBAL_MAX_CONCURRENT: '12',
  ADAPTIVE_CONCURRENCY: 'false',
  AGENT_TIMEOUT_MS: '60000',
};

/** Calls that reached the provider and were answered (not the 401s of a process whose key is not known). */
const answered = (log: readonly RequestLogEntry[]): RequestLogEntry[] => log.filter((e) => e.status === 200);

function execute(node: ClusterNode, canvas: string, groups: string[][], extra: Json = {}) {
  return http<Json>('POST', `${node.url}/parallel/execute`, {
    canvas_path: canvas,
    groups: groups.map((ids, g) => ({ group_id: `g${g}`, agent_type: 'oral-explanation', node_ids: ids })),
    ...extra,
  });
}

/** Exactly one result file and one file card per node; one edge per result; no temp file left. */
function expectOneResultPerNode(vault: string, canvasRel: string, nodes: number): void {
  const folder = path.join(vault, canvasRel.replace(/\.canvas$/, '-explanations'));
  const files = readdirSync(folder);
  expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
  expect(files).toHaveLength(nodes);
  const canvas = JSON.parse(readFileSync(path.join(vault, canvasRel), 'utf8')) as Json;
  const cards = (canvas.nodes as Json[]).filter((n) => n.type === 'file');
  expect(cards).toHaveLength(nodes);
  expect(new Set(cards.map((n) => n.file)).size).toBe(nodes);
  expect((canvas.edges as Json[]).filter((e) => e.label === 'oral-explanation')).toHaveLength(nodes);
}

/** The task's whole log, replayed from `node`: ids 1..n without a gap, ending with session_completed. */
async function expectWholeLog(node: ClusterNode, taskId: string): Promise<ReceivedEvent[]> {
  const log = await sseClient(`${node.url}/parallel/events/${taskId}`).done;
  expect(log.map((e) => e.id)).toEqual(log.map((_, i) => i + 1));
  expect(log.at(-1)?.event).toBe('session_completed');
  return log;
}

/** A finished task's status with its node errors, so a failing assertion shows why nodes failed. */
function outcome(final: Json): Json {
  return {
    status: final.status,
    completed: final.completed_nodes,
    errors: (final.groups as Json[]).flatMap((g) =>
      (g.errors as Json[]).map((e) => `${e.error_type}: ${e.error_message}`),
    ),
  };
}

/** The task's final status from `node`, riding out failed requests (a process or Redis restarting meanwhile). */
async function waitFinal(node: ClusterNode, taskId: string, timeoutMs: number): Promise<Json> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const res = await http<Json>('GET', `${node.url}/parallel/status/${taskId}`).catch(() => undefined);
    if (res?.status === 200 && !['pending', 'running'].includes(res.body.status as string)) return res.body;
    if (Date.now() > end)
      throw new Error(`task ${taskId} not finished after ${timeoutMs} ms: ${JSON.stringify(res?.body)}`);
    await sleep(100);
  }
}

/** An SSE client that reconnects, with Last-Event-ID, to the next process of `nodes` whenever its stream breaks. */
function roamingFollower(nodes: () => ClusterNode[], taskId: string) {
  const seen: ReceivedEvent[] = [];
  let connections = 0;
  let stopped = false;
  const done = (async () => {
    for (let i = 0; !stopped; i++) {
      const live = nodes().filter((n) => n.running);
      const node = live[i % live.length];
      connections++;
      try {
        const client = sseClient(`${node.url}/parallel/events/${taskId}`, {
          lastEventId: seen.at(-1)?.id ?? 0,
        });
        const events = await client.done;
        seen.push(...events);
        if (events.at(-1)?.event === 'session_completed') return;
      } catch {
        /* the process died under it: reconnect elsewhere */
      }
      await sleep(100);
    }
  })();
  return {
    seen,
    done,
    connections: () => connections,
    stop: () => (stopped = true),
  };
}

describeWithRedis('distributed engine: three service processes on one Redis', (redisUrl) => {
  let fake: FakeLlmServer;
  let cluster: Cluster;
  let ids: string[][] = [];
  let pairIds: Record<string, string[][]> = {};

  beforeAll(async () => {
    fake = await startFakeLlm({ latencyMs: { min: 150, max: 250 } });
    cluster = await startCluster({
      size: 3,
      redisUrl,
      prefix: uniquePrefix('dist'),
      env: settings,
      // C coordinates and answers, but runs no node
      envOf: (name): Record<string, string> => (name === 'C' ? { PROCESS_ROLE: 'api' } : {}),
      llm: { fake, wire: 'anthropic' },
      setupVault: (vault) => {
        ids = writeGridCanvas(vault, 'Test/big.canvas', 4, 60);
        writeGridCanvas(vault, 'Test/term.canvas', 1, 60);
        pairIds = {
          A: writeGridCanvas(vault, 'Test/pairA.canvas', 1, 60),
          B: writeGridCanvas(vault, 'Test/pairB.canvas', 1, 60),
        };
        writeGridCanvas(vault, 'Test/abort.canvas', 2, 60);
        writeGridCanvas(vault, 'Test/kill.canvas', 2, 60);
      },
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    await fake?.close();
  });

  beforeEach(() => {
    fake.log.length = 0;
    fake.configure({ latencyMs: { min: 150, max: 250 }, script: undefined });
  });

  it('runs a 240-node batch accepted by A on every process under one cap of 12, streamed from B, status from C', async () => {
    const [a, b, c] = cluster.nodes;
    const res = await execute(a, 'Test/big.canvas', ids);
    expect(res.status).toBe(202);
    const taskId = res.body.task_id as string;
    const stream = sseClient(`${b.url}/parallel/events/${taskId}`);
    const final = await waitFinal(c, taskId, 120_000);
    const events = await stream.done;

    expect(outcome(final)).toEqual({ status: 'completed', completed: 240, errors: [] });
    // B streamed every event, in order, to the end, though A accepted the batch
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.filter((e) => e.event === 'task_completed')).toHaveLength(240);
    expect(events.at(-1)?.event).toBe('session_completed');

    await fake.idle();
    const calls = answered(fake.log);
    // each node called once
    expect(calls).toHaveLength(240);
    expect(new Set(calls.map((e) => e.node)).size).toBe(240);
    // one cap for the whole service, and it is used
    const { peak, byProcess } = peakConcurrency(calls);
    expect(peak).toBeLessThanOrEqual(12);
    expect(peak).toBeGreaterThanOrEqual(10);
    // the work spread over the processes that run nodes (A, B); C (PROCESS_ROLE=api) ran none
    expect(Object.values(byProcess).filter((p) => p.calls > 0).length).toBeGreaterThanOrEqual(2);
    expect(byProcess.C?.calls ?? 0).toBe(0);
    expectOneResultPerNode(cluster.vault, 'Test/big.canvas', 240);
  });

  it('two batches accepted by two processes share the one cap', async () => {
    const [a, b] = cluster.nodes;
    const [ra, rb] = await Promise.all([
      execute(a, 'Test/pairA.canvas', pairIds.A),
      execute(b, 'Test/pairB.canvas', pairIds.B),
    ]);
    expect([ra.status, rb.status]).toEqual([202, 202]);
    const [fa, fb] = await Promise.all([
      waitFinal(b, ra.body.task_id as string, 120_000),
      waitFinal(a, rb.body.task_id as string, 120_000),
    ]);
    expect([fa.status, fb.status]).toEqual(['completed', 'completed']);
    await fake.idle();
    const calls = answered(fake.log);
    expect(calls).toHaveLength(120);
    expect(peakConcurrency(calls).peak).toBeLessThanOrEqual(12);
    expect(peakConcurrency(calls).peak).toBeGreaterThanOrEqual(10);
  });

  it('an abort-cancel through C of a batch accepted by B starts no call after the reply and closes the running ones', async () => {
    const [, b, c] = cluster.nodes;
    fake.configure({ latencyMs: { min: 3_000, max: 4_000 } });
    const ids2 = JSON.parse(readFileSync(path.join(cluster.vault, 'Test/abort.canvas'), 'utf8')).nodes.filter(
      (n: Json) => n.type === 'text',
    );
    const groups = [ids2.slice(0, 60).map((n: Json) => n.id), ids2.slice(60).map((n: Json) => n.id)];
    const res = await execute(b, 'Test/abort.canvas', groups);
    const taskId = res.body.task_id as string;
    // wait until the cap is full: twelve calls open across the processes
    for (let i = 0; i < 400 && fake.inFlight < 12; i++) await sleep(25);
    expect(fake.inFlight).toBeGreaterThanOrEqual(10);
    const cancel = await http<Json>('DELETE', `${c.url}/parallel/cancel/${taskId}?mode=abort`);
    const repliedAt = Date.now();
    expect(cancel.status).toBe(200);
    const final = await waitFinal(c, taskId, 30_000);
    expect(final.status).toBe('cancelled');
    await fake.idle();
    const calls = fake.log;
    // no call arrived after the reply (a call already on the wire gets one scheduling slice to arrive)
    expect(calls.filter((e) => e.arrivedAt > repliedAt + 50)).toEqual([]);
    // the calls running at the cancel were closed by the service, not answered
    const running = calls.filter((e) => e.arrivedAt <= repliedAt);
    expect(running.length).toBeGreaterThanOrEqual(10);
    expect(running.every((e) => e.clientClosed)).toBe(true);
    expect(final.completed_nodes).toBe(0);
    expect(final.skipped_nodes + final.failed_nodes).toBe(120);
  });

  it('SIGKILL of the process that accepted a batch: another takes it over and finishes it; a follower roams', async () => {
    const [a] = cluster.nodes;
    await Promise.all(cluster.nodes.filter((n) => !n.running).map((n) => n.restart()));
    const text = JSON.parse(readFileSync(path.join(cluster.vault, 'Test/kill.canvas'), 'utf8')).nodes.filter(
      (n: Json) => n.type === 'text',
    );
    const groups = [text.slice(0, 60).map((n: Json) => n.id), text.slice(60).map((n: Json) => n.id)];
    const res = await execute(a, 'Test/kill.canvas', groups);
    const taskId = res.body.task_id as string;
    const follower = roamingFollower(() => cluster.nodes, taskId);
    // let a third of it run, then kill its owner mid-batch
    for (let i = 0; i < 800 && answered(fake.log).length < 40; i++) await sleep(25);
    await a.kill('SIGKILL');
    const killedAt = Date.now();
    const [, b, c] = cluster.nodes;
    const final = await waitFinal(c, taskId, 60_000);
    expect(outcome(final)).toEqual({ status: 'completed', completed: 120, errors: [] });
    // taken over within the lease and finished: the rest took well under a minute
    expect(Date.now() - killedAt).toBeLessThan(60_000);
    await follower.done;
    const log = await expectWholeLog(b, taskId);
    expect(log.filter((e) => e.event === 'resumed').length).toBeGreaterThanOrEqual(1);
    // the roaming follower saw every event once, in order, across its reconnections
    expect(follower.seen.map((e) => e.id)).toEqual(log.map((e) => e.id));
    expectOneResultPerNode(cluster.vault, 'Test/kill.canvas', 120);
    await a.restart();
  });

  it('SIGTERM of the owner hands its batch over at once: another process finishes it, the owner exits 0', async () => {
    const [a, b, c] = cluster.nodes;
    await Promise.all(cluster.nodes.filter((n) => !n.running).map((n) => n.restart()));
    const text = JSON.parse(readFileSync(path.join(cluster.vault, 'Test/term.canvas'), 'utf8')).nodes.filter(
      (n: Json) => n.type === 'text',
    );
    const res = await execute(a, 'Test/term.canvas', [text.map((n: Json) => n.id)]);
    const taskId = res.body.task_id as string;
    for (let i = 0; i < 800 && answered(fake.log).length < 15; i++) await sleep(25);
    const exit = await a.kill('SIGTERM');
    expect(exit?.code).toBe(0);
    const final = await waitFinal(c, taskId, 60_000);
    expect(outcome(final)).toEqual({ status: 'completed', completed: 60, errors: [] });
    const log = await expectWholeLog(b, taskId);
    expect(log.filter((e) => e.event === 'resumed')).toHaveLength(1);
    await fake.idle();
    expect(new Set(answered(fake.log).map((e) => e.node)).size).toBe(60);
    expectOneResultPerNode(cluster.vault, 'Test/term.canvas', 60);
    await a.restart();
  });

  it('SIGKILL of a worker in the middle of a call: the call runs again once, elsewhere', async () => {
    const [a, b, c] = cluster.nodes;
    await Promise.all(cluster.nodes.filter((n) => !n.running).map((n) => n.restart()));
    const canvas = 'Test/stall.canvas';
    const [nodes] = writeGridCanvas(cluster.vault, canvas, 1, 24);
    const victimNode = nodes[5];
    let hung = false;
    fake.configure({
      script: (req) => {
        const node = req.headers['x-canvas-batch-node'];
        if (node === victimNode && !hung) {
          hung = true;
          return { kind: 'hang' };
        }
        return { kind: 'ok' };
      },
    });
    const res = await execute(a, canvas, [nodes]);
    const taskId = res.body.task_id as string;
    let first: RequestLogEntry | undefined;
    for (let i = 0; i < 800 && !first; i++) {
      first = fake.log.find((e) => e.node === victimNode);
      if (!first) await sleep(25);
    }
    expect(first?.process).toBeDefined();
    const worker = cluster.node(first!.process!);
    await worker.kill('SIGKILL');
    const watcher = [a, b, c].find((n) => n.running)!;
    const final = await waitFinal(watcher, taskId, 90_000);
    expect(outcome(final)).toEqual({ status: 'completed', completed: 24, errors: [] });
    const victimCalls = fake.log.filter((e) => e.node === victimNode);
    expect(victimCalls).toHaveLength(2);
    expect(victimCalls[1].process).not.toBe(first!.process);
    expect(victimCalls[1].status).toBe(200);
    expectOneResultPerNode(cluster.vault, canvas, 24);
    await worker.restart();
  });
});

describeWithRedis('distributed engine: a Redis restart mid-batch', () => {
  let fake: FakeLlmServer;
  let cluster: Cluster | undefined;
  const redis = new RedisServer();

  beforeAll(async () => {
    await redis.start();
    fake = await startFakeLlm({ latencyMs: { min: 100, max: 200 } });
  });

  afterAll(async () => {
    await cluster?.stop();
    await fake?.close();
    await redis.dispose();
  });

  it('completes the batch with nothing lost once Redis (AOF on) is back', async () => {
    let groups: string[][] = [];
    cluster = await startCluster({
      size: 2,
      redisUrl: redis.url,
      env: settings,
      llm: { fake, wire: 'anthropic' },
      setupVault: (vault) => (groups = writeGridCanvas(vault, 'Test/restart.canvas', 2, 60)),
    });
    const [a, b] = cluster.nodes;
    const res = await execute(a, 'Test/restart.canvas', groups);
    const taskId = res.body.task_id as string;
    for (let i = 0; i < 800 && answered(fake.log).length < 30; i++) await sleep(25);
    await redis.stop('SIGKILL');
    await sleep(1_000);
    await redis.start();
    const final = await waitFinal(b, taskId, 120_000);
    expect(outcome(final)).toEqual({ status: 'completed', completed: 120, errors: [] });
    await expectWholeLog(a, taskId);
    expectOneResultPerNode(cluster.vault, 'Test/restart.canvas', 120);
  });
});

const neo = neo4jFromEnv();
const neoMissing =
  redisMissing() ??
  (!neo
    ? 'NEO4J_URI is not set (.ci/run starts test/neo4j-launcher and sets it)'
    : !reachableSync(neo.uri)
      ? `NEO4J_URI ${neo.uri} is not reachable`
      : undefined);

describeWithService(
  'distributed engine: learning memory in Neo4j, exactly once, a deliverer killed',
  neoMissing,
  () => {
    let fake: FakeLlmServer;
    let cluster: Cluster | undefined;
    let driver: Driver;

    beforeAll(async () => {
      fake = await startFakeLlm({ latencyMs: { min: 50, max: 100 } });
      driver = neo4j.driver(neo!.uri, neo4j.auth.basic(neo!.user, neo!.password), {
        disableLosslessIntegers: true,
      });
    });

    afterAll(async () => {
      await cluster?.stop();
      await fake?.close();
      await driver?.close();
    });

    it('every completed node is one event in the graph, though the owner was SIGKILLed mid-batch', async () => {
      let groups: string[][] = [];
      cluster = await startCluster({
        size: 2,
        redisUrl: testRedisUrl(),
        env: {
          ...settings,
          NEO4J_URI: neo!.uri,
          NEO4J_USER: neo!.user,
          NEO4J_PASSWORD: neo!.password,
          MEMORY_RETRY_MAX_MS: '500',
        },
        llm: { fake, wire: 'anthropic' },
        setupVault: (vault) => (groups = writeGridCanvas(vault, 'Test/memory.canvas', 2, 40)),
      });
      const [a, b] = cluster.nodes;
      const res = await execute(a, 'Test/memory.canvas', groups);
      const taskId = res.body.task_id as string;
      for (let i = 0; i < 800 && answered(fake.log).length < 30; i++) await sleep(25);
      await a.kill('SIGKILL');
      const final = await waitFinal(b, taskId, 90_000);
      expect(final.status).toBe('completed');
      // the killed process comes back (as a supervisor would restart it): its unfinished deliveries are its own again
      await a.restart();
      let events: GraphEvent[] = [];
      for (let i = 0; i < 600; i++) {
        events = await graphEventsOf(driver, taskId);
        if (events.filter((e) => e.nodeId !== null).length >= 80) break;
        await sleep(100);
      }
      const perNode = events.filter((e) => e.nodeId !== null);
      expect(perNode).toHaveLength(80);
      expect(new Set(perNode.map((e) => e.nodeId)).size).toBe(80);
      expect(events.every((e) => e.copies === 1)).toBe(true);
    });
  },
);
