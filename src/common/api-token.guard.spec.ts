import { type ExecutionContext, UnauthorizedException } from '@nestjs/common';
import { ApiTokenCheck, ApiTokenGuard } from './api-token.guard';

interface FakeRequest {
  path: string;
  headers: { authorization?: string };
  query: Record<string, unknown>;
}

const contextFor = (req: Partial<FakeRequest>): ExecutionContext =>
  ({
    switchToHttp: () => ({
      getRequest: () => ({ path: '/parallel/execute', headers: {}, query: {}, ...req }),
    }),
  }) as unknown as ExecutionContext;

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('ApiTokenGuard', () => {
  const guard = new ApiTokenGuard('s3cret-token');

  it('lets everything through when no token is configured', () => {
    for (const token of [undefined, '']) {
      expect(new ApiTokenGuard(token).canActivate(contextFor({}))).toBe(true);
      expect(new ApiTokenGuard(token).canActivate(contextFor(bearer('wrong')))).toBe(true);
    }
  });

  it('accepts the right bearer token on any route', () => {
    expect(guard.canActivate(contextFor(bearer('s3cret-token')))).toBe(true);
    expect(guard.canActivate(contextFor({ ...bearer('s3cret-token'), path: '/parallel/events/t1' }))).toBe(
      true,
    );
  });

  it('exempts /health', () => {
    expect(guard.canActivate(contextFor({ path: '/health' }))).toBe(true);
  });

  it('accepts ?access_token on the SSE stream and the docs (clients that cannot set headers)', () => {
    const query = { access_token: 's3cret-token' };
    expect(guard.canActivate(contextFor({ path: '/parallel/events/3f2a9c1e', query }))).toBe(true);
    expect(guard.canActivate(contextFor({ path: '/docs', query }))).toBe(true);
    expect(guard.canActivate(contextFor({ path: '/docs/swagger-ui.css', query }))).toBe(true);
  });

  it.each([['/parallel/execute'], ['/parallel/3f2a9c1e'], ['/agents'], ['/docsx']])(
    'does not accept ?access_token on %s',
    (path) => {
      expect(() => guard.canActivate(contextFor({ path, query: { access_token: 's3cret-token' } }))).toThrow(
        UnauthorizedException,
      );
    },
  );

  it.each([
    ['no credentials', {}],
    ['a wrong token of the same length', bearer('s3cret-tokeX')],
    ['a wrong token of another length', bearer('short')],
    ['a longer token with the right prefix', bearer('s3cret-token-and-more')],
    ['an empty bearer token', bearer('')],
    ['another scheme', { headers: { authorization: 'Basic s3cret-token' } }],
    ['a lower-case scheme', { headers: { authorization: 'bearer s3cret-token' } }],
    ['a wrong ?access_token on the stream', { path: '/parallel/events/t1', query: { access_token: 'nope' } }],
    [
      'an array ?access_token on the stream',
      { path: '/parallel/events/t1', query: { access_token: ['s3cret-token'] } },
    ],
    ['a sub-path of /health', { path: '/health/details' }],
  ])('refuses %s with 401', (_what, req: Partial<FakeRequest>) => {
    expect(() => guard.canActivate(contextFor(req))).toThrow(UnauthorizedException);
  });

  it('prefers the header over the query: a wrong header is refused even with a right ?access_token', () => {
    const ctx = contextFor({
      ...bearer('wrong'),
      path: '/parallel/events/t1',
      query: { access_token: 's3cret-token' },
    });
    expect(() => guard.canActivate(ctx)).toThrow(UnauthorizedException);
  });

  it('says how to authenticate', () => {
    expect(() => guard.canActivate(contextFor({}))).toThrow(
      'A valid API token is required (Authorization: Bearer <token>)',
    );
  });
});

describe('ApiTokenCheck', () => {
  it('compares multi-byte tokens by bytes', () => {
    const check = new ApiTokenCheck('jeton-é');
    expect(() => check.assert('/agents', 'Bearer jeton-é', undefined)).not.toThrow();
    // Same string length, different byte length.
    expect(() => check.assert('/agents', 'Bearer jeton-e', undefined)).toThrow(UnauthorizedException);
  });

  it('passes everything without a configured token', () => {
    expect(() => new ApiTokenCheck(undefined).assert('/agents', undefined, undefined)).not.toThrow();
  });
});
