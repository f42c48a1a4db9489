import type { Driver } from 'neo4j-driver';
import { batchShape } from './support/batch-shape';
import { writeGridCanvas } from './support/canvas-fixtures';
import { http, sseClient, startServer, type TestServer, waitTerminal } from './support/harness';
import { graphEventsOf, relationshipCounts, waitMemory } from './support/memory-graph';
import {
  buildHint,
  describeWithService,
  javaAvailable,
  launcherBuilt,
  Neo4jServer,
  reachableSync,
} from './support/neo4j';

type Json = Record<string, any>;

const missing = !javaAvailable()
  ? 'java is not installed (the Neo4j test launcher needs Java 17)'
  : !launcherBuilt()
    ? `the Neo4j test launcher is not built: ${buildHint()}`
    : undefined;

/**
 * Its own Neo4j (test/neo4j-launcher), because this suite stops it: killed in the middle of a batch, then started
 * again on the same data folder and port.
 */
describeWithService('learning memory through a Neo4j outage (own launcher instance)', missing, () => {
  let neo: Neo4jServer;
  let driver: Driver;
  let server: TestServer;
  let ids: string[][] = [];
  const request = (): Json => ({
    canvas_path: 'Test/outage.canvas',
    groups: [
      { group_id: 'explain', agent_type: 'oral-explanation', node_ids: ids[0] },
      { group_id: 'anchor', agent_type: 'memory-anchor', node_ids: ids[1] },
      { group_id: 'score', agent_type: 'scoring-agent', node_ids: ids[2] },
    ],
    max_concurrent: 4,
  });
  const reference: { shape?: Json; seconds?: number; taskId?: string } = {};

  beforeAll(async () => {
    neo = await Neo4jServer.start();
    driver = neo.driver();
    server = await startServer(
      {
        NEO4J_URI: neo.uri,
        NEO4J_PASSWORD: neo.password,
        MEMORY_RETRY_MAX_MS: '1000',
        MEMORY_BATCH_SIZE: '50',
        AGENT_LATENCY_MS: '20-60',
      },
      (vault) => {
        ids = writeGridCanvas(vault, 'Test/outage.canvas', 3, 60);
      },
    );
  }, 240_000);
  afterAll(async () => {
    await server?.close();
    await driver?.close();
    await neo?.dispose();
  }, 120_000);

  async function run(
    onLive?: (taskId: string) => Promise<void>,
  ): Promise<{ taskId: string; shape: Json; seconds: number }> {
    const started = await http<Json>('POST', `${server.url}/parallel/execute`, request());
    expect(started.status).toBe(202);
    const taskId = started.body.task_id as string;
    if (onLive) {
      const live = sseClient(`${server.url}/parallel/events/${taskId}`, {
        stopWhen: (_e, all) => all.filter((x) => x.event === 'task_completed').length >= 20,
      });
      await live.done;
      await onLive(taskId);
    }
    const final = await waitTerminal(server, taskId, 120_000);
    const events = await sseClient(`${server.url}/parallel/events/${taskId}`).done;
    return {
      taskId,
      shape: batchShape(final, events),
      seconds: final.performance_metrics.total_duration_seconds as number,
    };
  }

  it('reference: a batch with Neo4j up lands in the graph exactly once', async () => {
    const r = await run();
    Object.assign(reference, r);
    expect(r.shape.status).toBe('completed');
    await waitMemory(server.url, (s) => s.pending === 0);
    const graph = await graphEventsOf(driver, r.taskId);
    expect(graph).toHaveLength(181);
    expect(graph.every((e) => e.copies === 1)).toBe(true);
  }, 120_000);

  it('Neo4j killed mid-batch: the batch runs the same; after Neo4j restarts the backlog drains to one copy of each event', async () => {
    expect(reference.shape).toBeDefined();
    let statusAtKill = '';
    const r = await run(async () => {
      await neo.kill();
      statusAtKill = (await http<Json>('GET', `${server.url}/parallel/status/${reference.taskId}`)).body
        .status;
      const live = await http<Json>('GET', `${server.url}/parallel/tasks?status=running`);
      statusAtKill = (live.body.tasks as Json[]).length === 1 ? 'running' : `not running (${statusAtKill})`;
    });
    // the kill landed while the batch was running, and changed nothing the batch did
    expect(statusAtKill).toBe('running');
    expect(r.shape).toEqual(reference.shape);
    process.stderr.write(
      `[figures] 180-node batch makespan: ${reference.seconds} s with Neo4j up, ${r.seconds} s with Neo4j killed mid-batch\n`,
    );

    const down = await waitMemory(
      server.url,
      (s) => s.pending > 0 && s.failed_attempts > 0 && s.state === 'retrying',
    );
    expect(down.last_error).toEqual(expect.any(String));
    expect(down.next_retry_at).toEqual(expect.any(String));
    expect(JSON.stringify(down)).not.toContain(neo.password);
    expect(reachableSync(neo.uri)).toBe(false);

    await neo.start();
    const drained = await waitMemory(server.url, (s) => s.pending === 0, 180_000);
    expect(drained.delivered).toBe(362);
    for (const taskId of [reference.taskId!, r.taskId]) {
      const graph = await graphEventsOf(driver, taskId);
      expect(graph).toHaveLength(181);
      expect(graph.every((e) => e.copies === 1)).toBe(true);
      expect(await relationshipCounts(driver, taskId)).toEqual({
        events: 181,
        about: 180,
        inSession: 181,
        sessions: 1,
      });
    }
  }, 300_000);
});
