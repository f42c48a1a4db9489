/** Log fields that may carry a secret: replaced by `[redacted]` on every log line. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.query.access_token',
  'res.headers["set-cookie"]',
  'token',
  'apiToken',
  'apiKey',
];

const TOKEN_IN_URL = /([?&](?:access_token|token|api_key)=)[^&#]*/gi;

/** Masks secrets in a URL's query (`?access_token=…` becomes `?access_token=[redacted]`). */
export function redactUrl(url: string): string {
  return url.replace(TOKEN_IN_URL, '$1[redacted]');
}

/** pino-http request serializer: the standard fields, with the URL's secrets masked. */
export function redactRequestUrl<T extends { url?: unknown }>(req: T): T {
  return typeof req.url === 'string' ? { ...req, url: redactUrl(req.url) } : req;
}
