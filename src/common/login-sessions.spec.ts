import { LOGIN_SESSION_TTL_MS, LoginSessions, SESSION_VALUE } from './login-sessions';

describe('LoginSessions', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => (now = 1_700_000_000_000));

  it('hands out signed random values, each verifying until it is revoked', () => {
    const sessions = new LoginSessions({ now: clock });
    const a = sessions.create();
    const b = sessions.create();
    expect(a).not.toBe(b);
    expect(a).toMatch(new RegExp(`^${SESSION_VALUE.source}$`));
    expect(sessions.verify(a)).toBe(true);
    expect(sessions.verify(b)).toBe(true);
    expect(sessions.revoke(a)).toBe(true);
    expect(sessions.verify(a)).toBe(false);
    expect(sessions.revoke(a)).toBe(false);
    expect(sessions.verify(b)).toBe(true);
    expect(sessions.size).toBe(1);
  });

  it('refuses forged, tampered and malformed values', () => {
    const sessions = new LoginSessions({ now: clock });
    const value = sessions.create();
    const [id, signature] = value.split('.');
    const flip = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [
      `${id}.${flip(signature)}`,
      `${flip(id)}.${signature}`,
      `${id}.${signature}x`,
      id,
      '',
      'a.b',
      undefined,
      42,
      [value],
    ]) {
      expect(sessions.verify(bad)).toBe(false);
      expect(sessions.revoke(bad)).toBe(false);
    }
    // a signature spelled differently but decoding to the same bytes (base64url's spare bits in its last character)
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const spare = `${signature.slice(0, -1)}${alphabet[alphabet.indexOf(signature.slice(-1)) ^ 1]}`;
    expect(Buffer.from(spare, 'base64url')).toEqual(Buffer.from(signature, 'base64url'));
    expect(sessions.verify(`${id}.${spare}`)).toBe(false);
    // another process (another key) cannot mint values this one accepts, even for a live id
    const other = new LoginSessions({ now: clock });
    const foreign = other.create();
    expect(sessions.verify(foreign)).toBe(false);
    expect(sessions.verify(value)).toBe(true);
  });

  it('ends every session its lifetime after it began (12 h by default)', () => {
    const sessions = new LoginSessions({ now: clock });
    expect(sessions.ttlMs).toBe(LOGIN_SESSION_TTL_MS);
    expect(LOGIN_SESSION_TTL_MS).toBe(12 * 3600_000);
    const value = sessions.create();
    now += LOGIN_SESSION_TTL_MS - 1;
    expect(sessions.verify(value)).toBe(true);
    now += 1;
    expect(sessions.verify(value)).toBe(false);
    expect(sessions.size).toBe(0);
  });

  it('drops expired sessions when a new one starts, and keeps at most maxSessions (the oldest go)', () => {
    const sessions = new LoginSessions({ now: clock, ttlMs: 1_000, maxSessions: 3 });
    const first = sessions.create();
    now += 600;
    const second = sessions.create();
    now += 500; // the first has expired
    const third = sessions.create();
    expect(sessions.size).toBe(2);
    const fourth = sessions.create();
    const fifth = sessions.create(); // full: the oldest live one (second) goes
    expect(sessions.size).toBe(3);
    expect([first, second, third, fourth, fifth].map((v) => sessions.verify(v))).toEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
  });

  it('uses the real clock by default', () => {
    const sessions = new LoginSessions();
    expect(sessions.verify(sessions.create())).toBe(true);
  });
});
