import { HttpException, UnauthorizedException } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import { ApiTokenCheck, SESSION_COOKIE, type TokenRequest, TooManyAuthFailures } from './api-token';
import { AuthFailureLimiter } from './auth-throttle';
import { LoginSessions } from './login-sessions';

jest.mock('node:crypto', () => {
  const actual = jest.requireActual<typeof import('node:crypto')>('node:crypto');
  return { ...actual, timingSafeEqual: jest.fn(actual.timingSafeEqual) };
});

const TOKEN = 's3cret-token-0123456789';

const request = (req: Partial<TokenRequest>): TokenRequest => ({
  path: '/parallel/execute',
  headers: {},
  query: {},
  ...req,
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('ApiTokenCheck.assertRequest (every route, applied once per request by the edge)', () => {
  const check = new ApiTokenCheck(TOKEN);
  /** The credential that lets the request through (throws when none does). */
  const credentialOf = (req: Partial<TokenRequest>, on = check) => on.assertRequest(request(req));

  it('lets everything through when no token is configured', () => {
    for (const token of [undefined, '']) {
      expect(credentialOf({}, new ApiTokenCheck(token))).toEqual({ via: 'none' });
      expect(credentialOf(bearer('wrong'), new ApiTokenCheck(token))).toEqual({ via: 'none' });
    }
  });

  it('accepts the right bearer token on any route', () => {
    expect(credentialOf(bearer(TOKEN))).toEqual({ via: 'bearer', token: TOKEN });
    expect(credentialOf({ ...bearer(TOKEN), path: '/parallel/events/t1' })).toEqual({
      via: 'bearer',
      token: TOKEN,
    });
  });

  it('exempts /health, the login form, signing out and the dashboard code', () => {
    for (const path of ['/health', '/login', '/logout', '/ui/app.js']) {
      expect(credentialOf({ path })).toEqual({ via: 'none' });
    }
  });

  it('accepts ?access_token on the SSE stream, the docs and the dashboard page (clients that cannot set headers)', () => {
    const query = { access_token: TOKEN };
    for (const path of ['/parallel/events/3f2a9c1e', '/docs', '/docs/swagger-ui.css', '/']) {
      expect(credentialOf({ path, query })).toEqual({ via: 'query', token: TOKEN });
    }
  });

  it.each([['/parallel/execute'], ['/parallel/3f2a9c1e'], ['/agents'], ['/docsx']])(
    'does not accept ?access_token on %s',
    (path) => {
      expect(() => credentialOf({ path, query: { access_token: TOKEN } })).toThrow(UnauthorizedException);
    },
  );

  it.each([
    ['no credentials', {}],
    ['a wrong token of the same length', bearer(`${TOKEN.slice(0, -1)}X`)],
    ['a wrong token of another length', bearer('short')],
    ['a longer token with the right prefix', bearer(`${TOKEN}-and-more`)],
    ['an empty bearer token', bearer('')],
    ['another scheme', { headers: { authorization: `Basic ${TOKEN}` } }],
    ['a lower-case scheme', { headers: { authorization: `bearer ${TOKEN}` } }],
    ['a wrong ?access_token on the stream', { path: '/parallel/events/t1', query: { access_token: 'nope' } }],
    [
      'an array ?access_token on the stream',
      { path: '/parallel/events/t1', query: { access_token: [TOKEN] } },
    ],
    ['a sub-path of /health', { path: '/health/details' }],
    ['the token as the session cookie', { cookies: { [SESSION_COOKIE]: TOKEN } }],
    ['the token as the cookie of earlier versions', { cookies: { canvas_batch_token: TOKEN } }],
  ])('refuses %s with 401', (_what, req: Partial<TokenRequest>) => {
    expect(() => credentialOf(req, new ApiTokenCheck(TOKEN))).toThrow(UnauthorizedException);
  });

  it('prefers the header over the query: a wrong header is refused even with a right ?access_token', () => {
    const req = { ...bearer('wrong'), path: '/parallel/events/t1', query: { access_token: TOKEN } };
    expect(() => credentialOf(req)).toThrow(UnauthorizedException);
  });

  it('says how to authenticate', () => {
    expect(() => credentialOf({})).toThrow('A valid API token is required (Authorization: Bearer <token>)');
  });

  it('compares a token once per request, and a session not at all', () => {
    const spy = jest.spyOn(check, 'matches');
    credentialOf(bearer(TOKEN));
    credentialOf({ path: '/parallel/events/t1', query: { access_token: TOKEN } });
    expect(() => credentialOf(bearer('wrong'))).toThrow(UnauthorizedException);
    expect(spy).toHaveBeenCalledTimes(3);
    expect(credentialOf({ cookies: { [SESSION_COOKIE]: check.sessions.create() } })).toEqual({
      via: 'session',
    });
    expect(spy).toHaveBeenCalledTimes(3);
    spy.mockRestore();
  });
});

describe('ApiTokenCheck', () => {
  it('compares multi-byte tokens by their bytes', () => {
    const check = new ApiTokenCheck('jeton-é-0123456789');
    expect(check.matches('jeton-é-0123456789')).toBe(true);
    // same string length, different byte length
    expect(check.matches('jeton-e-0123456789')).toBe(false);
  });

  it('reads requests without a parsed query or cookies', () => {
    const check = new ApiTokenCheck(TOKEN);
    expect(() =>
      check.assertRequest({ path: '/agents', headers: { authorization: `Bearer ${TOKEN}` } }),
    ).not.toThrow();
    expect(() => check.assertRequest({ path: '/', headers: {} })).toThrow(UnauthorizedException);
  });

  it('passes everything without a configured token, and matches nothing', () => {
    const check = new ApiTokenCheck(undefined);
    expect(check.enabled).toBe(false);
    expect(() => check.assertRequest(request({}))).not.toThrow();
    expect(check.matches('')).toBe(false);
  });

  it('compares fixed-length digests in constant time, whatever the length given', () => {
    const spy = jest.mocked(timingSafeEqual);
    spy.mockClear();
    const check = new ApiTokenCheck(TOKEN);
    for (const given of ['', 'x', TOKEN, `${TOKEN}${'y'.repeat(1000)}`]) check.matches(given);
    expect(spy).toHaveBeenCalledTimes(4);
    for (const [a, b] of spy.mock.calls) expect([a.byteLength, b.byteLength]).toEqual([32, 32]);
  });

  describe('sessions', () => {
    const check = new ApiTokenCheck(TOKEN);

    it('accepts a live session cookie for reads, and for changes only with X-Requested-With', () => {
      const cookies = { [SESSION_COOKIE]: check.sessions.create() };
      expect(() =>
        check.assertRequest(request({ method: 'GET', path: '/parallel/tasks', cookies })),
      ).not.toThrow();
      expect(() => check.assertRequest(request({ method: 'POST', cookies }))).toThrow(UnauthorizedException);
      const headers = { 'x-requested-with': 'canvas-batch' };
      expect(() => check.assertRequest(request({ method: 'POST', cookies, headers }))).not.toThrow();
    });

    it('refuses a revoked session', () => {
      const value = check.sessions.create();
      check.sessions.revoke(value);
      expect(() => check.assertRequest(request({ cookies: { [SESSION_COOKIE]: value } }))).toThrow(
        UnauthorizedException,
      );
    });

    it('reads the session cookie only when it is a string', () => {
      expect(check.sessionOf({ cookies: { [SESSION_COOKIE]: 'v' } })).toBe('v');
      expect(check.sessionOf({ cookies: { [SESSION_COOKIE]: ['v'] } })).toBeUndefined();
      expect(check.sessionOf({})).toBeUndefined();
    });
  });

  describe('throttling failed attempts', () => {
    let now = 1_000_000;
    const clock = () => now;
    const make = () =>
      new ApiTokenCheck(TOKEN, {
        failures: new AuthFailureLimiter({ limit: 3, now: clock }),
        sessions: new LoginSessions({ now: clock }),
      });

    it('blocks a client after the limit, without comparing its tokens, until the window ends', () => {
      const check = make();
      const spy = jest.spyOn(check, 'matches');
      const attempt =
        (token: string, ip = '192.0.2.1') =>
        () =>
          check.assertRequest(request({ ...bearer(token), ip }));
      for (let i = 0; i < 3; i++) expect(attempt(`wrong-${i}`)).toThrow(UnauthorizedException);
      expect(spy).toHaveBeenCalledTimes(3);
      let thrown: unknown;
      try {
        attempt(TOKEN)();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(TooManyAuthFailures);
      expect((thrown as TooManyAuthFailures).retryAfterSeconds).toBe(60);
      expect((thrown as HttpException).getStatus()).toBe(429);
      expect((thrown as Error).message).toBe(
        'Too many failed authentication attempts from this client: try again in 60 s',
      );
      expect(spy).toHaveBeenCalledTimes(3);
      // another client is not affected
      expect(attempt(TOKEN, '192.0.2.2')).not.toThrow();
      // the same client on IPv4-mapped IPv6 is the same client
      expect(attempt(TOKEN, '::ffff:192.0.2.1')).toThrow(TooManyAuthFailures);
      now += 59_000;
      expect(attempt(TOKEN)).toThrow('try again in 1 s');
      now += 1_000;
      expect(attempt(TOKEN)).not.toThrow();
    });

    it('counts sign-in form attempts and ?access_token guesses the same way; a live session still passes', () => {
      const check = make();
      const session = check.sessions.create();
      for (let i = 0; i < 3; i++)
        expect(() => check.assertToken(`wrong-${i}`, '192.0.2.9')).toThrow(UnauthorizedException);
      expect(() => check.assertToken(undefined, '192.0.2.9')).toThrow(TooManyAuthFailures);
      expect(() =>
        check.assertRequest(
          request({ path: '/parallel/events/t', query: { access_token: TOKEN }, ip: '192.0.2.9' }),
        ),
      ).toThrow(TooManyAuthFailures);
      expect(() =>
        check.assertRequest(
          request({ method: 'GET', cookies: { [SESSION_COOKIE]: session }, ip: '192.0.2.9' }),
        ),
      ).not.toThrow();
    });

    it('does not count requests without a credential, nor a stale session', () => {
      const check = make();
      for (let i = 0; i < 5; i++) {
        expect(() => check.assertRequest(request({ ip: '192.0.2.7' }))).toThrow(UnauthorizedException);
        expect(() =>
          check.assertRequest(request({ cookies: { [SESSION_COOKIE]: 'stale' }, ip: '192.0.2.7' })),
        ).toThrow(UnauthorizedException);
      }
      expect(() => check.assertRequest(request({ ...bearer(TOKEN), ip: '192.0.2.7' }))).not.toThrow();
    });
  });
});
