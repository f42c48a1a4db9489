import { DurationEstimates } from '../src/orchestrator/concurrency/duration-estimates';
import { writeGridCanvas } from './support/canvas-fixtures';
import { http, sseClient, startServer, type TestServer, waitTerminal } from './support/harness';
import { instrumentRunner } from './support/instrument';

type Json = Record<string, any>;

const execute = (server: TestServer, body: Json) =>
  http<Json>('POST', `${server.url}/parallel/execute`, body);
const status = (server: TestServer, id: string, query = '') =>
  http<Json>('GET', `${server.url}/parallel/status/${id}${query}`);

describe('scheduling between and within batches (real server)', () => {
  describe('round-robin between batches: GLOBAL_MAX_CONCURRENT=4, a 200-node batch with max_concurrent 50', () => {
    let server: TestServer;
    let ids: string[][];
    beforeAll(async () => {
      server = await startServer({ GLOBAL_MAX_CONCURRENT: '4', AGENT_LATENCY_MS: '20' }, (vault) => {
        ids = writeGridCanvas(vault, 'Sched/big.canvas', 2, 100);
        writeGridCanvas(vault, 'Sched/small.canvas', 1, 5);
      });
    });
    afterAll(() => server.close());

    it('a small batch submitted while the big one runs gets its turn at once instead of queueing behind 46 waiters', async () => {
      const instr = instrumentRunner(server.app);
      const big = await execute(server, {
        canvas_path: 'Sched/big.canvas',
        groups: [{ group_id: 'all', agent_type: 'oral-explanation', node_ids: ids.flat() }],
        max_concurrent: 50,
      });
      expect(big.status).toBe(202);
      const bigId = big.body.task_id as string;
      // wait until the big batch runs and has filled the global queue
      for (let i = 0; i < 400; i++) {
        const s = await status(server, bigId);
        if (s.body.scheduler?.global_waiting >= 40) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const running = await status(server, bigId);
      expect(running.body.scheduler).toMatchObject({
        policy: 'least-work',
        global_limit: 4,
        global_capacity: 4,
        global_in_use: 4,
      });
      expect(running.body.scheduler.waiting_for_slot).toBeGreaterThanOrEqual(40);
      const small = await execute(server, {
        canvas_path: 'Sched/small.canvas',
        groups: [
          {
            group_id: 's',
            agent_type: 'oral-explanation',
            node_ids: ['g0n0', 'g0n1', 'g0n2', 'g0n3', 'g0n4'],
          },
        ],
        max_concurrent: 5,
      });
      const smallDone = await waitTerminal(server, small.body.task_id as string, 60_000);
      expect(smallDone.status).toBe('completed');
      // FIFO would start the ~46 big nodes already waiting first; round-robin alternates from the next free slot
      const order = instr.calls.map((c) => (c.node.canvasPath.endsWith('small.canvas') ? 'S' : 'B'));
      const firstSmall = order.indexOf('S');
      const lastSmall = order.lastIndexOf('S');
      expect(order.filter((o) => o === 'S')).toHaveLength(5);
      expect(lastSmall - firstSmall).toBeLessThanOrEqual(12);
      const bigDone = await waitTerminal(server, bigId, 60_000);
      expect(bigDone.status).toBe('completed');
      // and it got them early in the big batch's run, not at its end
      expect(instr.calls.slice(lastSmall).length).toBeGreaterThan(100);
      expect(bigDone.scheduler).toBeUndefined(); // only while running
      expect(bigDone.performance_metrics.peak_concurrent).toBeLessThanOrEqual(4);
    });
  });

  describe('longest expected first within a batch, from learned and persisted estimates', () => {
    let server: TestServer;
    let ids: string[][];
    beforeAll(async () => {
      server = await startServer({ GLOBAL_MAX_CONCURRENT: '1' }, (vault) => {
        ids = writeGridCanvas(vault, 'Sched/lef.canvas', 3, 3);
      });
    });
    afterAll(() => server.close());

    it('starts the groups whose agent type is expected to take longest first, unknown types counting as longest', async () => {
      const estimates = server.app.get(DurationEstimates);
      estimates.observe('oral-explanation', 10);
      estimates.observe('comparison-table', 400);
      const instr = instrumentRunner(server.app);
      const res = await execute(server, {
        canvas_path: 'Sched/lef.canvas',
        groups: [
          { group_id: 'short', agent_type: 'oral-explanation', node_ids: ids[0] },
          { group_id: 'long', agent_type: 'comparison-table', node_ids: ids[1] },
          { group_id: 'new', agent_type: 'memory-anchor', node_ids: ids[2] },
        ],
        max_concurrent: 1,
      });
      const sse = sseClient(`${server.url}/parallel/events/${res.body.task_id}`);
      await sse.done;
      expect(instr.calls.map((c) => c.agentType)).toEqual([
        ...Array(3).fill('comparison-table'),
        ...Array(3).fill('memory-anchor'),
        ...Array(3).fill('oral-explanation'),
      ]);
      expect(instr.calls.slice(0, 3).map((c) => c.node.nodeId)).toEqual(ids[1]); // submission order within a group
      // what the batch measured is learned and kept (the next process starts with it)
      const learned = estimates.snapshot();
      expect(learned['memory-anchor'].samples).toBe(3);
      expect(learned['oral-explanation'].samples).toBe(4);
    });
  });

  describe('status of large tasks: pages and summary', () => {
    let server: TestServer;
    let ids: string[][];
    let taskId: string;
    beforeAll(async () => {
      server = await startServer({}, (vault) => {
        ids = writeGridCanvas(vault, 'Sched/page.canvas', 1, 25);
      });
      const res = await execute(server, {
        canvas_path: 'Sched/page.canvas',
        groups: [
          {
            group_id: 'g',
            agent_type: 'oral-explanation',
            node_ids: [...ids[0], 'missing-node'].slice(0, 25),
          },
        ],
      });
      taskId = res.body.task_id as string;
      await waitTerminal(server, taskId);
    });
    afterAll(() => server.close());

    it('lists everything by default for a small task, as API.md documents', async () => {
      const { body } = await status(server, taskId);
      expect(body.groups[0].results).toHaveLength(25);
      expect(body.results_page).toBeUndefined();
    });

    it('pages results per group, in the order they finished, with the page in the response', async () => {
      const all = (await status(server, taskId)).body.groups[0].results as Json[];
      const { status: code, body } = await status(server, taskId, '?results_offset=20&results_limit=10');
      expect(code).toBe(200);
      expect(body.groups[0].results).toEqual(all.slice(20));
      expect(body.results_page).toEqual({ offset: 20, limit: 10 });
      expect(body.completed_nodes).toBe(25);
      const first = (await status(server, taskId, '?results_limit=10')).body;
      expect(first.groups[0].results).toEqual(all.slice(0, 10));
    });

    it('gives counts and totals only with view=summary', async () => {
      const { body } = await status(server, taskId, '?view=summary');
      expect(body.groups[0]).toMatchObject({ completed_nodes: 25, results: [], errors: [] });
      expect(body.results_page).toEqual({ offset: 0, limit: 0 });
      expect(body.performance_metrics.total_duration_seconds).toBeGreaterThanOrEqual(0);
    });

    it('refuses bad paging parameters with problem+json naming them', async () => {
      for (const q of [
        '?results_limit=-1',
        '?results_limit=abc',
        '?results_offset=1.5',
        '?view=all',
        '?results_limit=10001',
      ]) {
        const res = await status(server, taskId, q);
        expect(res.status).toBe(400);
        expect(res.type).toContain('application/problem+json');
        expect(JSON.stringify(res.body.errors)).toMatch(/results_limit|results_offset|view/);
      }
    });
  });
});
