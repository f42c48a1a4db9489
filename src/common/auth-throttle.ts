import { isIPv6 } from 'node:net';

/** Failed token attempts allowed per client per window before its attempts are refused (`AUTH_FAILURE_LIMIT`). */
export const DEFAULT_AUTH_FAILURE_LIMIT = 10;
/** The window the limit counts over: one minute. */
export const AUTH_FAILURE_WINDOW_MS = 60_000;
/** Clients remembered at most (memory stays bounded when many addresses guess). */
export const MAX_THROTTLED_CLIENTS = 10_000;

export interface AuthFailureLimiterOptions {
  limit?: number;
  windowMs?: number;
  maxClients?: number;
  now?: () => number;
  /** Where the service's processes share their counts (Redis); without it each process counts alone. */
  store?: AuthFailureStore;
}

/** Failure counts shared by the processes of one service. */
export interface AuthFailureStore {
  /**
   * Counts one failure of `client` in its shared window (started by its first failure anywhere, `windowMs` long);
   * resolves with the shared count and the milliseconds left in that window.
   */
  add(client: string, windowMs: number): Promise<{ failures: number; expiresInMs: number }>;
}

interface Window {
  failures: number;
  /** When this window ends and the count starts again (ms since the epoch). */
  resetAt: number;
}

/**
 * Counts failed authentications per client (fixed one-minute windows). Once a client has failed `limit` times in its
 * window, it gets no answer about any token until the window ends: `retryAfterSeconds` says how long. Clients are
 * told apart by address (`clientKey`); other clients are never affected.
 *
 * With a `store`, each failure is also counted there, and the shared count it answers raises this process's own:
 * the checks stay synchronous and local, so a process learns of other processes' failures of a client at that
 * client's next failure here (a guesser spread over N processes gets at most N − 1 more tries per window, not N ×
 * the limit). A store that fails changes nothing: the local count stands.
 */
export class AuthFailureLimiter {
  readonly limit: number;
  private readonly windowMs: number;
  private readonly maxClients: number;
  private readonly now: () => number;
  private readonly store: AuthFailureStore | undefined;
  private readonly clients = new Map<string, Window>();

  constructor(options: AuthFailureLimiterOptions = {}) {
    this.limit = options.limit ?? DEFAULT_AUTH_FAILURE_LIMIT;
    this.windowMs = options.windowMs ?? AUTH_FAILURE_WINDOW_MS;
    this.maxClients = options.maxClients ?? MAX_THROTTLED_CLIENTS;
    this.now = options.now ?? Date.now;
    this.store = options.store;
  }

  /** Clients with a current window. */
  get size(): number {
    return this.clients.size;
  }

  /** Whole seconds until `client` may try a token again; 0 when it may now. */
  retryAfterSeconds(client: string): number {
    const w = this.current(client);
    return w && w.failures >= this.limit ? Math.max(1, Math.ceil((w.resetAt - this.now()) / 1000)) : 0;
  }

  /** Records a failed attempt by `client`. */
  fail(client: string): void {
    this.store?.add(client, this.windowMs).then(
      (shared) => this.learn(client, shared.failures, shared.expiresInMs),
      () => undefined,
    );
    const w = this.current(client);
    if (w) {
      w.failures++;
      return;
    }
    if (this.clients.size >= this.maxClients) this.makeRoom();
    this.clients.set(client, { failures: 1, resetAt: this.now() + this.windowMs });
  }

  /** The shared count of `client`'s window, when it is higher than this process's own, becomes its own. */
  private learn(client: string, failures: number, expiresInMs: number): void {
    if (!(expiresInMs > 0) || !Number.isFinite(failures)) return;
    const w = this.current(client);
    if (w && w.failures >= failures) return;
    if (!w && this.clients.size >= this.maxClients) this.makeRoom();
    this.clients.set(client, { failures, resetAt: this.now() + expiresInMs });
  }

  /** The client's window if it has not ended yet (an ended one is dropped). */
  private current(client: string): Window | undefined {
    const w = this.clients.get(client);
    if (w && this.now() >= w.resetAt) {
      this.clients.delete(client);
      return undefined;
    }
    return w;
  }

  /** Drops ended windows; when every window is live, the oldest goes. */
  private makeRoom(): void {
    const now = this.now();
    for (const [client, w] of this.clients) if (now >= w.resetAt) this.clients.delete(client);
    if (this.clients.size >= this.maxClients) this.clients.delete(this.clients.keys().next().value as string);
  }
}

/**
 * Who a request comes from, for throttling: its IPv4 address (an IPv4-mapped IPv6 address counts as IPv4), or the
 * /64 network of an IPv6 address (one subscriber usually holds a whole /64). The socket's address is used, never a
 * forwarded-for header a client could vary.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const plain = address.replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(plain);
  if (mapped) return mapped[1];
  if (!isIPv6(plain)) return plain;
  return `${expandIPv6(plain).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros (an embedded IPv4 tail counts as two groups). */
function expandIPv6(address: string): string[] {
  const [head, tail] = address.split('::');
  const groups = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const width = (gs: string[]): number => gs.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const h = groups(head);
  const t = groups(tail);
  const zeros = tail === undefined ? [] : Array<string>(8 - width(h) - width(t)).fill('0');
  return [...h, ...zeros, ...t].map((g) => (g.includes('.') ? g : parseInt(g, 16).toString(16)));
}
