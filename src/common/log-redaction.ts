import { unescape as unescapeQuery } from 'node:querystring';

/** What a secret is replaced by in a log line. */
export const REDACTED = '[redacted]';

/** Log fields that may carry a secret: replaced by `[redacted]` on every log line. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.query.access_token',
  'res.headers["set-cookie"]',
  'token',
  'apiToken',
  'apiKey',
];

/** Query parameter names (once decoded) whose values are masked in logs: any name that looks like a credential. */
const SECRET_NAME = /token|secret|passw|api.?key|session|credential|auth/i;

/**
 * A query parameter's name as the query parser sees it (`+` is a space, then percent-decoding; a malformed escape is
 * kept as it is), so that `access%5Ftoken` or `%61ccess_token` are recognised as `access_token`.
 */
function decodedName(raw: string): string {
  return unescapeQuery(raw.replace(/\+/g, ' '));
}

/**
 * Masks secrets in a URL's query: the value of every parameter whose decoded name looks like a credential
 * (`?access_token=…`, `?access%5Ftoken=…`, `?%61ccess_token=…` all become `…=[redacted]`). Text after a `#` is treated
 * the same way.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url.slice(q + 1).split(/([&#])/);
  for (let i = 0; i < parts.length; i += 2) {
    const eq = parts[i].indexOf('=');
    if (eq >= 0 && SECRET_NAME.test(decodedName(parts[i].slice(0, eq)))) {
      parts[i] = `${parts[i].slice(0, eq + 1)}${REDACTED}`;
    }
  }
  return `${url.slice(0, q + 1)}${parts.join('')}`;
}

/** A parsed query with the values of credential-like parameters masked (a new object; the request is untouched). */
export function redactQuery(query: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(query).map(([k, v]) => [k, SECRET_NAME.test(k) ? REDACTED : v]));
}

/** pino-http request serializer: the standard fields, with the URL's and the parsed query's secrets masked. */
export function redactRequestUrl<T extends { url?: unknown; query?: unknown }>(req: T): T {
  const url = typeof req.url === 'string' ? { url: redactUrl(req.url) } : {};
  const query =
    typeof req.query === 'object' && req.query !== null
      ? { query: redactQuery(req.query as Record<string, unknown>) }
      : {};
  return 'url' in url || 'query' in query ? { ...req, ...url, ...query } : req;
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/-]/g;

/** `%XX` (optionally double-encoded as `%25XX`) for one byte, either hex case. */
function percentPattern(byte: number): string {
  const hex = byte.toString(16).padStart(2, '0');
  const digits = [...hex].map((d) => (/[a-f]/.test(d) ? `[${d}${d.toUpperCase()}]` : d)).join('');
  return `%(?:25)?${digits}`;
}

/**
 * A pattern that finds `secret` in any spelling a log line can give it: each character as itself (JSON-escaped, as
 * pino writes it), percent-encoded in either hex case (once or twice), or `+` for a space.
 */
export function anySpellingOf(secret: string): string {
  return [...secret]
    .map((c) => {
      const literal = JSON.stringify(c).slice(1, -1).replace(REGEX_SPECIAL, '\\$&');
      const encoded = [...Buffer.from(c, 'utf8')].map(percentPattern).join('');
      return `(?:${literal}|${encoded}${c === ' ' ? '|\\+' : ''})`;
    })
    .join('');
}

/**
 * The last line of defence, applied to every serialized log line (pino's `hooks.streamWrite`): any spelling of a
 * configured secret, and anything matching the extra patterns (e.g. the shape of a session cookie), becomes
 * `[redacted]` whatever field or message carried it. `undefined` when there is nothing to look for.
 */
export function secretScrubber(
  secrets: readonly (string | undefined)[],
  patterns: readonly RegExp[] = [],
): ((line: string) => string) | undefined {
  const sources = [
    ...secrets.filter((s): s is string => typeof s === 'string' && s !== '').map(anySpellingOf),
    ...patterns.map((p) => p.source),
  ];
  if (sources.length === 0) return undefined;
  const all = new RegExp(sources.map((s) => `(?:${s})`).join('|'), 'g');
  return (line) => line.replace(all, REDACTED);
}
