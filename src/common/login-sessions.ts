import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a sign-in lasts: the session and its cookie expire this long after the sign-in (12 h). */
export const LOGIN_SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** Sessions kept at most; signing in beyond that ends the oldest one. */
export const MAX_LOGIN_SESSIONS = 1000;
/**
 * The shape of a session cookie's value: a random id and its HMAC, both base64url (32 bytes each). Log lines are
 * scrubbed of anything with this shape.
 */
export const SESSION_VALUE = /[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}/;

const VALUE_SHAPE = new RegExp(`^${SESSION_VALUE.source}$`);

export interface LoginSessionOptions {
  ttlMs?: number;
  maxSessions?: number;
  now?: () => number;
}

/**
 * The dashboard's sign-in sessions: the login cookie carries `<id>.<HMAC(id)>`, never the API token. Sessions live in
 * this process's memory, signed with a key drawn at start-up, so a restart signs everybody out; signing out revokes
 * a session at once (a copy of the cookie stops working); every session ends `ttlMs` after it began.
 */
export class LoginSessions {
  private readonly key = randomBytes(32);
  /** id → expiry (ms since the epoch), oldest first. */
  private readonly sessions = new Map<string, number>();
  readonly ttlMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(options: LoginSessionOptions = {}) {
    this.ttlMs = options.ttlMs ?? LOGIN_SESSION_TTL_MS;
    this.maxSessions = options.maxSessions ?? MAX_LOGIN_SESSIONS;
    this.now = options.now ?? Date.now;
  }

  /** Sessions currently held (expired ones are dropped as they are met). */
  get size(): number {
    return this.sessions.size;
  }

  /** Starts a session; returns the cookie value. */
  create(): string {
    this.dropExpired();
    while (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(id, this.now() + this.ttlMs);
    return `${id}.${this.sign(id)}`;
  }

  /** True for the value of a live session: well formed, signed by this process, not revoked, not expired. */
  verify(value: unknown): boolean {
    const id = this.idOf(value);
    if (id === undefined) return false;
    const expires = this.sessions.get(id);
    if (expires === undefined) return false;
    if (this.now() >= expires) {
      this.sessions.delete(id);
      return false;
    }
    return true;
  }

  /** Ends a session (signing out); false when the value was no live session. */
  revoke(value: unknown): boolean {
    const id = this.idOf(value);
    return id !== undefined && this.sessions.delete(id);
  }

  /** The id of a well-formed, correctly signed value. */
  private idOf(value: unknown): string | undefined {
    if (typeof value !== 'string' || !VALUE_SHAPE.test(value)) return undefined;
    const [id, signature] = value.split('.');
    // compared as text, not decoded: base64url's last character carries spare bits, so different texts can decode to
    // the same bytes — only the one canonical spelling of the signature is accepted
    const expected = Buffer.from(this.sign(id), 'utf8');
    const given = Buffer.from(signature, 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected) ? id : undefined;
  }

  private sign(id: string): string {
    return createHmac('sha256', this.key).update(id).digest('base64url');
  }

  /** Every session has the same lifetime, so the map (oldest first) is also in order of expiry. */
  private dropExpired(): void {
    const now = this.now();
    for (const [id, expires] of this.sessions) {
      if (now < expires) return;
      this.sessions.delete(id);
    }
  }
}
