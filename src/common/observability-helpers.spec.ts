import type { Request } from 'express';
import { Histogram, Registry } from 'prom-client';
import { redactRequestUrl, redactUrl } from './log-redaction';
import { requestId, requestIdOf } from './request-id';
import { taskIdOfUrl, taskLog } from './task-log';
import { httpMetrics, routeOf } from '../observability/http-metrics';
import { corsOptions, escapeHtml, loginPage } from '../dashboard/web';
import { formatTable } from '../cli/table';

const ID = '3f2a9c1e-0000-4000-8000-00000000abcd';

describe('log redaction', () => {
  it('masks token query parameters in URLs, whatever their position and case', () => {
    expect(redactUrl(`/parallel/events/${ID}?access_token=abc&last_event_id=3`)).toBe(
      `/parallel/events/${ID}?access_token=[redacted]&last_event_id=3`,
    );
    expect(redactUrl('/docs?x=1&TOKEN=s3cret#top')).toBe('/docs?x=1&TOKEN=[redacted]#top');
    expect(redactUrl('/x?api_key=k')).toBe('/x?api_key=[redacted]');
    expect(redactUrl('/parallel/tasks?limit=5')).toBe('/parallel/tasks?limit=5');
  });

  it('serializes a request with its URL masked and leaves other shapes alone', () => {
    expect(redactRequestUrl({ id: 1, url: '/?access_token=t' })).toEqual({
      id: 1,
      url: '/?access_token=[redacted]',
    });
    const noUrl: { id: number; url?: unknown } = { id: 2 };
    expect(redactRequestUrl(noUrl)).toBe(noUrl);
  });
});

describe('task log records', () => {
  it('carry task_id, extra fields and the message', () => {
    expect(taskLog('t1', 'done', { node_id: 'n1', duration_ms: 5 })).toEqual({
      task_id: 't1',
      node_id: 'n1',
      duration_ms: 5,
      msg: 'done',
    });
    expect(taskLog('t2', 'x')).toEqual({ task_id: 't2', msg: 'x' });
  });

  it('find the task id in task-route URLs only', () => {
    expect(taskIdOfUrl(`/parallel/status/${ID}`)).toBe(ID);
    expect(taskIdOfUrl(`/parallel/events/${ID}?access_token=x`)).toBe(ID);
    expect(taskIdOfUrl(`/parallel/cancel/${ID}/`)).toBe(ID);
    expect(taskIdOfUrl('/parallel/tasks')).toBeUndefined();
    expect(taskIdOfUrl(`/parallel/status/${ID}x`)).toBeUndefined();
    expect(taskIdOfUrl(undefined)).toBeUndefined();
  });
});

describe('request ids', () => {
  const req = (headers: Record<string, string | string[]>): Request & { id?: unknown } =>
    ({ headers }) as unknown as Request;

  it("keeps a caller's plain id, replaces anything else, and assigns it once", () => {
    expect(requestIdOf(req({ 'x-request-id': 'abc-1.2:3_4' }))).toBe('abc-1.2:3_4');
    for (const bad of ['has space', 'x'.repeat(129), '', '<script>']) {
      expect(requestIdOf(req({ 'x-request-id': bad }))).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(requestIdOf(req({ 'x-request-id': ['a', 'b'] }))).toMatch(/^[0-9a-f-]{36}$/);
    const r = req({});
    expect(requestIdOf(r)).toBe(requestIdOf(r));
  });

  it('sets the X-Request-Id header', () => {
    const headers: Record<string, string> = {};
    const next = jest.fn();
    requestId()(
      req({ 'x-request-id': 'given' }),
      { setHeader: (k: string, v: string) => (headers[k] = v) } as never,
      next,
    );
    expect(headers).toEqual({ 'X-Request-Id': 'given' });
    expect(next).toHaveBeenCalled();
  });
});

describe('HTTP metrics labels', () => {
  const req = (p: Partial<Request> & { route?: unknown }): Request =>
    ({ baseUrl: '', originalUrl: '/', ...p }) as unknown as Request;

  it('uses the route pattern, else a fixed label', () => {
    expect(routeOf(req({ route: { path: '/parallel/status/:taskId' } }))).toBe('/parallel/status/:taskId');
    expect(routeOf(req({ route: { path: '' }, baseUrl: '' }))).toBe('/');
    expect(routeOf(req({ originalUrl: '/docs/swagger-ui.css?x' }))).toBe('/docs');
    expect(routeOf(req({ originalUrl: '/docs' }))).toBe('/docs');
    expect(routeOf(req({ originalUrl: '/ui/app.js' }))).toBe('/ui');
    expect(routeOf(req({ originalUrl: `/parallel/status/${ID}` }))).toBe('unmatched');
  });

  it('observes a request when its response closes', async () => {
    const registry = new Registry();
    const histogram = new Histogram({
      name: 't_http',
      help: 'h',
      labelNames: ['method', 'route', 'status_code'] as const,
      registers: [registry],
    });
    let onClose: () => void = () => undefined;
    const res = { statusCode: 204, once: (_: string, fn: () => void) => (onClose = fn) };
    httpMetrics(histogram)(req({ method: 'GET', originalUrl: '/ui/x.css' }), res as never, () => undefined);
    onClose();
    expect(await registry.metrics()).toContain('t_http_count{method="GET",route="/ui",status_code="204"} 1');
  });
});

describe('dashboard helpers', () => {
  it('escapes HTML and renders the login form with an optional error', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(loginPage()).toContain('<p role="alert" class="error"></p>');
    expect(loginPage('<b>bad</b>')).toContain('<p role="alert" class="error">&lt;b&gt;bad&lt;/b&gt;</p>');
  });

  it('allows exactly the configured CORS origins', () => {
    const { origin } = corsOptions(['app://obsidian.md']);
    const ask = (o: string | undefined): boolean | undefined => {
      let allowed: boolean | undefined;
      origin(o, (_, a) => (allowed = a));
      return allowed;
    };
    expect([ask('app://obsidian.md'), ask('app://obsidian.md.evil'), ask(undefined)]).toEqual([
      true,
      false,
      false,
    ]);
  });
});

describe('CLI tables', () => {
  it('pads columns, right-aligns the ones asked, flattens whitespace and trims line ends', () => {
    expect(formatTable(['A', 'B'], [['x\ny', 'long value']])).toBe('A    B\nx y  long value');
    expect(formatTable(['N', 'NAME'], [['7', 'a']], [true])).toBe('N  NAME\n7  a');
  });
});
