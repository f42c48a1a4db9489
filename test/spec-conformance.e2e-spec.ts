import type { ValidateFunction } from 'ajv/dist/2020';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import * as path from 'node:path';
import {
  http,
  type ReceivedEvent,
  sseClient,
  startServer,
  type TestServer,
  waitTerminal,
} from './support/harness';
import { AGENT_CATALOGUE, AUTO_AGENT, MEMORY_EVENT_TYPES, RUNNABLE_AGENT_NAMES } from '../src/agent';
import { ajv, type Json, OPENAPI_ID, openapi, taskSchema, validator } from './support/contract';

/**
 * Checks the running server against its published contract: specs/api/parallel-api.openapi.yml (OpenAPI 3.1) and
 * specs/data/parallel-task.schema.json (JSON Schema 2020-12). Every live response is validated against the schema
 * the OpenAPI file declares for that operation and status code, so an undeclared status fails too.
 */

type HttpResult = Awaited<ReturnType<typeof http>>;
type Method = 'get' | 'post' | 'delete';

const api = (name: string): ValidateFunction => validator(`${OPENAPI_ID}#/components/schemas/${name}`);
const data = (name?: string): ValidateFunction =>
  validator(name ? `${String(taskSchema.$id)}#/$defs/${name}` : String(taskSchema.$id));

function assertValid(v: ValidateFunction, value: unknown, what: string): void {
  if (!v(value)) {
    throw new Error(
      `${what} does not conform: ${ajv.errorsText(v.errors, { separator: '\n  ' })}\n${JSON.stringify(value, null, 2).slice(0, 3000)}`,
    );
  }
}

/** The response object an operation declares for a status (component `$ref`s followed). */
function declaredResponse(method: Method, route: string, status: number): Json {
  const op = openapi.paths[route]?.[method] as Json | undefined;
  if (!op) throw new Error(`the OpenAPI file has no ${method.toUpperCase()} ${route}`);
  let response = op.responses[String(status)] as Json | undefined;
  if (!response) throw new Error(`${method.toUpperCase()} ${route} does not declare status ${status}`);
  if (typeof response.$ref === 'string') {
    response = openapi.components.responses[response.$ref.split('/').pop()!] as Json;
  }
  return response;
}

function schemaValidator(schema: Json): ValidateFunction {
  return typeof schema.$ref === 'string' && schema.$ref.startsWith('#/')
    ? validator(`${OPENAPI_ID}${schema.$ref}`)
    : ajv.compile(schema);
}

/** The status is declared for the operation, and the body validates against that response's schema. */
function expectConforms(res: HttpResult, method: Method, route: string, status: number): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status });
  const mediaType = res.type.split(';')[0].trim();
  const content = declaredResponse(method, route, status).content?.[mediaType] as Json | undefined;
  if (!content) throw new Error(`${method.toUpperCase()} ${route} ${status} does not declare ${mediaType}`);
  assertValid(schemaValidator(content.schema), res.body, `${method.toUpperCase()} ${route} ${status}`);
}

/** A problem+json error: media type, ProblemDetails schema, `status` member = HTTP status, declared for the route. */
function expectProblem(res: HttpResult, method: Method, route: string, status: number, code?: string): Json {
  expect(res.type).toMatch(/^application\/problem\+json/);
  assertValid(api('ProblemDetails'), res.body, 'problem');
  const body = res.body as Json;
  expect(body.status).toBe(status);
  if (code) expect(body.type).toBe(`https://canvas-batch.dev/problems/${code}`);
  expectConforms(res, method, route, status);
  return body;
}

function expectEventsConform(events: ReceivedEvent[], taskId: string): void {
  const sseResponse = declaredResponse('get', '/parallel/events/{task_id}', 200);
  const perEvent = sseResponse['x-sse-events'] as Record<string, Json>;
  expect(events.length).toBeGreaterThan(0);
  events.forEach((e, i) => {
    const what = `event ${e.id} (${e.event})`;
    expect(e.data.type).toBe(e.event);
    expect(e.data.task_id).toBe(taskId);
    assertValid(data('TaskEvent'), e.data, `${what} vs parallel-task.schema.json TaskEvent`);
    assertValid(api('TaskEvent'), e.data, `${what} vs OpenAPI TaskEvent`);
    expect(perEvent[e.event]).toBeDefined();
    assertValid(schemaValidator(perEvent[e.event]), e.data, `${what} vs x-sse-events`);
    if (i > 0) expect(e.id).toBe(events[i - 1].id + 1);
  });
  expect(events.at(-1)!.event).toBe('session_completed');
}

/** Any method, TRACE included (fetch refuses it), without a body. */
function rawRequest(
  method: string,
  target: string,
): Promise<{ status: number; allow: string | undefined; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(target, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          allow: res.headers.allow,
          type: res.headers['content-type'],
          body,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const CANVAS = 'Biology/cells.canvas';
const [N1, N2, N3] = ['b10c0ffee0000001', 'b10c0ffee0000002', '4e0b7a91c2d35f68'];
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const GOOD = {
  canvas_path: CANVAS,
  groups: [
    { group_id: 'g1', agent_type: 'oral-explanation', node_ids: [N1, N2] },
    { group_id: 2, agent_type: 'comparison-table', node_ids: [N3] },
  ],
};
/** Three nodes one at a time: with AGENT_LATENCY_MS=200 the task runs for about 600 ms. */
const SLOW = {
  canvas_path: CANVAS,
  groups: [{ group_id: 'slow', agent_type: 'memory-anchor', node_ids: [N1, N2, N3] }],
  max_concurrent: 1,
};

describe('spec conformance (specs/api/parallel-api.openapi.yml, specs/data/parallel-task.schema.json)', () => {
  let server: TestServer;
  const url = (p: string): string => `${server.url}${p}`;
  const execute = (body: unknown, headers?: Record<string, string>): Promise<HttpResult> =>
    http('POST', url('/parallel/execute'), body, headers);

  beforeAll(async () => {
    server = await startServer({ AGENT_LATENCY_MS: '200' }, (vault) => {
      writeFileSync(path.join(vault, 'Biology/broken.canvas'), '{ "nodes": [ {"id": "x", ');
      writeFileSync(
        path.join(vault, 'Biology/mixed.canvas'),
        JSON.stringify({
          nodes: [
            {
              id: 'ok-node',
              type: 'text',
              text: '# Osmosis\nWater moves across a membrane.',
              x: 0,
              y: 0,
              width: 300,
              height: 200,
            },
            {
              id: 'gone-file',
              type: 'file',
              file: 'Biology/notes/does-not-exist.md',
              x: 400,
              y: 0,
              width: 300,
              height: 200,
            },
          ],
          edges: [],
        }),
      );
    });
  });
  afterAll(() => server.close());

  describe('the spec files', () => {
    it('share identical schemas (OpenAPI components.schemas = JSON Schema $defs)', () => {
      const strip = (s: unknown): unknown =>
        JSON.parse(
          JSON.stringify(s, (k, v: unknown) => (k === 'discriminator' ? undefined : v)).replaceAll(
            '#/components/schemas/',
            '#/$defs/',
          ),
        );
      for (const [name, def] of Object.entries(taskSchema.$defs as Json)) {
        expect({ name, schema: strip(openapi.components.schemas[name]) }).toEqual({ name, schema: def });
      }
      expect(openapi.openapi).toMatch(/^3\.1\./);
    });

    it('declare every error response as application/problem+json ProblemDetails', () => {
      for (const [route, item] of Object.entries(openapi.paths as Json)) {
        for (const [method, op] of Object.entries(item as Json)) {
          for (const status of Object.keys((op as Json).responses as Json).filter((s) => Number(s) >= 400)) {
            if (route === '/health') continue; // 503 there is the health body itself
            const content = declaredResponse(method as Method, route, Number(status)).content as Json;
            expect({ route, method, status, content: Object.keys(content) }).toEqual({
              route,
              method,
              status,
              content: ['application/problem+json'],
            });
            expect(content['application/problem+json'].schema).toEqual({
              $ref: '#/components/schemas/ProblemDetails',
            });
          }
        }
      }
    });

    it('are what the server serves: GET /docs/openapi.json is the contract file, unchanged', async () => {
      const res = await http('GET', url('/docs/openapi.json'));
      expectConforms(res, 'get', '/docs/openapi.json', 200);
      expect(res.body).toEqual(openapi);
    });

    it('list the catalogue: agent_type is an enum of the runnable agents and their aliases, and the Agent schema has its enums', () => {
      for (const schema of [
        openapi.components.schemas.NodeGroupRequest,
        taskSchema.$defs.NodeGroupRequest,
      ] as Json[]) {
        expect([...(schema.properties.agent_type.enum as string[])].sort()).toEqual(
          [...RUNNABLE_AGENT_NAMES, AUTO_AGENT].sort(),
        );
      }
      // and what GET /agents says of each agent
      const agent = openapi.components.schemas.Agent as Json;
      expect(agent.properties.memory_event_type.enum).toEqual([...MEMORY_EVENT_TYPES]);
      expect([...(agent.properties.output_kind.enum as string[])].sort()).toEqual(
        [...new Set(AGENT_CATALOGUE.map((a) => a.outputKind))].sort(),
      );
    });

    it('name every method of every path: others get 405 with Allow, OPTIONS gets 204 with Allow', async () => {
      const others = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'TRACE'];
      for (const [route, item] of Object.entries(openapi.paths as Json)) {
        const declared = Object.keys(item as Json).map((m) => m.toUpperCase());
        const allow = [...declared, ...(declared.includes('GET') ? ['HEAD'] : []), 'OPTIONS']
          .sort()
          .join(', ');
        const target = url(route.replace(/\{[^}]+\}/g, UNKNOWN_ID));
        const options = await rawRequest('OPTIONS', target);
        expect({ route, status: options.status, allow: options.allow }).toEqual({
          route,
          status: 204,
          allow,
        });
        for (const method of others.filter((m) => !declared.includes(m))) {
          const res = await rawRequest(method, target);
          expect({ route, method, status: res.status, allow: res.allow, type: res.type }).toEqual({
            route,
            method,
            status: 405,
            allow,
            type: 'application/problem+json; charset=utf-8',
          });
          assertValid(api('ProblemDetails'), JSON.parse(res.body), `${method} ${route}`);
        }
      }
      // a path nobody serves stays a 404, whatever the method
      expect((await rawRequest('TRACE', url('/no/such/path'))).status).toBe(404);
    });

    it('the ExecuteRequest schema accepts the example request', () => {
      assertValid(data('ExecuteRequest'), GOOD, 'GOOD');
      assertValid(api('ExecuteRequest'), { ...GOOD, max_concurrent: 50, timeout: 3600 }, 'GOOD with limits');
    });
  });

  describe('success responses', () => {
    it('POST /parallel/execute: 202, then 200 for a repeated Idempotency-Key (also once the task finished)', async () => {
      const first = await execute(GOOD, { 'idempotency-key': 'spec-key-1' });
      expectConforms(first, 'post', '/parallel/execute', 202);
      const taskId = (first.body as Json).task_id as string;
      const again = await execute(GOOD, { 'idempotency-key': 'spec-key-1' });
      expectConforms(again, 'post', '/parallel/execute', 200);
      expect((again.body as Json).task_id).toBe(taskId);

      await waitTerminal(server, taskId);
      const later = await execute(GOOD, { 'idempotency-key': 'spec-key-1' });
      expectConforms(later, 'post', '/parallel/execute', 200);
      expect(later.body).toMatchObject({ task_id: taskId, status: 'completed' });
    });

    it('GET /parallel/status of a running and of a finished task', async () => {
      const started = await execute(SLOW);
      expectConforms(started, 'post', '/parallel/execute', 202);
      const taskId = (started.body as Json).task_id as string;

      const running = await http('GET', url(`/parallel/status/${taskId}`));
      expectConforms(running, 'get', '/parallel/status/{task_id}', 200);
      assertValid(data(), running.body, 'running status vs parallel-task.schema.json');
      expect(running.body).toMatchObject({
        status: 'running',
        completed_at: null,
        max_concurrent: 1,
        timeout: 600,
      });

      await waitTerminal(server, taskId);
      const finished = await http('GET', url(`/parallel/status/${taskId}`));
      expectConforms(finished, 'get', '/parallel/status/{task_id}', 200);
      assertValid(data(), finished.body, 'finished status vs parallel-task.schema.json');
      const body = finished.body as Json;
      expect(body).toMatchObject({
        status: 'completed',
        progress_percent: 100,
        completed_nodes: 3,
        failed_nodes: 0,
        skipped_nodes: 0,
      });
      // The schemas are closed: an extra or a missing member is refused by both files.
      const { usage: _usage, ...withoutUsage } = body;
      for (const v of [api('ParallelTaskStatus'), data()]) {
        expect(v({ ...body, extra: 1 })).toBe(false);
        expect(v(withoutUsage)).toBe(false);
      }
      for (const r of body.groups[0].results as Json[]) {
        expect(statSync(path.join(server.vault, r.file_path as string)).size).toBe(r.file_size);
      }
    });

    it('partial failure: errors[] in the status and task_failed events conform', async () => {
      const started = await execute({
        canvas_path: 'Biology/mixed.canvas',
        groups: [{ group_id: 7, agent_type: 'four-level', node_ids: ['ok-node', 'gone-file'] }],
      });
      expectConforms(started, 'post', '/parallel/execute', 202);
      const taskId = (started.body as Json).task_id as string;
      await waitTerminal(server, taskId);
      const status = await http('GET', url(`/parallel/status/${taskId}`));
      expectConforms(status, 'get', '/parallel/status/{task_id}', 200);
      assertValid(data(), status.body, 'partial_failure status vs parallel-task.schema.json');
      expect(status.body).toMatchObject({
        status: 'partial_failure',
        groups: [
          {
            group_id: 7,
            agent_type: 'four-level-explanation',
            errors: [{ node_id: 'gone-file', error_type: 'NODE_CONTENT_MISSING' }],
          },
        ],
      });

      const events = await sseClient(url(`/parallel/events/${taskId}`)).done;
      expectEventsConform(events, taskId);
      expect(events.map((e) => e.event)).toContain('task_failed');
    });

    it('SSE of a batch: headers, and every event envelope conforms to TaskEvent (live, then replayed)', async () => {
      const started = await execute(GOOD);
      const taskId = (started.body as Json).task_id as string;
      const client = sseClient(url(`/parallel/events/${taskId}`));
      const events = await client.done;
      expect(await client.status).toBe(200);
      const headers = await client.headers;
      expect(headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(headers.get('cache-control')).toEqual(expect.stringContaining('no-cache'));
      expect(headers.get('cache-control')).toEqual(expect.stringContaining('no-transform'));
      expect(headers.get('x-accel-buffering')).toBe('no');
      expect(declaredResponse('get', '/parallel/events/{task_id}', 200).content).toHaveProperty([
        'text/event-stream',
      ]);
      expectEventsConform(events, taskId);
      expect(events[0].id).toBe(1);
      expect(new Set(events.map((e) => e.event))).toEqual(
        new Set(['progress_update', 'task_completed', 'group_completed', 'session_completed']),
      );

      const afterHeader = await sseClient(url(`/parallel/events/${taskId}`), { lastEventId: 2 }).done;
      expect(afterHeader.map((e) => e.id)).toEqual(events.slice(2).map((e) => e.id));
      const afterQuery = await sseClient(url(`/parallel/events/${taskId}?last_event_id=2`)).done;
      expect(afterQuery).toEqual(events.slice(2));
    });

    it('DELETE /parallel/cancel: 200 body; the cancelled task, its events, and 409 once it finished', async () => {
      const started = await execute(SLOW);
      const taskId = (started.body as Json).task_id as string;
      const cancel = await http('DELETE', url(`/parallel/cancel/${taskId}`));
      expectConforms(cancel, 'delete', '/parallel/cancel/{task_id}', 200);
      expect(cancel.body).toMatchObject({ success: true });

      const final = await waitTerminal(server, taskId);
      expect(final.status).toBe('cancelled');
      const status = await http('GET', url(`/parallel/status/${taskId}`));
      expectConforms(status, 'get', '/parallel/status/{task_id}', 200);
      assertValid(data(), status.body, 'cancelled status vs parallel-task.schema.json');
      expect((status.body as Json).skipped_nodes).toBeGreaterThan(0);

      const events = await sseClient(url(`/parallel/events/${taskId}`)).done;
      expectEventsConform(events, taskId);
      expect(events.map((e) => e.event)).toContain('cancelled');

      const again = await http('DELETE', url(`/parallel/cancel/${taskId}`));
      expectProblem(again, 'delete', '/parallel/cancel/{task_id}', 409, 'task-already-finished');
      const againPost = await http('POST', url(`/parallel/cancel/${taskId}`));
      expectProblem(againPost, 'post', '/parallel/cancel/{task_id}', 409, 'task-already-finished');
    });

    it('POST /parallel/cancel?mode=abort: 200 body', async () => {
      const started = await execute(SLOW);
      const taskId = (started.body as Json).task_id as string;
      // Abort once the first node is inside its (200 ms) agent call: an abort that lands while the node is still
      // reading its content leaves an unhandled rejection in the server (reported), which would fail this file.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const cancel = await http('POST', url(`/parallel/cancel/${taskId}?mode=abort`));
      expectConforms(cancel, 'post', '/parallel/cancel/{task_id}', 200);
      expect((await waitTerminal(server, taskId)).status).toBe('cancelled');
    });

    it('GET /parallel/tasks', async () => {
      const all = await http('GET', url('/parallel/tasks'));
      expectConforms(all, 'get', '/parallel/tasks', 200);
      expect(((all.body as Json).tasks as Json[]).length).toBeGreaterThan(0);
      const some = await http('GET', url('/parallel/tasks?status=completed&limit=1'));
      expectConforms(some, 'get', '/parallel/tasks', 200);
      expect((some.body as Json).tasks).toEqual([expect.objectContaining({ status: 'completed' })]);
    });

    it('GET /agents', async () => {
      const res = await http('GET', url('/agents'));
      expectConforms(res, 'get', '/agents', 200);
      expect((res.body as Json).agents).toContainEqual(
        expect.objectContaining({ name: 'oral-explanation', runnable: true }),
      );
    });

    it('GET /memory/status (embedded store): the events of the batches so far, delivered', async () => {
      let res = await http('GET', url('/memory/status'));
      for (let i = 0; i < 400 && (res.body as Json).pending !== 0; i++) {
        await new Promise((r) => setTimeout(r, 25));
        res = await http('GET', url('/memory/status'));
      }
      expectConforms(res, 'get', '/memory/status', 200);
      expect(res.body).toMatchObject({
        store: 'embedded',
        state: 'idle',
        pending: 0,
        failed_attempts: 0,
        last_error: null,
        oldest_pending_age_seconds: null,
        next_retry_at: null,
      });
      expect((res.body as Json).delivered).toBeGreaterThan(0);
      expect((res.body as Json).last_delivery_at).toEqual(expect.any(String));
      // closed schema: an extra member is refused
      expect(api('MemoryStatus')({ ...(res.body as Json), extra: 1 })).toBe(false);
    });

    it('GET /health', async () => {
      const res = await http('GET', url('/health'));
      expectConforms(res, 'get', '/health', 200);
      expect(res.body).toMatchObject({ status: 'ok', global_max_concurrent: 12 });
    });

    it('GET /docs', async () => {
      const res = await fetch(url('/docs'));
      await res.text();
      expect(res.status).toBe(200);
      expect(declaredResponse('get', '/docs', 200).content).toHaveProperty([
        res.headers.get('content-type')!.split(';')[0],
      ]);
    });
  });

  describe('errors are application/problem+json and declared for their route', () => {
    const badBodies: [string, unknown, string][] = [
      ['missing fields', {}, 'validation-failed'],
      ['missing groups', { canvas_path: CANVAS }, 'validation-failed'],
      ['max_concurrent 0', { ...GOOD, max_concurrent: 0 }, 'validation-failed'],
      ['max_concurrent 51', { ...GOOD, max_concurrent: 51 }, 'validation-failed'],
      ['timeout 59', { ...GOOD, timeout: 59 }, 'validation-failed'],
      ['timeout 3601', { ...GOOD, timeout: 3601 }, 'validation-failed'],
      ['an unknown field', { ...GOOD, priority: 1 }, 'validation-failed'],
      [
        'empty node_ids',
        { ...GOOD, groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: [] }] },
        'validation-failed',
      ],
      ['canvas_path with ..', { ...GOOD, canvas_path: '../outside.canvas' }, 'canvas-path-outside-vault'],
      ['canvas_path absolute', { ...GOOD, canvas_path: '/etc/secrets.canvas' }, 'canvas-path-outside-vault'],
      ['canvas_path not .canvas', { ...GOOD, canvas_path: 'Biology/cells.md' }, 'validation-failed'],
      ['max_concurrent null', { ...GOOD, max_concurrent: null }, 'validation-failed'],
      ['timeout null', { ...GOOD, timeout: null }, 'validation-failed'],
    ];

    it.each(badBodies)('400 for %s (and the ExecuteRequest schema refuses it too)', async (_, body, code) => {
      expectProblem(await execute(body), 'post', '/parallel/execute', 400, code);
      expect(data('ExecuteRequest')(body)).toBe(false);
      expect(api('ExecuteRequest')(body)).toBe(false);
    });

    it('400 for a malformed JSON body', async () => {
      expectProblem(
        await execute('{"canvas_path": "Biology/cells.canvas", '),
        'post',
        '/parallel/execute',
        400,
        'bad-request',
      );
    });

    it('400 for an unknown agent_type, naming the field', async () => {
      const body = { ...GOOD, groups: [{ group_id: 'g', agent_type: 'no-such-agent', node_ids: [N1] }] };
      const problem = expectProblem(
        await execute(body),
        'post',
        '/parallel/execute',
        400,
        'validation-failed',
      );
      expect(problem.errors).toEqual([expect.objectContaining({ field: 'groups[0].agent_type' })]);
    });

    it('404 for a canvas that does not exist', async () => {
      expectProblem(
        await execute({ ...GOOD, canvas_path: 'Biology/missing.canvas' }),
        'post',
        '/parallel/execute',
        404,
        'canvas-not-found',
      );
    });

    it('422 for node ids that are not in the canvas, each listed in errors[]', async () => {
      const body = {
        canvas_path: CANVAS,
        groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ['nope-1', N1, 'nope-2'] }],
      };
      const problem = expectProblem(
        await execute(body),
        'post',
        '/parallel/execute',
        422,
        'unknown-node-ids',
      );
      expect(problem.errors).toEqual([
        { field: 'groups[0].node_ids[0]', message: expect.stringContaining('nope-1') },
        { field: 'groups[0].node_ids[2]', message: expect.stringContaining('nope-2') },
      ]);
    });

    it('422 for a repeated group_id alone (a request the schema allows), 400 when the request has other problems', async () => {
      const repeat = {
        canvas_path: CANVAS,
        groups: [
          { group_id: 'g', agent_type: 'oral-explanation', node_ids: [N1] },
          { group_id: 'g', agent_type: 'memory-anchor', node_ids: [N2] },
          { group_id: 7, agent_type: 'memory-anchor', node_ids: [N3] },
          { group_id: '7', agent_type: 'memory-anchor', node_ids: [N3] },
        ],
      };
      expect(api('ExecuteRequest')(repeat)).toBe(true);
      const problem = expectProblem(
        await execute(repeat),
        'post',
        '/parallel/execute',
        422,
        'duplicate-group-ids',
      );
      expect(problem.errors).toEqual([{ field: 'groups[1].group_id', message: 'duplicate group_id "g"' }]);
      const alsoUnknownAgent = {
        ...repeat,
        groups: [...repeat.groups, { group_id: 'x', agent_type: 'no-such-agent', node_ids: [N1] }],
      };
      const mixed = expectProblem(
        await execute(alsoUnknownAgent),
        'post',
        '/parallel/execute',
        400,
        'validation-failed',
      );
      expect(mixed.errors!.map((e: Json) => e.field)).toEqual(['groups[1].group_id', 'groups[4].agent_type']);
    });

    it('422 for a canvas file that is not valid JSON Canvas', async () => {
      const body = {
        canvas_path: 'Biology/broken.canvas',
        groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ['x'] }],
      };
      const problem = expectProblem(await execute(body), 'post', '/parallel/execute', 422, 'invalid-canvas');
      expect((problem.errors as Json[]).length).toBeGreaterThan(0);
    });

    const taskRoutes: [Method, string, string][] = [
      ['get', '/parallel/status/{task_id}', '/parallel/status/'],
      ['delete', '/parallel/cancel/{task_id}', '/parallel/cancel/'],
      ['post', '/parallel/cancel/{task_id}', '/parallel/cancel/'],
      ['get', '/parallel/events/{task_id}', '/parallel/events/'],
    ];

    it.each(taskRoutes)(
      '%s %s: 404 for an unknown task id, 400 for a malformed one',
      async (method, route, prefix) => {
        const unknown = await http(method.toUpperCase(), url(`${prefix}${UNKNOWN_ID}`));
        expectProblem(unknown, method, route, 404, 'task-not-found');
        const malformed = await http(method.toUpperCase(), url(`${prefix}not-a-task-id`));
        const problem = expectProblem(malformed, method, route, 400, 'invalid-task-id');
        expect(problem.errors).toEqual([expect.objectContaining({ field: 'task_id' })]);
      },
    );

    it('400 for invalid query parameters', async () => {
      expectProblem(
        await http('GET', url('/parallel/tasks?limit=0')),
        'get',
        '/parallel/tasks',
        400,
        'validation-failed',
      );
      expectProblem(
        await http('GET', url('/parallel/tasks?limit=101')),
        'get',
        '/parallel/tasks',
        400,
        'validation-failed',
      );
      expectProblem(
        await http('GET', url('/parallel/tasks?status=done')),
        'get',
        '/parallel/tasks',
        400,
        'validation-failed',
      );
      const cancel = await http('DELETE', url(`/parallel/cancel/${UNKNOWN_ID}?mode=later`));
      expectProblem(cancel, 'delete', '/parallel/cancel/{task_id}', 400, 'validation-failed');
      const events = await http('GET', url(`/parallel/events/${UNKNOWN_ID}?last_event_id=-1`));
      expectProblem(events, 'get', '/parallel/events/{task_id}', 400, 'validation-failed');
    });

    it('413 for a body over BODY_LIMIT_BYTES', async () => {
      const small = await startServer({ BODY_LIMIT_BYTES: '2048' });
      try {
        const body = JSON.stringify({ ...GOOD, canvas_path: `${'a'.repeat(3000)}.canvas` });
        expect(Buffer.byteLength(body)).toBeGreaterThan(2048);
        const res = await http('POST', `${small.url}/parallel/execute`, body);
        expectProblem(res, 'post', '/parallel/execute', 413, 'payload-too-large');
      } finally {
        await small.close();
      }
    });

    it('401 without a valid token when API_TOKEN is set (not on /health)', async () => {
      const guarded = await startServer({ API_TOKEN: 'spec-token-0123456789' });
      try {
        const u = guarded.url;
        expectProblem(
          await http('POST', `${u}/parallel/execute`, GOOD),
          'post',
          '/parallel/execute',
          401,
          'unauthorized',
        );
        expectProblem(
          await http('GET', `${u}/parallel/tasks`),
          'get',
          '/parallel/tasks',
          401,
          'unauthorized',
        );
        expectProblem(await http('GET', `${u}/agents`), 'get', '/agents', 401, 'unauthorized');
        expectProblem(await http('GET', `${u}/memory/status`), 'get', '/memory/status', 401, 'unauthorized');
        expectConforms(
          await http('GET', `${u}/memory/status`, undefined, {
            authorization: 'Bearer spec-token-0123456789',
          }),
          'get',
          '/memory/status',
          200,
        );
        const wrong = await http('GET', `${u}/parallel/status/${UNKNOWN_ID}`, undefined, {
          authorization: 'Bearer wrong',
        });
        expectProblem(wrong, 'get', '/parallel/status/{task_id}', 401, 'unauthorized');
        expectProblem(
          await http('GET', `${u}/parallel/events/${UNKNOWN_ID}`),
          'get',
          '/parallel/events/{task_id}',
          401,
          'unauthorized',
        );
        // SSE clients may pass the token in the query: past the guard, the unknown id is a 404.
        const sse = await http(
          'GET',
          `${u}/parallel/events/${UNKNOWN_ID}?access_token=spec-token-0123456789`,
        );
        expectProblem(sse, 'get', '/parallel/events/{task_id}', 404, 'task-not-found');
        expectConforms(await http('GET', `${u}/health`), 'get', '/health', 200);
      } finally {
        await guarded.close();
      }
    });
  });
  describe('vault browsing, metrics and rate limit', () => {
    it('GET /canvases and GET /canvases/nodes conform', async () => {
      const list = await http<Json>('GET', url('/canvases'));
      expectConforms(list, 'get', '/canvases', 200);
      expect(list.body.canvases.map((c: Json) => c.path)).toEqual(
        expect.arrayContaining(['Biology/cells.canvas', 'Physics/mechanics.canvas', '数学/微积分.canvas']),
      );
      const nodes = await http<Json>(
        'GET',
        url(`/canvases/nodes?path=${encodeURIComponent('Biology/mixed.canvas')}`),
      );
      expectConforms(nodes, 'get', '/canvases/nodes', 200);
      const [ok, gone, ...added] = nodes.body.nodes as Json[];
      expect([ok, gone].map((n) => [n.id, n.type, n.result])).toEqual([
        ['ok-node', 'text', false],
        ['gone-file', 'file', false],
      ]);
      // the earlier partial-failure batch added its result node: flagged as a result
      for (const n of added) {
        expect(n).toMatchObject({ type: 'file', result: true });
        expect(n.file).toMatch(/^Biology\/mixed-explanations\//);
      }
    });

    it.each([
      ['/canvases/nodes', 400, 'validation-failed'],
      ['/canvases/nodes?path=../outside.canvas', 400, 'canvas-path-outside-vault'],
      ['/canvases/nodes?path=Biology/nope.canvas', 404, 'canvas-not-found'],
      ['/canvases/nodes?path=Biology/broken.canvas', 422, 'invalid-canvas'],
      ['/canvases/nodes?path=Biology/cells.canvas&extra=1', 400, 'validation-failed'],
      ['/canvases/nodes?path=Biology/notes/mitochondria.md', 400, 'validation-failed'],
    ])('GET %s: %i problem', async (route, status, code) => {
      expectProblem(await http('GET', url(route)), 'get', '/canvases/nodes', status, code);
    });

    it("GET /canvases/document conforms: the file's nodes and edges, every key kept, and the generated ids", async () => {
      const res = await http<Json>(
        'GET',
        url(`/canvases/document?path=${encodeURIComponent('Biology/mixed.canvas')}`),
      );
      expectConforms(res, 'get', '/canvases/document', 200);
      const file = JSON.parse(readFileSync(path.join(server.vault, 'Biology/mixed.canvas'), 'utf8')) as Json;
      expect(res.body.nodes).toEqual(file.nodes);
      expect(res.body.edges).toEqual(file.edges ?? []);
      const nodes = await http<Json>(
        'GET',
        url(`/canvases/nodes?path=${encodeURIComponent('Biology/mixed.canvas')}`),
      );
      expect(res.body.generated).toEqual(
        nodes.body.nodes.filter((n: Json) => n.result).map((n: Json) => n.id),
      );
      expect(res.body.generated.length).toBeGreaterThan(0);
    });

    it.each([
      ['/canvases/document', 400, 'validation-failed'],
      ['/canvases/document?path=../outside.canvas', 400, 'canvas-path-outside-vault'],
      ['/canvases/document?path=Biology/nope.canvas', 404, 'canvas-not-found'],
      ['/canvases/document?path=Biology/broken.canvas', 422, 'invalid-canvas'],
      ['/canvases/document?path=Biology/notes/mitochondria.md', 400, 'validation-failed'],
    ])('GET %s: %i problem', async (route, status, code) => {
      expectProblem(await http('GET', url(route)), 'get', '/canvases/document', status, code);
    });

    it('GET /files serves vault markdown only', async () => {
      const md = await http('GET', url('/files?path=Biology/notes/mitochondria.md'));
      expectConforms(md, 'get', '/files', 200);
      expect(md.body).toEqual(readFileSync(path.join(server.vault, 'Biology/notes/mitochondria.md'), 'utf8'));
      for (const [route, status] of [
        ['/files?path=Biology/cells.canvas', 400],
        ['/files?path=../etc/passwd.md', 400],
        ['/files?path=%2Fetc%2Fpasswd.md', 400],
        ['/files', 400],
        ['/files?path=Biology/notes/none.md', 404],
      ] as const) {
        expectProblem(await http('GET', url(route)), 'get', '/files', status);
      }
    });

    it('GET /metrics conforms', async () => {
      const res = await http('GET', url('/metrics'));
      expectConforms(res, 'get', '/metrics', 200);
      expect(res.body).toContain('# TYPE canvas_batch_nodes_total counter');
    });

    it('429 with Retry-After over EXECUTE_RATE_LIMIT', async () => {
      const limited = await startServer({ EXECUTE_RATE_LIMIT: '1' });
      try {
        expect((await http('POST', `${limited.url}/parallel/execute`, GOOD)).status).toBe(202);
        const res = await http('POST', `${limited.url}/parallel/execute`, GOOD);
        expectProblem(res, 'post', '/parallel/execute', 429, 'too-many-requests');
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      } finally {
        await limited.close();
      }
    });
  });
});
