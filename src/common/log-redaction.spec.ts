import {
  anySpellingOf,
  REDACTED,
  redactQuery,
  redactRequestUrl,
  redactUrl,
  secretScrubber,
} from './log-redaction';
import { SESSION_VALUE } from './login-sessions';

const TOKEN = 'L0g-secret_Token~value.0123456789';
const encodeAll = (s: string, upper = true): string =>
  [...Buffer.from(s, 'utf8')]
    .map((b) => `%${b.toString(16).padStart(2, '0')}`)
    .map((e) => (upper ? e.toUpperCase() : e))
    .join('');

describe('redactUrl', () => {
  it.each([
    ['/e?access_token=T&last_event_id=3', '/e?access_token=[redacted]&last_event_id=3'],
    ['/e?access%5Ftoken=T', '/e?access%5Ftoken=[redacted]'],
    ['/e?access%5ftoken=T', '/e?access%5ftoken=[redacted]'],
    ['/e?%61ccess_token=T', '/e?%61ccess_token=[redacted]'],
    [`/e?${encodeAll('access_token')}=T`, `/e?${encodeAll('access_token')}=[redacted]`],
    ['/e?ACCESS_TOKEN=T', '/e?ACCESS_TOKEN=[redacted]'],
    ['/e?access+token=T', '/e?access+token=[redacted]'],
    ['/e?access_token[]=T', '/e?access_token[]=[redacted]'],
    ['/e?access_token=a=b&x=1', '/e?access_token=[redacted]&x=1'],
    ['/e?x=1&access_token=T&access_token=U', '/e?x=1&access_token=[redacted]&access_token=[redacted]'],
    ['/docs?x=1&TOKEN=s3cret#top', '/docs?x=1&TOKEN=[redacted]#top'],
    ['/docs?x=1#&access_token=T', '/docs?x=1#&access_token=[redacted]'],
    [
      '/x?api_key=k&apikey=k&password=p&session=s&auth=a',
      '/x?api_key=[redacted]&apikey=[redacted]&password=[redacted]&session=[redacted]&auth=[redacted]',
    ],
    ['/x?bad%E0name_token=T', '/x?bad%E0name_token=[redacted]'],
    ['/parallel/tasks?limit=5&status=running', '/parallel/tasks?limit=5&status=running'],
    ['/e?access_token', '/e?access_token'],
    ['/no-query', '/no-query'],
  ])('%s → %s', (url, masked) => {
    expect(redactUrl(url)).toBe(masked);
  });
});

describe('redactQuery and the request serializer', () => {
  it('masks credential-like keys of a parsed query', () => {
    expect(redactQuery({ access_token: 'T', limit: '5', Token: ['a'] })).toEqual({
      access_token: REDACTED,
      limit: '5',
      Token: REDACTED,
    });
  });

  it('masks the URL and the query, and leaves other shapes alone', () => {
    expect(redactRequestUrl({ id: 1, url: '/?access%5Ftoken=t' })).toEqual({
      id: 1,
      url: '/?access%5Ftoken=[redacted]',
    });
    expect(redactRequestUrl({ id: 1, url: '/e', query: { access_token: 't', n: '1' } })).toEqual({
      id: 1,
      url: '/e',
      query: { access_token: REDACTED, n: '1' },
    });
    const noUrl: { id: number; url?: unknown; query?: unknown } = { id: 2, query: null };
    expect(redactRequestUrl(noUrl)).toBe(noUrl);
  });
});

describe('secretScrubber', () => {
  it('finds a secret in every spelling: literal, percent-encoded (either case, once or twice), mixed', () => {
    const scrub = secretScrubber([TOKEN])!;
    const mixed = [...TOKEN].map((c, i) => (i % 2 ? encodeAll(c, false) : c)).join('');
    const twice = encodeAll(TOKEN).replace(/%/g, '%25');
    for (const spelling of [TOKEN, encodeAll(TOKEN), encodeAll(TOKEN, false), mixed, twice]) {
      const line = JSON.stringify({ msg: `before ${spelling} after`, url: `/x?q=${spelling}&y=1` });
      expect(scrub(line)).toBe(
        JSON.stringify({ msg: 'before [redacted] after', url: '/x?q=[redacted]&y=1' }),
      );
    }
    expect(scrub('nothing secret here')).toBe('nothing secret here');
    // a near miss is left alone
    expect(scrub(TOKEN.slice(0, -1))).toBe(TOKEN.slice(0, -1));
  });

  it('matches JSON-escaped characters, spaces as +, and multi-byte characters', () => {
    const secret = 'a"b\\c d/é-0123456789';
    const scrub = secretScrubber([secret])!;
    expect(scrub(JSON.stringify({ s: secret }))).toBe('{"s":"[redacted]"}');
    expect(scrub(`q=${encodeURIComponent(secret).replace(/%20/g, '+')}`)).toBe('q=[redacted]');
    expect(scrub(`q=${encodeURIComponent(secret)}`)).toBe('q=[redacted]');
    expect(new RegExp(anySpellingOf('é')).test('%c3%A9')).toBe(true);
  });

  it('also masks whatever matches the extra patterns (the shape of a session value)', () => {
    const scrub = secretScrubber([undefined, ''], [SESSION_VALUE])!;
    const session = `${'A'.repeat(43)}.${'b'.repeat(43)}`;
    expect(scrub(`cookie ${session};`)).toBe('cookie [redacted];');
  });

  it('is undefined when there is nothing to look for', () => {
    expect(secretScrubber([undefined, ''])).toBeUndefined();
    expect(secretScrubber([])).toBeUndefined();
  });
});
