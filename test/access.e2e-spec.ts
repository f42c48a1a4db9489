import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ApiTokenCheck, ProblemDetailsFilter } from '../src/common';
import { http, startServer, type TestServer } from './support/harness';

type Json = Record<string, any>;

const TOKEN = 'access-s3cret-0123456789';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const GOOD = {
  canvas_path: 'Biology/cells.canvas',
  groups: [{ group_id: 1, agent_type: 'memory-anchor', node_ids: ['b10c0ffee0000001'] }],
};

/** Every operation the published contract lists, with its path parameters filled in. */
function contractRoutes(): { method: string; path: string }[] {
  const openapi = parseYaml(
    readFileSync(path.join(__dirname, '..', 'specs/api/parallel-api.openapi.yml'), 'utf8'),
  ) as Json;
  const out: { method: string; path: string }[] = [];
  for (const [route, ops] of Object.entries(openapi.paths as Json)) {
    for (const method of Object.keys(ops as Json)) {
      if (!['get', 'post', 'delete'].includes(method)) continue;
      out.push({
        method: method.toUpperCase(),
        path: route.replace('{task_id}', UNKNOWN_ID),
      });
    }
  }
  return out;
}

const expect401 = (res: Awaited<ReturnType<typeof http>>, what: string): void => {
  expect({ what, status: res.status, type: res.type }).toEqual({
    what,
    status: 401,
    type: expect.stringContaining('application/problem+json'),
  });
  expect((res.body as Json).type).toBe('https://canvas-batch.dev/problems/unauthorized');
};

describe('access control (API_TOKEN)', () => {
  let server: TestServer;
  // this suite sends hundreds of wrong tokens on purpose: the failure throttle (auth-hardening.e2e-spec.ts) stays out
  beforeAll(async () => (server = await startServer({ API_TOKEN: TOKEN, AUTH_FAILURE_LIMIT: '100000' })));
  afterAll(() => server.close());

  it('every route but /health refuses a missing or wrong token with 401 problem+json', async () => {
    const routes = [
      ...contractRoutes(),
      { method: 'GET', path: '/' },
      { method: 'GET', path: '/metrics' },
      { method: 'GET', path: '/canvases' },
      { method: 'GET', path: '/canvases/nodes?path=Biology/cells.canvas' },
      { method: 'GET', path: '/files?path=Biology/notes/mitochondria.md' },
      { method: 'GET', path: '/no/such/route' },
    ].filter((r) => r.path !== '/health');
    expect(routes.length).toBeGreaterThan(12);
    for (const r of routes) {
      const body = r.method === 'POST' ? GOOD : undefined;
      expect401(await http(r.method, `${server.url}${r.path}`, body), `${r.method} ${r.path} (none)`);
      for (const wrong of ['Bearer wrong', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN]) {
        expect401(
          await http(r.method, `${server.url}${r.path}`, body, { authorization: wrong }),
          `${r.method} ${r.path} (${wrong})`,
        );
      }
    }
    expect((await http('GET', `${server.url}/health`)).status).toBe(200);
    // nothing was started by the refused POSTs
    const tasks = await http<Json>('GET', `${server.url}/parallel/tasks`, undefined, {
      authorization: `Bearer ${TOKEN}`,
    });
    expect(tasks.body.tasks).toEqual([]);
  });

  it('?access_token= is accepted only where headers cannot be set (SSE, docs, dashboard page)', async () => {
    const q = `access_token=${TOKEN}`;
    expect((await http('GET', `${server.url}/docs/openapi.json?${q}`)).status).toBe(200);
    expect((await http('GET', `${server.url}/parallel/events/${UNKNOWN_ID}?${q}`)).status).toBe(404);
    expect401(await http('GET', `${server.url}/parallel/tasks?${q}`), 'tasks with ?access_token');
    expect401(await http('GET', `${server.url}/metrics?${q}`), 'metrics with ?access_token');
    // the dashboard trades it for a session cookie and drops it from the address bar
    const res = await fetch(`${server.url}/?${q}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    expect(res.headers.get('set-cookie')).toMatch(
      /^canvas_batch_session=[\w-]{43}\.[\w-]{43}; Max-Age=43200; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Strict$/,
    );
  });

  it('the login form sets an HttpOnly session cookie that the dashboard and its API calls use', async () => {
    const page = await fetch(`${server.url}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('<label for="token">API token</label>');
    expect(html).toContain('action="/login"');
    // the form's own page and the dashboard's static code are open
    expect((await fetch(`${server.url}/login`)).status).toBe(200);
    expect((await fetch(`${server.url}/ui/style.css`)).status).toBe(200);

    const bad = await fetch(`${server.url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: 'wrong' }),
      redirect: 'manual',
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    expect(await bad.text()).toContain('That token is not valid.');

    const ok = await fetch(`${server.url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: TOKEN }),
      redirect: 'manual',
    });
    expect(ok.status).toBe(303);
    const cookie = ok.headers.get('set-cookie')!.split(';')[0];
    expect(cookie).toMatch(/^canvas_batch_session=/);
    expect(cookie).not.toContain(TOKEN);

    const dashboard = await fetch(`${server.url}/`, { headers: { cookie } });
    expect(dashboard.status).toBe(200);
    expect(await dashboard.text()).toContain('canvas-batch');
    expect((await http('GET', `${server.url}/parallel/tasks`, undefined, { cookie })).status).toBe(200);
    // a state change through the cookie alone is refused: a cross-site form cannot add X-Requested-With
    expect401(
      await http('POST', `${server.url}/parallel/execute`, GOOD, { cookie }),
      'cookie without header',
    );
    const started = await http<Json>('POST', `${server.url}/parallel/execute`, GOOD, {
      cookie,
      'x-requested-with': 'canvas-batch',
    });
    expect(started.status).toBe(202);
    expect401(
      await http('GET', `${server.url}/parallel/tasks`, undefined, { cookie: 'canvas_batch_session=wrong' }),
      'wrong cookie',
    );

    // signing out needs no token: it ends the session it is given (if any) and clears the cookie
    const out = await fetch(`${server.url}/logout`, { method: 'POST', redirect: 'manual' });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/^canvas_batch_session=;.*Expires=Thu, 01 Jan 1970/);
  });

  it('checks the token once per request, and sends every error through one problem filter', async () => {
    const matches = jest.spyOn(ApiTokenCheck.prototype, 'matches');
    const send = jest.spyOn(ProblemDetailsFilter.prototype, 'send');
    try {
      const bearer = { authorization: `Bearer ${TOKEN}` };
      const requests: [string, string, Record<string, string>, number][] = [
        ['GET', '/parallel/tasks', bearer, 200],
        ['GET', '/canvases', bearer, 200],
        ['GET', `/parallel/${UNKNOWN_ID}`, bearer, 404],
        ['GET', `/parallel/events/${UNKNOWN_ID}?access_token=${TOKEN}`, {}, 404],
        ['GET', `/docs/openapi.json?access_token=${TOKEN}`, {}, 200],
        ['GET', '/no/such/route', bearer, 404],
        ['GET', '/parallel/tasks', { authorization: 'Bearer wrong' }, 401],
      ];
      for (const [method, route, headers, status] of requests) {
        matches.mockClear();
        const res = await http(method, `${server.url}${route}`, undefined, headers);
        expect({ route, status: res.status, comparisons: matches.mock.calls.length }).toEqual({
          route,
          status,
          comparisons: 1,
        });
      }
      const badJson = await fetch(`${server.url}/parallel/execute`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: '{"canvas_path":',
      });
      expect(badJson.status).toBe(400);
      expect(send.mock.contexts.length).toBeGreaterThanOrEqual(5);
      expect(new Set(send.mock.contexts).size).toBe(1);
    } finally {
      matches.mockRestore();
      send.mockRestore();
    }
  });
});

describe('CORS', () => {
  let server: TestServer;
  beforeAll(async () => (server = await startServer({ API_TOKEN: TOKEN })));
  afterAll(() => server.close());

  const preflight = (origin: string, url = server.url): Promise<Response> =>
    fetch(`${url}/parallel/execute`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });

  it('a preflight from app://obsidian.md passes, from any other origin it does not', async () => {
    const ok = await preflight('app://obsidian.md');
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('app://obsidian.md');
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(ok.headers.get('vary')).toContain('Origin');

    for (const origin of ['https://evil.example', 'app://obsidian.md.evil.example', 'null']) {
      const refused = await preflight(origin);
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
      expect(refused.headers.get('access-control-allow-headers')).toBeNull();
    }
  });

  it('real requests from the allowed origin carry the CORS header (and still need the token)', async () => {
    const res = await fetch(`${server.url}/agents`, {
      headers: { origin: 'app://obsidian.md', authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('app://obsidian.md');
    const other = await fetch(`${server.url}/agents`, {
      headers: { origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('CORS_ORIGINS replaces the default list', async () => {
    const custom = await startServer({ CORS_ORIGINS: 'http://localhost:5173, https://notes.example.org' });
    try {
      for (const origin of ['http://localhost:5173', 'https://notes.example.org']) {
        expect((await preflight(origin, custom.url)).headers.get('access-control-allow-origin')).toBe(origin);
      }
      expect(
        (await preflight('app://obsidian.md', custom.url)).headers.get('access-control-allow-origin'),
      ).toBeNull();
    } finally {
      await custom.close();
    }
  });
});

describe('security headers and rate limit', () => {
  let server: TestServer;
  beforeAll(async () => (server = await startServer({ EXECUTE_RATE_LIMIT: '3' })));
  afterAll(() => server.close());

  it('sends helmet headers with a strict CSP on the dashboard and the API', async () => {
    for (const p of ['/', '/agents']) {
      const res = await fetch(`${server.url}${p}`);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('upgrade-insecure-requests');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-powered-by')).toBeNull();
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    const traced = await fetch(`${server.url}/agents`, { headers: { 'x-request-id': 'trace-42' } });
    expect(traced.headers.get('x-request-id')).toBe('trace-42');
    const docs = await fetch(`${server.url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-security-policy')).toContain("style-src 'self' 'unsafe-inline'");
  });

  it('limits POST /parallel/execute per client (429 problem+json with Retry-After), nothing else', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await http('POST', `${server.url}/parallel/execute`, GOOD)).status);
    }
    expect(statuses).toEqual([202, 202, 202, 429]);
    const limited = await http<Json>('POST', `${server.url}/parallel/execute`, GOOD);
    expect(limited.status).toBe(429);
    expect(limited.type).toContain('application/problem+json');
    expect(limited.body.type).toBe('https://canvas-batch.dev/problems/too-many-requests');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // other routes are not limited
    for (let i = 0; i < 10; i++) expect((await http('GET', `${server.url}/parallel/tasks`)).status).toBe(200);
    const tasks = await http<Json>('GET', `${server.url}/parallel/tasks`);
    expect(tasks.body.tasks).toHaveLength(3);
  });
});
