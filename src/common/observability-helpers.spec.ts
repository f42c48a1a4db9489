import type { Request } from 'express';
import { redactRequestUrl, redactUrl } from './log-redaction';
import { requestId, requestIdOf } from './request-id';
import { taskIdOfUrl, taskLog } from './task-log';

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
