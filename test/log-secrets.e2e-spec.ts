import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePort, type ServiceProcess, startService } from './support/service-process';

const TOKEN = 'L0g-secret_Token~value.0123456789';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

/** Every byte of `s` as `%XX` (hex in the given case). */
const encodeAll = (s: string, upper = true): string =>
  [...Buffer.from(s, 'utf8')]
    .map((b) => `%${b.toString(16).padStart(2, '0')}`)
    .map((e) => (upper ? e.toUpperCase() : e))
    .join('');
/** Every other character percent-encoded. */
const encodeSome = (s: string): string => [...s].map((c, i) => (i % 2 ? encodeAll(c, false) : c)).join('');

/**
 * `s` in any spelling a URL, a form or a JSON log line could give it: each character literal, percent-encoded (either
 * hex case) or, for JSON, escaped.
 */
function anySpelling(s: string): RegExp {
  const alternatives = [...s].map((c) => {
    const forms = [
      c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'),
      [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
    ];
    return `(?:${forms.join('|')})`;
  });
  return new RegExp(alternatives.join(''), 'i');
}

/**
 * Issue 14 item 7: the API token never reaches a log line, whatever the spelling that carried it (bearer header, the
 * query parameter under any percent-encoding of its name or value, the login form, a cookie), and neither does the
 * session cookie the service hands out.
 */
describe('no credential in any log line', () => {
  let service: ServiceProcess;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-log-secrets-'));
    mkdirSync(path.join(root, 'vault'));
    service = await startService({
      PORT: String(await freePort()),
      VAULT_ROOT: path.join(root, 'vault'),
      DATA_DIR: path.join(root, 'data'),
      API_TOKEN: TOKEN,
      LOG_LEVEL: 'trace',
      LOG_PRETTY: 'false',
    });
  });
  afterAll(async () => {
    await service?.kill('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  });

  it('greps every line of a run that used every accepted spelling', async () => {
    /** Requests the log must show (Nest routes and refusals; the dashboard's Express handlers log nothing). */
    const logged: string[] = [];
    let n = 0;
    const send = async (
      route: string,
      init: { method?: string; headers?: Record<string, string>; body?: string } = {},
    ): Promise<Response> => {
      const id = `spelling-${++n}`;
      if (/^\/(parallel|agents)/.test(route)) logged.push(id);
      const res = await fetch(`${service.url}${route}`, {
        method: init.method ?? 'GET',
        redirect: 'manual',
        headers: { 'x-request-id': id, ...init.headers },
        body: init.body,
      });
      await res.arrayBuffer();
      return res;
    };

    const names = [
      'access_token',
      'access%5Ftoken',
      'access%5ftoken',
      '%61ccess_token',
      encodeAll('access_token'),
    ];
    const values = [TOKEN, encodeAll(TOKEN), encodeAll(TOKEN, false), encodeSome(TOKEN)];
    const spellings = names.flatMap((name) => values.map((value) => `${name}=${value}`));
    const statuses = new Map<string, number>();
    for (const q of spellings) {
      // accepted: the SSE stream (past the check, an unknown task is a 404), the docs' JSON, the page and the docs
      // (traded for a session); refused: a route that takes no query token (logged by the token check)
      for (const route of [
        `/parallel/events/${UNKNOWN_ID}`,
        '/docs/openapi.json',
        '/',
        '/docs',
        '/parallel/tasks',
      ]) {
        const res = await send(`${route}?${q}&last_event_id=2`);
        statuses.set(`${route}?${q}`, res.status);
      }
    }
    // every spelling authenticated where the query token is accepted, and was refused where it is not
    for (const q of spellings) {
      expect(statuses.get(`/parallel/events/${UNKNOWN_ID}?${q}`)).toBe(404);
      expect(statuses.get(`/docs/openapi.json?${q}`)).toBe(200);
      expect(statuses.get(`/?${q}`)).toBe(303);
      expect(statuses.get(`/parallel/tasks?${q}`)).toBe(401);
    }

    expect((await send('/parallel/tasks', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(
      200,
    );
    expect(
      (await send('/agents', { headers: { 'x-api-key': TOKEN, authorization: `Bearer ${TOKEN}` } })).status,
    ).toBe(200);
    const login = await send('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${encodeAll(TOKEN)}`,
    });
    expect(login.status).toBe(303);
    const session = login.headers.getSetCookie()[0].split(';')[0];
    const sessionValue = session.slice(session.indexOf('=') + 1);
    expect((await send('/parallel/tasks', { headers: { cookie: session } })).status).toBe(200);
    // the token as a cookie (the login cookie of earlier versions), beside a session, and a signed-out session
    await send('/parallel/tasks', { headers: { cookie: `canvas_batch_token=${TOKEN}` } });
    await send('/parallel/tasks', { headers: { cookie: `${session}; other=${TOKEN}` } });
    expect((await send('/logout', { method: 'POST', headers: { cookie: session } })).status).toBe(303);
    await send('/parallel/tasks', { headers: { cookie: session } });

    // wait until every request is in the log (accepted ones by the request logger, refused ones by the token check)
    const text = (): string => service.output.join('');
    const end = Date.now() + 20_000;
    while (logged.some((id) => !text().includes(`"${id}"`))) {
      if (Date.now() > end) {
        const missing = logged.filter((id) => !text().includes(`"${id}"`));
        throw new Error(`log lines missing for ${missing.join(', ')}:\n${text()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }

    const lines = text().split('\n');
    expect(logged.length).toBeGreaterThan(spellings.length * 2);
    const leaks = lines.filter(
      (l) =>
        anySpelling(TOKEN).test(l) ||
        anySpelling(sessionValue).test(l) ||
        values.some((v) => l.includes(v)) ||
        l.includes(sessionValue),
    );
    expect(leaks.map((l) => l.slice(0, 600))).toEqual([]);
    // the lines still say what happened: masked, not dropped
    expect(text()).toContain('[redacted]');
  });
});
