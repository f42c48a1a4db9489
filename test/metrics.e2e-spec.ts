import { MemoryOutbox } from '../src/memory/memory-outbox';
import { writeDemoCanvas } from './support/demo-canvas';
import { http, sseClient, startServer, type TestServer } from './support/harness';
import { parsePrometheusText, type PromFamily, promValue } from './support/prometheus-text';

type Json = Record<string, any>;

type Families = Map<string, PromFamily>;
const sample = promValue;
const parsePrometheus = parsePrometheusText;

describe('/metrics (Prometheus text format)', () => {
  let server: TestServer;
  let canvas: ReturnType<typeof writeDemoCanvas>;

  beforeAll(async () => {
    server = await startServer(
      { AGENT_LATENCY_MS: '10-20', API_TOKEN: 'metrics-token-0123456789' },
      (vault) => {
        canvas = writeDemoCanvas(vault, 'Metrics/demo.canvas', { '1': 5, '4': 3 }, 2);
      },
    );
  });
  afterAll(() => server.close());

  const auth = { authorization: 'Bearer metrics-token-0123456789' };
  const scrape = async (): Promise<Families> => {
    const res = await fetch(`${server.url}/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(await res.text());
  };

  it('needs the token like every route but /health', async () => {
    const denied = await http('GET', `${server.url}/metrics`);
    expect(denied.status).toBe(401);
    expect(denied.type).toContain('application/problem+json');
  });

  it('counts a known batch: nodes by agent/outcome/error type, latency, tasks by status, HTTP durations', async () => {
    const before = await scrape();
    expect(sample(before, 'canvas_batch_tasks', { status: 'partial_failure' })).toBe(0);

    const res = await http<Json>(
      'POST',
      `${server.url}/parallel/execute`,
      {
        canvas_path: 'Metrics/demo.canvas',
        groups: [
          { group_id: 'a', agent_type: 'oral-explanation', node_ids: canvas.byColor['1'] },
          {
            group_id: 'b',
            agent_type: 'basic-decomposition',
            node_ids: [...canvas.byColor['4'], ...canvas.missing],
          },
        ],
      },
      auth,
    );
    expect(res.status).toBe(202);
    const final = await waitTerminalWithToken(server.url, res.body.task_id as string);
    expect(final.status).toBe('partial_failure');
    // the learning-memory drain loop runs on its own: let it settle so the backlog gauge and the outbox agree
    const outbox = server.app.get(MemoryOutbox);
    for (let i = 0; i < 200 && (await outbox.counts()).pending > 0; i++)
      await new Promise((r) => setTimeout(r, 25));

    const m = await scrape();
    expect(sample(m, 'canvas_batch_nodes_total', { agent: 'oral-explanation', outcome: 'completed' })).toBe(
      5,
    );
    expect(
      sample(m, 'canvas_batch_nodes_total', { agent: 'basic-decomposition', outcome: 'completed' }),
    ).toBe(3);
    expect(
      sample(m, 'canvas_batch_nodes_total', {
        agent: 'basic-decomposition',
        outcome: 'failed',
        error_type: 'NODE_CONTENT_MISSING',
      }),
    ).toBe(2);
    const oral = { agent: 'oral-explanation' };
    expect(m.get('canvas_batch_agent_duration_seconds')!.type).toBe('histogram');
    expect(sample(m, 'canvas_batch_agent_duration_seconds_count', oral)).toBe(5);
    expect(sample(m, 'canvas_batch_agent_duration_seconds_count', { agent: 'basic-decomposition' })).toBe(3);
    // every completed node's duration is at least its 10 ms think time: none in the 5 ms bucket, all in +Inf
    expect(sample(m, 'canvas_batch_agent_duration_seconds_sum', oral)).toBeGreaterThanOrEqual(5 * 0.01);
    expect(sample(m, 'canvas_batch_agent_duration_seconds_bucket', { ...oral, le: '+Inf' })).toBe(5);
    expect(sample(m, 'canvas_batch_agent_duration_seconds_bucket', { ...oral, le: '0.005' })).toBe(0);

    expect(sample(m, 'canvas_batch_tasks', { status: 'partial_failure' })).toBe(1);
    expect(sample(m, 'canvas_batch_tasks', { status: 'running' })).toBe(0);
    expect(sample(m, 'canvas_batch_tasks_finished_total', { status: 'partial_failure' })).toBe(1);
    expect(sample(m, 'canvas_batch_running_agents')).toBe(0);
    expect(sample(m, 'canvas_batch_semaphore_waiters')).toBe(0);
    expect(sample(m, 'canvas_batch_global_max_concurrent')).toBe(12);
    expect(sample(m, 'canvas_batch_global_concurrency_limit')).toBe(12);
    expect(sample(m, 'canvas_batch_memory_outbox_backlog')).toBe((await outbox.counts()).pending);
    expect(
      sample(m, 'canvas_batch_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/parallel/execute',
        status_code: '202',
      }),
    ).toBe(1);
    expect(
      sample(m, 'canvas_batch_http_request_duration_seconds_count', {
        method: 'GET',
        route: 'unmatched', // refused before routing
        status_code: '401',
      }),
    ).toBeGreaterThanOrEqual(1);
    // a route pattern, never a raw task id
    const routes = m.get('canvas_batch_http_request_duration_seconds')!.samples.map((s) => s.labels.route);
    expect(routes).toContain('/parallel/status/:taskId');
    expect(routes.some((r) => r?.includes(res.body.task_id as string))).toBe(false);
  });

  it('shows running agents, semaphore waiters and SSE clients while a batch runs', async () => {
    const slow = await startServer({ AGENT_LATENCY_MS: '60000', GLOBAL_MAX_CONCURRENT: '2' }, (vault) => {
      writeDemoCanvas(vault, 'Metrics/slow.canvas', { '2': 4 });
    });
    try {
      const res = await http<Json>('POST', `${slow.url}/parallel/execute`, {
        canvas_path: 'Metrics/slow.canvas',
        groups: [{ group_id: 1, agent_type: 'oral-explanation', node_ids: ['c2n0', 'c2n1', 'c2n2', 'c2n3'] }],
      });
      const taskId = res.body.task_id as string;
      const watcher = sseClient(`${slow.url}/parallel/events/${taskId}`, {
        stopWhen: (e) => e.event === 'progress_update' && (e.data.data.running_nodes as number) === 2,
      });
      await watcher.done;
      const follower = sseClient(`${slow.url}/parallel/events/${taskId}`, {
        stopWhen: (e) => e.event === 'session_completed',
      });
      await follower.headers;
      const text = await (await fetch(`${slow.url}/metrics`)).text();
      const m = parsePrometheus(text);
      expect(sample(m, 'canvas_batch_running_agents')).toBe(2);
      // the batch's dispatcher holds 2 more nodes: both wait on the process-wide semaphore
      expect(sample(m, 'canvas_batch_semaphore_waiters')).toBe(2);
      expect(sample(m, 'canvas_batch_sse_clients')).toBe(1);
      expect(sample(m, 'canvas_batch_tasks', { status: 'running' })).toBe(1);
      await http('DELETE', `${slow.url}/parallel/cancel/${taskId}?mode=abort`);
      await follower.done;
      const after = parsePrometheus(await (await fetch(`${slow.url}/metrics`)).text());
      expect(sample(after, 'canvas_batch_sse_clients')).toBe(0);
      expect(sample(after, 'canvas_batch_tasks', { status: 'cancelled' })).toBe(1);
    } finally {
      await slow.close();
    }
  });
});

async function waitTerminalWithToken(url: string, taskId: string): Promise<Json> {
  for (;;) {
    const { body } = await http<Json>('GET', `${url}/parallel/status/${taskId}`, undefined, {
      authorization: 'Bearer metrics-token-0123456789',
    });
    if (!['pending', 'running'].includes(body.status as string)) return body;
    await new Promise((r) => setTimeout(r, 25));
  }
}
