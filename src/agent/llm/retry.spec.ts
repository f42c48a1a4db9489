import { AgentRunError, type ProviderFeedback } from '../agent-runner';
import { AttemptTimeoutError, classifyFailure, retryAfterOf, withRetries } from './retry';

const apiError = (statusCode: number | undefined, headers: Record<string, string> = {}, message = 'boom') =>
  Object.assign(new Error(message), { statusCode, responseHeaders: headers });
const redact = (s: string): string => s.replace('SECRET', '[redacted]');

describe('classifyFailure', () => {
  it.each([
    [429, true, 'RATE_LIMITED'],
    [401, false, 'AGENT_AUTH_FAILED'],
    [403, false, 'AGENT_AUTH_FAILED'],
    [408, true, 'AGENT_PROVIDER_ERROR'],
    [409, true, 'AGENT_PROVIDER_ERROR'],
    [500, true, 'AGENT_PROVIDER_ERROR'],
    [529, true, 'AGENT_PROVIDER_ERROR'],
    [400, false, 'AGENT_BAD_REQUEST'],
    [404, false, 'AGENT_BAD_REQUEST'],
    [422, false, 'AGENT_BAD_REQUEST'],
  ])('HTTP %i: retryable %s, %s', (status, retryable, errorType) => {
    expect(classifyFailure(apiError(status), redact)).toMatchObject({ status, retryable, errorType });
  });

  it('a failure without a status (reset, refused, unreadable answer) is a retryable provider error', () => {
    expect(classifyFailure(new TypeError('fetch failed'), redact)).toMatchObject({
      status: undefined,
      retryable: true,
      errorType: 'AGENT_PROVIDER_ERROR',
    });
    expect(classifyFailure('plain', redact).message).toBe('provider call failed: plain');
    expect(classifyFailure(null, redact).retryable).toBe(true);
  });

  it('a call over its own time limit is a retryable AGENT_TIMEOUT', () => {
    expect(classifyFailure(new AttemptTimeoutError(300), redact)).toEqual({
      status: undefined,
      retryAfterMs: undefined,
      retryable: true,
      errorType: 'AGENT_TIMEOUT',
      message: 'the provider call took longer than 300 ms',
    });
  });

  it('redacts the message and reads Retry-After', () => {
    const c = classifyFailure(apiError(429, { 'Retry-After': '2' }, 'key SECRET refused'), redact);
    expect(c.message).toBe('provider rate limit (429): key [redacted] refused');
    expect(c.retryAfterMs).toBe(2000);
  });
});

describe('retryAfterOf', () => {
  it('prefers retry-after-ms, then Retry-After seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterOf(undefined)).toBeUndefined();
    expect(retryAfterOf({})).toBeUndefined();
    expect(retryAfterOf({ 'retry-after-ms': '250.2', 'retry-after': '9' })).toBe(251);
    expect(retryAfterOf({ 'retry-after': '1.5' })).toBe(1500);
    expect(retryAfterOf({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }, now)).toBe(3000);
    expect(retryAfterOf({ 'retry-after': 'Wed, 31 Dec 2025 23:00:00 GMT' }, now)).toBe(0);
    expect(retryAfterOf({ 'retry-after': 'soon' })).toBeUndefined();
    expect(retryAfterOf({ 'retry-after-ms': '-5' })).toBeUndefined();
  });
});

describe('withRetries', () => {
  const settings = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 };
  const feedback = (): ProviderFeedback & { log: string[] } => {
    const log: string[] = [];
    return { log, rateLimited: () => log.push('429'), succeeded: () => log.push('ok') };
  };
  const ctx = (extra: Partial<Parameters<typeof withRetries>[1]> = {}) => ({
    settings,
    signal: new AbortController().signal,
    deadline: undefined,
    feedback: undefined,
    redact,
    ...extra,
  });

  it('returns the first success with the attempt count, and reports 429s and the success', async () => {
    const fb = feedback();
    const failures = [apiError(429, { 'retry-after-ms': '1' }), apiError(503)];
    const seen: number[] = [];
    const r = await withRetries(
      (attempt) => {
        seen.push(attempt);
        const f = failures.shift();
        return f ? Promise.reject(f) : Promise.resolve('done');
      },
      ctx({ feedback: fb }),
    );
    expect(r).toEqual({ value: 'done', attempts: 3 });
    expect(seen).toEqual([1, 2, 3]);
    expect(fb.log).toEqual(['429', 'ok']);
  });

  it('fails fast on a non-retryable error', async () => {
    const err: unknown = await withRetries(() => Promise.reject(apiError(401)), ctx()).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentRunError);
    expect(err).toMatchObject({ errorType: 'AGENT_AUTH_FAILED', details: { attempts: 1 } });
    expect((err as Error).message).toMatch(/\(after 1 attempt\)$/);
  });

  it('gives up after maxAttempts with the last failure type', async () => {
    let calls = 0;
    const err = (await withRetries(() => {
      calls++;
      return Promise.reject(apiError(500));
    }, ctx()).then(
      () => undefined,
      (e: unknown) => e,
    )) as AgentRunError;
    expect(calls).toBe(4);
    expect(err).toMatchObject({ errorType: 'AGENT_PROVIDER_ERROR', details: { attempts: 4 } });
    expect(err.message).toMatch(/gave up after 4 attempts/);
  });

  it('never sleeps past the deadline: a wait that would pass it ends the node at once', async () => {
    let calls = 0;
    const err = (await withRetries(
      () => {
        calls++;
        return Promise.reject(apiError(429, { 'retry-after': '30' }));
      },
      ctx({ deadline: Date.now() + 5_000 }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    )) as AgentRunError;
    expect(calls).toBe(1);
    expect(err).toMatchObject({ errorType: 'RATE_LIMITED' });
    expect(err.message).toMatch(/next try in 30000 ms would pass the deadline/);
  });

  it('an abort during the backoff ends it with the abort reason, and no further call', async () => {
    const controller = new AbortController();
    let calls = 0;
    const p = withRetries(
      () => {
        calls++;
        setImmediate(() => controller.abort(new Error('cancelled by the user')));
        return Promise.reject(apiError(429, { 'retry-after': '60' }));
      },
      ctx({ signal: controller.signal }),
    );
    await expect(p).rejects.toThrow('cancelled by the user');
    expect(calls).toBe(1);
  });

  it('an abort during the call is rethrown as the abort reason, not classified', async () => {
    const controller = new AbortController();
    const reason = new Error('node timeout');
    const p = withRetries(
      () => {
        controller.abort(reason);
        return Promise.reject(new Error('The operation was aborted'));
      },
      ctx({ signal: controller.signal }),
    );
    await expect(p).rejects.toBe(reason);
    const aborted = new AbortController();
    aborted.abort(reason);
    await expect(withRetries(() => Promise.resolve(1), ctx({ signal: aborted.signal }))).rejects.toBe(reason);
  });

  it('backs off with full jitter within the exponential bound when there is no Retry-After', async () => {
    const draws: number[] = [];
    let calls = 0;
    await withRetries(
      () => (++calls < 3 ? Promise.reject(apiError(502)) : Promise.resolve('x')),
      ctx({ random: () => (draws.push(0), 0) }),
    );
    expect(draws).toHaveLength(2);
  });
});
