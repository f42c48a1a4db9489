import { execSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BatchOrchestrator } from '../src/orchestrator/batch-orchestrator.service';
import { MemoryOutbox } from '../src/memory/memory-outbox';
import { overlappingPairs, writeGridCanvas } from './support/canvas-fixtures';
import { http, readCanvas, sseClient, startServer, type TestServer, waitTerminal } from './support/harness';
import { instrumentRunner } from './support/instrument';
import { EDGE_SIDES } from '../src/canvas/layout';

type Json = Record<string, any>;

function execute(server: TestServer, body: Json | string, headers: Record<string, string> = {}) {
  return http<Json>('POST', `${server.url}/parallel/execute`, body, headers);
}

describe('batch orchestration end to end (real server, temp vault, SQLite, SSE)', () => {
  describe('3 groups × 20 nodes, AGENT_LATENCY_MS=50, max_concurrent 4', () => {
    let server: TestServer;
    let ids: string[][];
    let before: { nodes: Json[]; edges: Json[] };
    let final: Json;
    let events: Json[];
    let instr: ReturnType<typeof instrumentRunner>;

    beforeAll(async () => {
      server = await startServer({ AGENT_LATENCY_MS: '50' }, (vault) => {
        ids = writeGridCanvas(vault, 'Test/grid.canvas', 3, 20);
      });
      instr = instrumentRunner(server.app);
      before = readCanvas(server.vault, 'Test/grid.canvas');
      const res = await execute(server, {
        canvas_path: 'Test/grid.canvas',
        groups: ids.map((nodeIds, g) => ({
          group_id: g === 1 ? 1 : `g${g}`,
          agent_type: 'oral-explanation',
          node_ids: nodeIds,
        })),
        max_concurrent: 4,
      });
      expect(res.status).toBe(202);
      const sse = sseClient(`${server.url}/parallel/events/${res.body.task_id}`);
      events = await sse.done;
      final = await waitTerminal(server, res.body.task_id as string);
    });
    afterAll(() => server.close());

    it('never runs more than 4 agents at once, and reports the measured peak', () => {
      expect(instr.calls).toHaveLength(60);
      expect(instr.maxRunning()).toBe(4);
      expect(final.performance_metrics.peak_concurrent).toBe(4);
      expect(final.status).toBe('completed');
      expect(final.completed_nodes).toBe(60);
      expect(final.progress_percent).toBe(100);
    });

    it('answers status as JSON with an ETag, and 304 to a client that has that version', async () => {
      const url = `${server.url}/parallel/status/${final.task_id}`;
      const first = await fetch(url);
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const etag = first.headers.get('etag');
      expect(etag).toMatch(/^W\/"[0-9a-f]+-[\w-]+"$/);
      expect(await first.json()).toEqual(final);
      // (fetch adds `Cache-Control: no-cache` to a conditional request unless told otherwise, which asks for a 200)
      const conditional = { 'if-none-match': etag!, 'cache-control': 'max-age=0' };
      const again = await fetch(url, { headers: conditional });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe('');
      const summary = await fetch(`${url}?view=summary`, { headers: conditional });
      expect(summary.status).toBe(200); // another view, another version
      expect(summary.headers.get('etag')).not.toBe(etag);
    });

    it('measures metrics instead of estimating them', () => {
      const m = final.performance_metrics;
      const sum = final.groups
        .flatMap((g: Json) => g.results)
        .reduce((s: number, r: Json) => s + r.duration_ms, 0);
      expect(m.total_duration_seconds).toBeGreaterThan(0);
      expect(m.average_duration_per_node).toBeCloseTo(sum / 60 / 1000, 2);
      expect(m.parallel_efficiency).toBeCloseTo(sum / (m.total_duration_seconds * 1000 * 4), 1);
      expect(m.parallel_efficiency).toBeGreaterThan(0.5);
      expect(m.parallel_efficiency).toBeLessThanOrEqual(1.05);
    });

    it('echoes group ids as given and writes every reported file with its reported size', () => {
      expect(final.groups.map((g: Json) => g.group_id)).toEqual(['g0', 1, 'g2']);
      for (const g of final.groups) {
        expect(g.status).toBe('completed');
        expect(g.results).toHaveLength(20);
        for (const r of g.results) {
          const file = path.join(server.vault, r.file_path);
          expect(statSync(file).size).toBe(r.file_size);
          expect(readFileSync(file, 'utf8')).toMatch(/^# oral-explanation: Topic \d+-\d+\n/);
          expect(r.file_path).toMatch(
            /^Test\/grid-explanations\/oral-explanation - Topic \d+-\d+ - [0-9a-f]{12}\.md$/,
          );
        }
      }
    });

    it('adds exactly 60 file nodes and 60 edges without overlaps, leaving every original node and edge unchanged', () => {
      const after = readCanvas(server.vault, 'Test/grid.canvas');
      expect(after.nodes.slice(0, before.nodes.length)).toEqual(before.nodes);
      expect(after.edges.slice(0, before.edges.length)).toEqual(before.edges);
      const added = after.nodes.slice(before.nodes.length);
      const addedEdges = after.edges.slice(before.edges.length);
      expect(added).toHaveLength(60);
      expect(addedEdges).toHaveLength(60);
      expect(added.every((n) => n.type === 'file')).toBe(true);
      expect(overlappingPairs(added as never, after.nodes as never)).toEqual([]);
      for (const e of addedEdges) {
        const target = added.find((n) => n.id === e.toNode);
        expect(target).toBeDefined();
        expect(e.label).toBe('oral-explanation');
        // attached on the side of the source the card went to (under it, or beside it when that space is taken)
        expect(Object.values(EDGE_SIDES)).toContainEqual({ fromSide: e.fromSide, toSide: e.toSide });
        expect(ids.flat()).toContain(e.fromNode);
      }
      const raw = readFileSync(path.join(server.vault, 'Test/grid.canvas'), 'utf8');
      expect(raw).toMatch(/^\{\n\t"nodes": \[/);
      expect(JSON.parse(raw)['x-canvas-meta']).toEqual({ version: 3 });
    });

    it('streams the whole lifecycle: one event per node, groups, session_completed last, ids 1..n', () => {
      expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
      expect(events.filter((e) => e.event === 'task_completed')).toHaveLength(60);
      expect(
        events
          .filter((e) => e.event === 'group_completed')
          .map((e) => e.data.data.group_id)
          .sort(),
      ).toEqual([1, 'g0', 'g2'].sort());
      expect(events.at(-1)!.event).toBe('session_completed');
      expect(events.at(-1)!.data.data).toMatchObject({
        status: 'completed',
        success_count: 60,
        failure_count: 0,
      });
      expect(events[0].event).toBe('progress_update');
    });

    it('hands every completed node to the memory outbox with its mapped memory type', async () => {
      const outbox = await server.app.get(MemoryOutbox).forTask(final.task_id);
      const nodeEvents = outbox.filter((e) => e.nodeId !== null);
      expect(nodeEvents).toHaveLength(60);
      expect(new Set(nodeEvents.map((e) => e.nodeId)).size).toBe(60);
      expect(
        nodeEvents.every(
          (e) => e.memoryType === 'explanation_generated' && e.agentType === 'oral-explanation',
        ),
      ).toBe(true);
      expect(nodeEvents[0].concept).toMatch(/^Topic \d+-\d+$/);
      expect(outbox.filter((e) => e.memoryType === 'canvas_opened')).toHaveLength(1);
    });
  });

  describe('GLOBAL_MAX_CONCURRENT=3 with two batches at once', () => {
    let server: TestServer;
    afterAll(() => server.close());

    it('never runs more than 3 agents in the process', async () => {
      let ids: string[][] = [];
      server = await startServer({ AGENT_LATENCY_MS: '30', GLOBAL_MAX_CONCURRENT: '3' }, (vault) => {
        ids = writeGridCanvas(vault, 'Test/two.canvas', 2, 12);
      });
      const instr = instrumentRunner(server.app);
      const [a, b] = await Promise.all(
        ids.map((nodeIds, i) =>
          execute(server, {
            canvas_path: 'Test/two.canvas',
            groups: [{ group_id: i, agent_type: 'memory-anchor', node_ids: nodeIds }],
            max_concurrent: 10,
          }),
        ),
      );
      const [fa, fb] = await Promise.all([
        waitTerminal(server, a.body.task_id),
        waitTerminal(server, b.body.task_id),
      ]);
      expect([fa.status, fb.status]).toEqual(['completed', 'completed']);
      expect(instr.calls).toHaveLength(24);
      expect(instr.maxRunning()).toBe(3);
      expect(fa.performance_metrics.peak_concurrent).toBeLessThanOrEqual(3);
      const canvas = readCanvas(server.vault, 'Test/two.canvas');
      expect(canvas.nodes.filter((n) => n.type === 'file')).toHaveLength(24);
    });
  });

  describe('partial failure', () => {
    let server: TestServer;
    afterAll(() => server.close());

    it('isolates failing nodes: removed nodes fail NODE_NOT_FOUND, empty ones AGENT_ERROR, all others complete', async () => {
      let ids: string[][] = [];
      server = await startServer({ AGENT_LATENCY_MS: '40' }, (vault) => {
        ids = writeGridCanvas(vault, 'Test/partial.canvas', 2, 8, (g, i) =>
          g === 0 && i % 4 === 3 ? '   ' : `Node ${g}-${i} about photosynthesis.`,
        );
      });
      const res = await execute(server, {
        canvas_path: 'Test/partial.canvas',
        groups: [
          { group_id: 'a', agent_type: 'oral-explanation', node_ids: ids[0] },
          { group_id: 'b', agent_type: 'comparison-table', node_ids: ids[1] },
        ],
        max_concurrent: 2,
      });
      expect(res.status).toBe(202);
      // while the batch runs, another program (Obsidian) deletes the last three nodes of group b
      const file = path.join(server.vault, 'Test/partial.canvas');
      const removed = ids[1].slice(-3);
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      doc.nodes = doc.nodes.filter((n: Json) => !removed.includes(n.id));
      writeFileSync(file, JSON.stringify(doc, null, '\t'));
      const final = await waitTerminal(server, res.body.task_id);
      expect(final.status).toBe('partial_failure');
      const errors = final.groups.flatMap((g: Json) => g.errors);
      expect(
        errors
          .filter((e: Json) => e.error_type === 'AGENT_ERROR')
          .map((e: Json) => e.node_id)
          .sort(),
      ).toEqual(['g0n3', 'g0n7']);
      expect(
        errors
          .filter((e: Json) => e.error_type === 'NODE_NOT_FOUND')
          .map((e: Json) => e.node_id)
          .sort(),
      ).toEqual([...removed].sort());
      expect(
        errors.every((e: Json) => typeof e.error_message === 'string' && e.error_message.length > 0),
      ).toBe(true);
      expect(final.completed_nodes).toBe(16 - 5);
      expect(final.failed_nodes).toBe(5);
      expect(final.groups.map((g: Json) => g.status)).toEqual(['partial_failure', 'partial_failure']);
      const after = readCanvas(server.vault, 'Test/partial.canvas');
      expect(after.nodes.some((n) => removed.includes(n.id))).toBe(false);
      expect(after.nodes.filter((n) => n.type === 'file')).toHaveLength(11);
    });
  });

  describe('cancel', () => {
    let server: TestServer;
    let ids: string[][];
    beforeAll(async () => {
      server = await startServer({ AGENT_LATENCY_MS: '150' }, (vault) => {
        ids = writeGridCanvas(vault, 'Test/cancel.canvas', 1, 12);
      });
    });
    afterAll(() => server.close());

    it('graceful: no node starts after the reply, running ones finish and keep their results', async () => {
      const instr = instrumentRunner(server.app);
      const res = await execute(server, {
        canvas_path: 'Test/cancel.canvas',
        groups: [{ group_id: 'c', agent_type: 'example-teaching', node_ids: ids[0] }],
        max_concurrent: 3,
      });
      const sse = sseClient(`${server.url}/parallel/events/${res.body.task_id}`);
      await new Promise((r) => setTimeout(r, 220)); // first wave done, second wave running
      const cancel = await http<Json>('DELETE', `${server.url}/parallel/cancel/${res.body.task_id}`);
      const replyAt = Date.now();
      const startedBeforeCancel = instr.starts.length;
      expect(startedBeforeCancel).toBeGreaterThan(0);
      expect(startedBeforeCancel).toBeLessThan(12);
      expect(cancel.status).toBe(200);
      expect(cancel.body).toMatchObject({ success: true });
      const final = await waitTerminal(server, res.body.task_id);
      const events = await sse.done;
      expect(final.status).toBe('cancelled');
      expect(instr.starts.every((s) => s.at <= replyAt)).toBe(true);
      expect(instr.starts).toHaveLength(startedBeforeCancel);
      expect(final.completed_nodes).toBe(startedBeforeCancel);
      expect(final.failed_nodes).toBe(0);
      expect(final.skipped_nodes).toBe(12 - startedBeforeCancel);
      expect(events.slice(-2).map((e) => e.event)).toEqual(['cancelled', 'session_completed']);
      expect(events.at(-2)!.data.data).toEqual({
        status: 'cancelled',
        completed_before_cancel: startedBeforeCancel,
      });
      expect(final.groups[0].status).toBe('cancelled');
      expect((await http('DELETE', `${server.url}/parallel/cancel/${res.body.task_id}`)).status).toBe(409);
    });

    it('mode=abort aborts the running nodes through their AbortSignal', async () => {
      const res = await execute(server, {
        canvas_path: 'Test/cancel.canvas',
        groups: [{ group_id: 'c', agent_type: 'hint-generation', node_ids: ids[0] }],
        max_concurrent: 4,
      });
      // wait until the four slots are busy, then abort
      for (let i = 0; i < 200; i++) {
        const health = await http<Json>('GET', `${server.url}/health`);
        if (health.body.running_agents === 4) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const cancel = await http<Json>('POST', `${server.url}/parallel/cancel/${res.body.task_id}?mode=abort`);
      expect(cancel.status).toBe(200);
      expect(cancel.body.status).toBe('cancelled');
      const final = await waitTerminal(server, res.body.task_id);
      expect(final.status).toBe('cancelled');
      const aborted = final.groups[0].errors;
      expect(aborted.length).toBeGreaterThanOrEqual(1);
      expect(aborted.every((e: Json) => e.error_type === 'CANCELLED')).toBe(true);
      expect(final.completed_nodes + aborted.length + final.skipped_nodes).toBe(12);
      expect(final.skipped_nodes).toBeGreaterThanOrEqual(4);
    });

    it('rejects a bad mode and cancels a pending task started through the service', async () => {
      const bad = await http<Json>(
        'DELETE',
        `${server.url}/parallel/cancel/00000000-0000-4000-8000-000000000000?mode=now`,
      );
      expect(bad.status).toBe(400);
      expect(bad.type).toContain('application/problem+json');
    });
  });

  describe('deadline (shortened through the in-process API; HTTP still validates 60..3600 s)', () => {
    let server: TestServer;
    let ids: string[][];
    beforeAll(async () => {
      server = await startServer({ AGENT_LATENCY_MS: '250' }, (vault) => {
        ids = writeGridCanvas(vault, 'Test/deadline.canvas', 1, 6);
      });
    });
    afterAll(() => server.close());

    it('aborts running nodes, skips the rest, sends error TIMEOUT, ends partial_failure when something completed', async () => {
      const orchestrator = server.app.get(BatchOrchestrator);
      const { task } = await orchestrator.submit({
        canvasPath: 'Test/deadline.canvas',
        groups: [{ groupId: 'd', agentType: 'oral-explanation', nodeIds: ids[0] }],
        maxConcurrent: 1,
        timeoutMs: 700,
      });
      const sse = sseClient(`${server.url}/parallel/events/${task.taskId}`);
      const events = await sse.done;
      const final = await waitTerminal(server, task.taskId);
      expect(final.status).toBe('partial_failure');
      expect(final.completed_nodes).toBeGreaterThanOrEqual(1);
      expect(final.failed_nodes).toBe(1); // the node running at the deadline, aborted
      expect(final.groups[0].errors[0].error_type).toBe('TIMEOUT');
      expect(final.skipped_nodes).toBe(6 - final.completed_nodes - 1);
      expect(final.error_message).toMatch(/deadline/);
      const error = events.find((e) => e.event === 'error');
      expect(error?.data.data).toMatchObject({ error_type: 'TIMEOUT', recoverable: false });
      expect(events.at(-1)!.event).toBe('session_completed');
    });

    it('ends failed when the deadline passes with nothing done', async () => {
      const { task } = await server.app.get(BatchOrchestrator).submit({
        canvasPath: 'Test/deadline.canvas',
        groups: [{ groupId: 'd', agentType: 'oral-explanation', nodeIds: ids[0] }],
        maxConcurrent: 2,
        timeoutMs: 50,
      });
      const final = await waitTerminal(server, task.taskId);
      expect(final.status).toBe('failed');
      expect(final.completed_nodes).toBe(0);
    });

    it('refuses a timeout outside 60..3600 over HTTP', async () => {
      for (const timeout of [59, 3601, 1.5]) {
        const res = await execute(server, {
          canvas_path: 'Test/deadline.canvas',
          groups: [{ group_id: 1, agent_type: 'oral-explanation', node_ids: ids[0] }],
          timeout,
        });
        expect(res.status).toBe(400);
      }
    });
  });

  describe('bad input changes nothing', () => {
    let server: TestServer;
    beforeAll(async () => (server = await startServer()));
    afterAll(() => server.close());

    const snapshot = (dir: string): string => {
      return execSync(`find . -type f -print0 | sort -z | xargs -0 sha256sum`, { cwd: dir }).toString();
    };

    it('answers every bad request with problem+json and writes nothing', async () => {
      const vaultBefore = snapshot(server.vault);
      const good = {
        canvas_path: 'Biology/cells.canvas',
        groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ['b10c0ffee0000001'] }],
      };
      const cases: [Json | string, number][] = [
        ['{not json', 400],
        [{}, 400],
        [{ ...good, canvas_path: '../outside.canvas' }, 400],
        [{ ...good, canvas_path: '/etc/passwd.canvas' }, 400],
        [{ ...good, canvas_path: 'Biology/%2e%2e/%2e%2e/x.canvas' }, 400],
        [{ ...good, canvas_path: 'Biology/cells.md' }, 400],
        [{ ...good, canvas_path: 'Biology/missing.canvas' }, 404],
        [{ ...good, groups: [] }, 400],
        [{ ...good, groups: [{ ...good.groups[0], agent_type: 'nope' }] }, 400],
        [{ ...good, groups: [{ ...good.groups[0], agent_type: 'canvas-orchestrator' }] }, 400],
        [{ ...good, groups: [{ ...good.groups[0], node_ids: [] }] }, 400],
        [{ ...good, groups: [{ ...good.groups[0], node_ids: ['x', 'x'] }] }, 400],
        [{ ...good, groups: [{ ...good.groups[0], group_id: 1.5 }] }, 400],
        [{ ...good, groups: [good.groups[0], good.groups[0]] }, 422], // a repeated group_id alone: duplicate-group-ids
        [{ ...good, max_concurrent: 0 }, 400],
        [{ ...good, max_concurrent: 51 }, 400],
        [{ ...good, extra: true }, 400],
        [
          { ...good, groups: [{ ...good.groups[0], node_ids: ['b10c0ffee0000001', 'ghost-1', 'ghost-2'] }] },
          422,
        ],
      ];
      for (const [body, status] of cases) {
        const res = await execute(server, body);
        expect({ body, status: res.status }).toEqual({ body, status });
        expect(res.type).toContain('application/problem+json');
        expect(res.body).toMatchObject({
          status,
          title: expect.any(String),
          detail: expect.any(String),
          type: expect.any(String),
        });
      }
      const unknown = await execute(server, cases.at(-1)![0]);
      expect(unknown.body.errors.map((e: Json) => e.message)).toEqual([
        expect.stringContaining('ghost-1'),
        expect.stringContaining('ghost-2'),
      ]);
      expect(snapshot(server.vault)).toBe(vaultBefore);
      expect((await http<Json>('GET', `${server.url}/parallel/tasks`)).body.tasks).toEqual([]);
    });

    it('refuses a symlink that leads out of the vault', async () => {
      const outside = mkdtempSync(path.join(tmpdir(), 'outside-'));
      writeFileSync(path.join(outside, 'x.canvas'), '{"nodes":[],"edges":[]}');
      symlinkSync(outside, path.join(server.vault, 'escape'));
      const res = await execute(server, {
        canvas_path: 'escape/x.canvas',
        groups: [{ group_id: 1, agent_type: 'oral-explanation', node_ids: ['a'] }],
      });
      expect(res.status).toBe(400);
      expect(res.body.type).toMatch(/canvas-path-outside-vault/);
    });

    it('gives 400 for malformed and 404 for unknown task ids on status, cancel and events', async () => {
      const unknown = '3b241101-e2bb-4255-8caf-4136c566a962';
      for (const [method, route] of [
        ['GET', 'status'],
        ['DELETE', 'cancel'],
        ['POST', 'cancel'],
        ['GET', 'events'],
      ]) {
        const bad = await http<Json>(method, `${server.url}/parallel/${route}/not-a-uuid`);
        expect([route, bad.status, bad.type]).toEqual([
          route,
          400,
          expect.stringContaining('application/problem+json'),
        ]);
        const missing = await http<Json>(method, `${server.url}/parallel/${route}/${unknown}`);
        expect([route, missing.status]).toEqual([route, 404]);
      }
    });

    it('returns the first task for a repeated Idempotency-Key and refuses the key with another body', async () => {
      const body = {
        canvas_path: 'Biology/cells.canvas',
        groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ['b10c0ffee0000001'] }],
      };
      const first = await execute(server, body, { 'idempotency-key': 'key-1' });
      const again = await execute(server, body, { 'idempotency-key': 'key-1' });
      expect(first.status).toBe(202);
      expect(again.status).toBe(200);
      expect(again.body.task_id).toBe(first.body.task_id);
      const other = await execute(server, { ...body, max_concurrent: 3 }, { 'idempotency-key': 'key-1' });
      expect(other.status).toBe(422);
      await waitTerminal(server, first.body.task_id);
      const tasks = (await http<Json>('GET', `${server.url}/parallel/tasks?status=completed&limit=5`)).body
        .tasks;
      expect(tasks.map((t: Json) => t.task_id)).toEqual([first.body.task_id]);
      expect(existsSync(path.join(server.vault, 'Biology/cells-explanations'))).toBe(true);
    });
  });
});
