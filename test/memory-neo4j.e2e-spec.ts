import Database from 'better-sqlite3';
import type { Driver } from 'neo4j-driver';
import neo4j from 'neo4j-driver';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUNDLED_VAULT } from '../src/config/example-vault';
import { MemoryOutbox, MemoryStore } from '../src/memory';
import { writeGridCanvas } from './support/canvas-fixtures';
import { http, startServer, type TestServer, waitTerminal } from './support/harness';
import { graphEventsOf, relationshipCounts, waitMemory } from './support/memory-graph';
import { describeWithService, neo4jFromEnv, reachableSync } from './support/neo4j';
import { freePort, type ServiceProcess, startService } from './support/service-process';

type Json = Record<string, any>;

const env = neo4jFromEnv();
const missing = !env
  ? 'NEO4J_URI is not set (.ci/run starts test/neo4j-launcher and sets it; see docs/testing.md "Neo4j")'
  : !reachableSync(env.uri)
    ? `NEO4J_URI ${env.uri} is not reachable`
    : undefined;

const CANVAS = 'Biology/cells.canvas';

/** Waits (bounded) for a log line of a service process; returns the match. */
async function waitOutput(service: ServiceProcess, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(service.output.join(''));
    if (m) return m[0];
    if (Date.now() > end) throw new Error(`no log line ${String(pattern)}:\n${service.output.join('')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const [N1, N2, N3] = ['b10c0ffee0000001', 'b10c0ffee0000002', '4e0b7a91c2d35f68'];

describeWithService('learning memory in a real Neo4j (NEO4J_URI)', missing, () => {
  // (a skipped suite's body still runs, without its hooks or tests)
  const neo = env ?? { uri: 'bolt://unset', user: '', password: '' };
  let driver: Driver;
  const neoEnv = {
    NEO4J_URI: neo.uri,
    NEO4J_USER: neo.user,
    NEO4J_PASSWORD: neo.password,
    MEMORY_RETRY_MAX_MS: '500',
  };

  beforeAll(() => {
    driver = neo4j.driver(neo.uri, neo4j.auth.basic(neo.user, neo.password), {
      disableLosslessIntegers: true,
    });
  });
  afterAll(() => driver.close());

  describe('one batch', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startServer(neoEnv);
    }, 60_000);
    afterAll(() => server.close());

    it('lands in the graph exactly once, with its types and relationships (queried back with Cypher)', async () => {
      const started = await http<Json>('POST', `${server.url}/parallel/execute`, {
        canvas_path: CANVAS,
        groups: [
          { group_id: 'explain', agent_type: 'oral-explanation', node_ids: [N1, N2] },
          { group_id: 'anchor', agent_type: 'memory-anchor', node_ids: [N3] },
          { group_id: 'score', agent_type: 'scoring', node_ids: [N1] },
        ],
      });
      expect(started.status).toBe(202);
      const taskId = started.body.task_id as string;
      expect((await waitTerminal(server, taskId)).status).toBe('completed');
      const status = await waitMemory(server.url, (s) => s.pending === 0 && s.delivered >= 5);
      expect(status).toMatchObject({ store: 'neo4j', target: `Neo4j at ${neo.uri}`, failed_attempts: 0 });
      expect(JSON.stringify(status)).not.toContain(neo.password);

      const outbox = await server.app.get(MemoryOutbox).forTask(taskId);
      const concepts = new Map(outbox.map((e) => [e.eventId, e.concept]));
      const graph = await graphEventsOf(driver, taskId);
      expect(graph.map((e) => [e.nodeId, e.type, e.agentType, e.copies])).toEqual([
        [N3, 'node_created', 'memory-anchor', 1],
        [N1, 'explanation_generated', 'oral-explanation', 1],
        [N1, 'scoring_completed', 'scoring-agent', 1],
        [N2, 'explanation_generated', 'oral-explanation', 1],
        [null, 'canvas_opened', 'canvas-orchestrator', 1],
      ]);
      expect(new Set(graph.map((e) => e.eventId))).toEqual(new Set(outbox.map((e) => e.eventId)));
      for (const e of graph) {
        expect(e.sessions).toEqual([taskId]);
        expect(e.concept).toBe(concepts.get(e.eventId));
        if (e.nodeId === null) {
          expect({ about: e.about, canvases: e.canvases, concepts: e.concepts }).toEqual({
            about: [],
            canvases: [],
            concepts: [],
          });
        } else {
          expect({ about: e.about, canvases: e.canvases, concepts: e.concepts }).toEqual({
            about: [e.nodeId],
            canvases: [CANVAS],
            concepts: [e.concept],
          });
          expect(e.concept.length).toBeGreaterThan(0);
        }
      }
      expect(await relationshipCounts(driver, taskId)).toEqual({
        events: 5,
        about: 4,
        inSession: 5,
        sessions: 1,
      });
      const session = await driver.executeQuery(
        `MATCH (s:BatchSession {task_id: $taskId})-[:ON_CANVAS]->(c:Canvas)
         RETURN c.path AS canvas, s.started_at IS NOT NULL AS started,
                COUNT { (c)-[:CONTAINS_NODE]->(:Node) } >= 3 AS nodes`,
        { taskId },
      );
      expect(session.records.map((r) => r.toObject())).toEqual([
        { canvas: CANVAS, started: true, nodes: true },
      ]);

      // the graph model's constraints were created at start-up
      const constraints = await driver.executeQuery(
        'SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names',
      );
      expect(constraints.records[0].get('names')).toEqual(
        expect.arrayContaining([
          'learning_event_id',
          'canvas_path',
          'node_canvas_path_node_id',
          'batch_session_task_id',
          'concept_name',
        ]),
      );

      // at-least-once is harmless: delivering the same events again changes nothing
      const store = server.app.get(MemoryStore);
      await expect(store.deliver(outbox)).resolves.toEqual({ stored: 5 });
      await expect(store.deliver(outbox.slice(0, 2))).resolves.toEqual({ stored: 2 });
      expect((await graphEventsOf(driver, taskId)).map((e) => e.copies)).toEqual([1, 1, 1, 1, 1]);
      expect(await relationshipCounts(driver, taskId)).toEqual({
        events: 5,
        about: 4,
        inSession: 5,
        sessions: 1,
      });
    }, 180_000);
  });

  describe('SIGKILL with events pending, then restarts (real service processes)', () => {
    let root: string;
    let vault: string;
    let dataDir: string;
    let service: ServiceProcess | undefined;
    beforeAll(() => {
      root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-memory-kill-'));
      vault = path.join(root, 'vault');
      dataDir = path.join(root, 'data');
      cpSync(BUNDLED_VAULT, vault, { recursive: true });
    });
    afterAll(async () => {
      await service?.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    });

    it('delivers every pending event after the restart, still exactly once (also a batch Neo4j took but the outbox never marked)', async () => {
      const ids = writeGridCanvas(vault, 'Test/memory-kill.canvas', 2, 20);
      const port = String(await freePort());
      const base = { PORT: port, VAULT_ROOT: vault, DATA_DIR: dataDir, AGENT_LATENCY_MS: '5-15' };

      // 1. Neo4j unreachable (nothing listens on that port): the batch completes, its events wait in the outbox
      const deadPort = String(await freePort());
      service = await startService({
        ...base,
        ...neoEnv,
        NEO4J_URI: `bolt://127.0.0.1:${deadPort}`,
      });
      const line = await waitOutput(service, /learning memory store unreachable at start-up[^"]*/);
      expect(line).toContain(`Neo4j at bolt://127.0.0.1:${deadPort}`);
      expect(line).toContain('The service runs on');
      expect(service.output.join('')).not.toContain(neo.password);
      const started = await http<Json>('POST', `${service.url}/parallel/execute`, {
        canvas_path: 'Test/memory-kill.canvas',
        groups: [
          { group_id: 'a', agent_type: 'oral-explanation', node_ids: ids[0] },
          { group_id: 'b', agent_type: 'memory-anchor', node_ids: ids[1] },
        ],
      });
      const taskId = started.body.task_id as string;
      expect((await waitTerminal(service, taskId, 60_000)).status).toBe('completed');
      const before = await waitMemory(service.url, (s) => s.pending === 41 && s.failed_attempts > 0);
      expect(before).toMatchObject({ delivered: 0, state: 'retrying' });
      expect(before.last_error).toEqual(expect.any(String));
      expect(before.oldest_pending_age_seconds).toBeGreaterThanOrEqual(0);
      await service.kill('SIGKILL');

      // 2. Neo4j reachable, batches of 5; killed right after Neo4j confirmed the 2nd batch, before the outbox knew
      service = await startService({
        ...base,
        ...neoEnv,
        MEMORY_BATCH_SIZE: '5',
        CANVAS_BATCH_FAILPOINTS: 'memory.before-mark@2',
      });
      expect(await service.exited).toEqual({ code: null, signal: 'SIGKILL' });
      const db = new Database(path.join(dataDir, 'canvas-batch.sqlite'), { readonly: true });
      const marked = db
        .prepare('SELECT count(*) AS n FROM memory_outbox WHERE delivered_at IS NOT NULL')
        .get();
      db.close();
      expect(marked).toEqual({ n: 5 });
      const inGraph = await graphEventsOf(driver, taskId);
      expect(inGraph).toHaveLength(10);

      // 3. a clean restart drains the rest: the 5 events Neo4j already had are delivered again, and merged
      service = await startService({ ...base, ...neoEnv });
      const after = await waitMemory(service.url, (s) => s.pending === 0);
      expect(after).toMatchObject({ delivered: 41, failed_attempts: 0 });
      const graph = await graphEventsOf(driver, taskId);
      expect(graph).toHaveLength(41);
      expect(graph.every((e) => e.copies === 1)).toBe(true);
      expect(graph.filter((e) => e.type === 'canvas_opened')).toHaveLength(1);
      expect(graph.filter((e) => e.type === 'explanation_generated').map((e) => e.nodeId)).toEqual(
        [...ids[0]].sort(),
      );
      expect(graph.filter((e) => e.type === 'node_created').map((e) => e.nodeId)).toEqual([...ids[1]].sort());
      expect(await relationshipCounts(driver, taskId)).toEqual({
        events: 41,
        about: 40,
        inSession: 41,
        sessions: 1,
      });
      await service.kill('SIGTERM');
    }, 300_000);
  });
});
