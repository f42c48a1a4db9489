import { AuthFailureLimiter, clientKey, DEFAULT_AUTH_FAILURE_LIMIT } from './auth-throttle';

describe('AuthFailureLimiter', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => (now = 5_000_000));

  it('allows `limit` failures per client per window, then says how long to wait', () => {
    const limiter = new AuthFailureLimiter({ limit: 3, windowMs: 10_000, now: clock });
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfterSeconds('a')).toBe(0);
      limiter.fail('a');
    }
    expect(limiter.retryAfterSeconds('a')).toBe(10);
    now += 2_500;
    expect(limiter.retryAfterSeconds('a')).toBe(8); // rounded up
    now += 7_499;
    expect(limiter.retryAfterSeconds('a')).toBe(1);
    // others are not affected
    expect(limiter.retryAfterSeconds('b')).toBe(0);
    // the window ends: a fresh count
    now += 1;
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    expect(limiter.size).toBe(0);
    limiter.fail('a');
    expect(limiter.retryAfterSeconds('a')).toBe(0);
  });

  it('keeps counting in the window it started (failures spread over the window add up)', () => {
    const limiter = new AuthFailureLimiter({ limit: 2, windowMs: 60_000, now: clock });
    limiter.fail('a');
    now += 59_000;
    limiter.fail('a');
    expect(limiter.retryAfterSeconds('a')).toBe(1);
    now += 1_000;
    limiter.fail('a');
    expect(limiter.retryAfterSeconds('a')).toBe(0);
  });

  it('defaults to 10 failures a minute', () => {
    const limiter = new AuthFailureLimiter({ now: clock });
    expect(limiter.limit).toBe(DEFAULT_AUTH_FAILURE_LIMIT);
    for (let i = 0; i < 10; i++) limiter.fail('a');
    expect(limiter.retryAfterSeconds('a')).toBe(60);
    expect(new AuthFailureLimiter().limit).toBe(10);
  });

  it('remembers a bounded number of clients: ended windows go first, then the oldest', () => {
    const limiter = new AuthFailureLimiter({ limit: 1, windowMs: 1_000, maxClients: 3, now: clock });
    limiter.fail('a');
    now += 500;
    limiter.fail('b');
    limiter.fail('c');
    now += 600; // a's window has ended
    limiter.fail('d');
    expect(limiter.size).toBe(3);
    expect(limiter.retryAfterSeconds('b')).toBe(1);
    limiter.fail('e'); // every window live: the oldest (b) goes
    expect(limiter.size).toBe(3);
    expect(limiter.retryAfterSeconds('b')).toBe(0);
    expect(limiter.retryAfterSeconds('c')).toBe(1);
    expect(limiter.retryAfterSeconds('e')).toBe(1);
  });
  it('with a store, takes the shared count when it is higher; a failing store changes nothing', async () => {
    const answers: Promise<{ failures: number; expiresInMs: number }>[] = [
      Promise.resolve({ failures: 1, expiresInMs: 60_000 }),
      Promise.resolve({ failures: 9, expiresInMs: 30_000 }),
      Promise.reject(new Error('connection lost')),
    ];
    const add = jest.fn(
      (_client: string, _windowMs: number) =>
        answers.shift() as Promise<{ failures: number; expiresInMs: number }>,
    );
    const limiter = new AuthFailureLimiter({ limit: 3, windowMs: 60_000, now: clock, store: { add } });
    limiter.fail('a');
    await Promise.resolve();
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    // other processes failed 8 times meanwhile: blocked for what is left of the shared window
    limiter.fail('a');
    await Promise.resolve();
    expect(limiter.retryAfterSeconds('a')).toBe(30);
    limiter.fail('a');
    await new Promise((r) => setImmediate(r));
    expect(limiter.retryAfterSeconds('a')).toBe(30);
    expect(add.mock.calls).toEqual([
      ['a', 60_000],
      ['a', 60_000],
      ['a', 60_000],
    ]);
  });
});

describe('clientKey', () => {
  it.each([
    ['192.0.2.7', '192.0.2.7'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['::FFFF:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff::9', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4::/64'],
    ['', 'unknown'],
    [undefined, 'unknown'],
  ])('%s → %s', (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});
