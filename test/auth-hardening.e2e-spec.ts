import { Logger } from '@nestjs/common';
import { type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startServer, type TestServer } from './support/harness';
import { freePort, type ServiceProcess, startService } from './support/service-process';

type Json = Record<string, any>;

const TOKEN = 'hardening-t0ken-0123456789abcdef';
const COOKIE_NAME = 'canvas_batch_session';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json(): Json;
}

/**
 * One HTTP request from a chosen loopback address (127.0.0.x): the server sees each address as another client, as it
 * would see two machines.
 */
function from(
  localAddress: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: init.method ?? 'GET', headers: init.headers, localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text) as Json,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const form = (token: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ token }).toString(),
});

/** The `name=value` part of a Set-Cookie header for the session cookie. */
function sessionCookie(reply: Reply): string {
  const set = ([] as string[]).concat(reply.headers['set-cookie'] ?? []);
  const line = set.find((c) => c.startsWith(`${COOKIE_NAME}=`));
  if (!line) throw new Error(`no ${COOKIE_NAME} cookie in ${JSON.stringify(set)}`);
  return line.split(';')[0];
}

describe('failed authentications are throttled per client', () => {
  let server: TestServer;
  beforeAll(async () => (server = await startServer({ API_TOKEN: TOKEN })));
  afterAll(() => server.close());

  it('many wrong bearer guesses get 429 quickly; the right token from another client still works', async () => {
    const started = Date.now();
    const statuses: number[] = [];
    let limited: Reply | undefined;
    for (let round = 0; round < 20; round++) {
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          from('127.0.0.1', `${server.url}/parallel/tasks`, {
            headers: bearer(`guess-${round}-${i}-xxxxxxxxxx`),
          }),
        ),
      );
      for (const r of replies) {
        statuses.push(r.status);
        if (r.status === 429) limited = r;
      }
    }
    const elapsed = Date.now() - started;
    // at most the limit (10 a minute) were ever compared with the token; the rest were refused unread
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(390);
    // a precondition, not a speed claim: the guesses all fell within one minute's throttle window
    expect(elapsed).toBeLessThan(60_000);
    expect(limited!.headers['content-type']).toContain('application/problem+json');
    expect(limited!.json()).toMatchObject({
      type: 'https://canvas-batch.dev/problems/too-many-requests',
      status: 429,
      detail: expect.stringMatching(/failed authentication/i),
    });
    const retryAfter = Number(limited!.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // the blocked client gets no answer about any token, not even the right one (no oracle while blocked)
    expect((await from('127.0.0.1', `${server.url}/parallel/tasks`, { headers: bearer(TOKEN) })).status).toBe(
      429,
    );
    expect((await from('127.0.0.1', `${server.url}/login`, form(TOKEN))).status).toBe(429);
    // another client with the right token is not affected, by bearer or by the login form
    expect((await from('127.0.0.2', `${server.url}/parallel/tasks`, { headers: bearer(TOKEN) })).status).toBe(
      200,
    );
    expect((await from('127.0.0.2', `${server.url}/login`, form(TOKEN))).status).toBe(303);
    // /health stays open to everyone
    expect((await from('127.0.0.1', `${server.url}/health`)).status).toBe(200);
    // a browser opening the dashboard with a token in the address bar gets the form, saying why
    const page = await from('127.0.0.1', `${server.url}/?access_token=${TOKEN}`, {
      headers: { accept: 'text/html' },
    });
    expect(page.status).toBe(429);
    expect(page.headers['retry-after']).toMatch(/^\d+$/);
    expect(page.text).toContain('Too many failed sign-in attempts from this address');
  });

  it('throttles login-form and ?access_token= guesses too; a signed-in session is not locked out', async () => {
    const login: number[] = [];
    for (let i = 0; i < 15; i++)
      login.push((await from('127.0.0.3', `${server.url}/login`, form(`nope-${i}`))).status);
    expect(login.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(login.slice(10)).toEqual(Array(5).fill(429));
    const html = await from('127.0.0.3', `${server.url}/login`, {
      ...form('again'),
      headers: { ...form('again').headers, accept: 'text/html' },
    });
    expect(html.status).toBe(429);
    expect(html.headers['retry-after']).toMatch(/^\d+$/);
    expect(html.text).toMatch(/Too many failed sign-in attempts/);
    // a client that asks for JSON gets problem+json
    const json = await from('127.0.0.3', `${server.url}/login`, {
      ...form('again'),
      headers: { ...form('again').headers, accept: 'application/json' },
    });
    expect(json.status).toBe(429);
    expect(json.headers['content-type']).toContain('application/problem+json');
    expect(json.json()).toMatchObject({
      status: 429,
      type: 'https://canvas-batch.dev/problems/too-many-requests',
    });
    expect(Number(json.headers['retry-after'])).toBeGreaterThan(0);

    const query: number[] = [];
    for (let i = 0; i < 15; i++) {
      const url = `${server.url}/parallel/events/00000000-0000-4000-8000-000000000000?access_token=nope-${i}`;
      query.push((await from('127.0.0.4', url)).status);
    }
    expect(query.filter((s) => s === 401)).toHaveLength(10);
    expect(query.slice(10)).toEqual(Array(5).fill(429));

    // someone signed in from an address (a shared NAT) keeps working while guesses from that address are blocked
    const cookie = sessionCookie(await from('127.0.0.5', `${server.url}/login`, form(TOKEN)));
    for (let i = 0; i < 12; i++)
      await from('127.0.0.5', `${server.url}/agents`, { headers: bearer(`wrong-${i}`) });
    expect((await from('127.0.0.5', `${server.url}/agents`, { headers: bearer(TOKEN) })).status).toBe(429);
    expect((await from('127.0.0.5', `${server.url}/agents`, { headers: { cookie } })).status).toBe(200);
  });
});

describe('the login cookie is a revocable session, not the token', () => {
  let server: TestServer;
  beforeAll(async () => (server = await startServer({ API_TOKEN: TOKEN })));
  afterAll(() => server.close());

  it('signing in sets a session cookie; signing out revokes it server-side', async () => {
    const ok = await from('127.0.0.1', `${server.url}/login`, form(TOKEN));
    expect(ok.status).toBe(303);
    const set = ([] as string[]).concat(ok.headers['set-cookie'] ?? []).join('\n');
    expect(set).not.toContain(TOKEN);
    expect(set).not.toContain(encodeURIComponent(TOKEN));
    expect(set).toMatch(
      new RegExp(`^${COOKIE_NAME}=[^;]+; Max-Age=\\d+; Path=/; Expires=[^;]+; HttpOnly; SameSite=Strict$`),
    );
    const cookie = sessionCookie(ok);
    expect(cookie.length).toBeGreaterThan(COOKIE_NAME.length + 40);
    expect((await from('127.0.0.1', `${server.url}/parallel/tasks`, { headers: { cookie } })).status).toBe(
      200,
    );

    // the token itself is not a cookie credential (under the old or the new name)
    for (const raw of [`canvas_batch_token=${TOKEN}`, `${COOKIE_NAME}=${TOKEN}`]) {
      expect(
        (await from('127.0.0.1', `${server.url}/parallel/tasks`, { headers: { cookie: raw } })).status,
      ).toBe(401);
    }
    // a tampered session (same id, another signature) is refused
    const tampered = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA');
    expect(
      (await from('127.0.0.1', `${server.url}/parallel/tasks`, { headers: { cookie: tampered } })).status,
    ).toBe(401);

    const out = await from('127.0.0.1', `${server.url}/logout`, { method: 'POST', headers: { cookie } });
    expect(out.status).toBe(303);
    expect(String(out.headers['set-cookie'])).toMatch(
      new RegExp(`^${COOKIE_NAME}=;.*Expires=Thu, 01 Jan 1970`),
    );
    // the browser dropped it, but whoever copied it cannot use it any more
    const reused = await from('127.0.0.1', `${server.url}/parallel/tasks`, { headers: { cookie } });
    expect(reused.status).toBe(401);
    expect(reused.headers['content-type']).toContain('application/problem+json');
    const page = await from('127.0.0.1', `${server.url}/`, { headers: { cookie, accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(page.text).toContain('action="/login"');
  });

  it('?access_token= on the dashboard page is traded for a session, not for a copy of the token', async () => {
    const traded = await from('127.0.0.1', `${server.url}/?access_token=${TOKEN}`);
    expect(traded.status).toBe(303);
    expect(traded.headers.location).toBe('/');
    const cookie = sessionCookie(traded);
    expect(cookie).not.toContain(TOKEN);
    expect((await from('127.0.0.1', `${server.url}/`, { headers: { cookie } })).status).toBe(200);
  });
});

describe('without API_TOKEN', () => {
  let server: TestServer;
  beforeAll(async () => (server = await startServer({})));
  afterAll(() => server.close());

  it('signing in and out just lead to the dashboard; nothing is throttled', async () => {
    const login = await from('127.0.0.1', `${server.url}/login`, form('anything'));
    expect([login.status, login.headers.location, login.headers['set-cookie']]).toEqual([
      303,
      '/',
      undefined,
    ]);
    const out = await from('127.0.0.1', `${server.url}/logout`, { method: 'POST' });
    expect([out.status, out.headers.location]).toEqual([303, '/']);
    for (let i = 0; i < 15; i++) {
      expect((await from('127.0.0.1', `${server.url}/agents`, { headers: bearer(`x-${i}`) })).status).toBe(
        200,
      );
    }
  });

  it('warns at start-up when bound to a non-loopback address on purpose (ALLOW_UNAUTHENTICATED=true)', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      // the harness listens on 127.0.0.1 whatever HOST says: the warning is about the configuration
      const open = await startServer({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true' });
      await open.close();
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/^serving 0\.0\.0\.0 without API_TOKEN/));
      warn.mockClear();
      const local = await startServer({});
      await local.close();
      expect(warn).not.toHaveBeenCalledWith(expect.stringMatching(/without API_TOKEN/));
    } finally {
      warn.mockRestore();
    }
  });
});

describe('/docs?access_token= loads a working page', () => {
  let server: TestServer;
  beforeAll(async () => (server = await startServer({ API_TOKEN: TOKEN })));
  afterAll(() => server.close());

  it('the page and every asset it references load, as a browser with a cookie jar would fetch them', async () => {
    const jar = new Map<string, string>();
    const get = async (url: string): Promise<Reply> => {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const reply = await from('127.0.0.1', url, { headers: cookie ? { cookie } : {} });
      for (const c of ([] as string[]).concat(reply.headers['set-cookie'] ?? [])) {
        const [pair] = c.split(';');
        const eq = pair.indexOf('=');
        jar.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      return reply;
    };
    let url = `${server.url}/docs?access_token=${encodeURIComponent(TOKEN)}`;
    let page = await get(url);
    for (let hops = 0; page.status >= 300 && page.status < 400 && hops < 5; hops++) {
      url = new URL(String(page.headers.location), url).href;
      page = await get(url);
    }
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)]
      .map((m) => new URL(m[1], url).href)
      .filter((a) => a.startsWith(server.url));
    expect(assets.length).toBeGreaterThanOrEqual(3);
    for (const asset of assets) {
      const reply = await get(asset);
      expect({ asset, status: reply.status }).toEqual({ asset, status: 200 });
      // without the session the same asset is refused: it was the session that let it load
      expect((await from('127.0.0.1', asset)).status).toBe(401);
    }
    // the token left the address bar
    expect(url).not.toContain('access_token');
  });
});

describe('start-up checks of the token and the bind address', () => {
  let root: string;
  const running: ServiceProcess[] = [];
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-auth-start-'));
    mkdirSync(path.join(root, 'vault'));
  });
  afterAll(async () => {
    for (const s of running) await s.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  /** Starts the real service; resolves with the running service or with the output of a refused start. */
  async function start(env: Record<string, string>): Promise<{ service?: ServiceProcess; refused?: string }> {
    const base = {
      PORT: String(await freePort()),
      DATA_DIR: path.join(root, `data-${running.length}-${Date.now()}`),
      VAULT_ROOT: path.join(root, 'vault'),
    };
    try {
      const service = await startService({ ...base, ...env });
      running.push(service);
      return { service };
    } catch (err) {
      return { refused: (err as Error).message };
    }
  }

  it('refuses an API_TOKEN shorter than 16 characters, without echoing it', async () => {
    const short = 'short-tok3n-15c';
    const { service, refused } = await start({ API_TOKEN: short });
    expect(service?.url).toBeUndefined();
    expect(refused).toMatch(/Invalid configuration/);
    expect(refused).toMatch(/API_TOKEN must be at least 16 characters/);
    expect(refused).not.toContain(short);
  });

  it('refuses a non-loopback HOST without API_TOKEN; with ALLOW_UNAUTHENTICATED=true it starts with a loud warning', async () => {
    const { service, refused } = await start({ HOST: '0.0.0.0' });
    expect(service?.url).toBeUndefined();
    expect(refused).toMatch(/Invalid configuration/);
    expect(refused).toMatch(/HOST 0\.0\.0\.0 is not a loopback address.*API_TOKEN/);

    const allowed = await start({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true' });
    expect(allowed.refused).toBeUndefined();
    const lines = allowed
      .service!.output.join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Json);
    expect(lines.find((l) => /without API_TOKEN/.test(String(l.msg)))).toMatchObject({ level: 40 });
    await allowed.service!.kill('SIGTERM');

    // loopback binds and token-protected binds start as before
    const local = await start({ HOST: '127.0.0.1' });
    expect(local.refused).toBeUndefined();
    await local.service!.kill('SIGTERM');
  });
});
