import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { DomainError, type DomainErrorCode } from './domain-error';
import { scanJsonNesting } from './json-depth';

/**
 * Deepest nesting of objects and arrays a JSON body may have. The deepest legitimate request,
 * `POST /parallel/execute`, nests 4 levels (`{ groups: [ { node_ids: [ … ] } ] }`); 64 leaves room for any future
 * field while keeping every later recursive step (validation, class-transformer) far from the stack limit.
 */
export const JSON_MAX_DEPTH = 64;

/** The media types parsed as JSON; other bodies are left unparsed (and the route sees no body). */
export const JSON_MEDIA_TYPES = ['application/json', 'application/*+json'];

/** The request `Content-Encoding`s the service decodes (one coding; no list, no `x-gzip`, no `compress`). */
export const SUPPORTED_CONTENT_ENCODINGS: readonly string[] = ['identity', 'gzip', 'deflate', 'br'];

const SUPPORTED_ENCODINGS_TEXT = SUPPORTED_CONTENT_ENCODINGS.join(', ');

/** A header value as it appears in a problem's detail: quoted, at most 64 characters. */
function quoted(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

export class JsonTooDeepError extends DomainError {
  readonly code: DomainErrorCode = 'json-too-deep';
  constructor(
    readonly depth: number,
    readonly limit: number,
    offset: number,
  ) {
    super(
      `The JSON body nests objects and arrays ${depth} levels deep; at most ${limit} levels are allowed ` +
        `(level ${limit + 1} opens at byte ${offset} of the decoded body).`,
    );
  }
}

export class UnsupportedCharsetError extends DomainError {
  readonly code: DomainErrorCode = 'unsupported-charset';
  constructor(readonly charset: string) {
    super(
      `Unsupported charset ${quoted(charset)}: a JSON body must be UTF-8 ` +
        '(Content-Type: application/json; charset=utf-8, or no charset parameter).',
    );
  }
}

export class UnsupportedContentEncodingError extends DomainError {
  readonly code: DomainErrorCode = 'unsupported-content-encoding';
  constructor(readonly encoding: string) {
    super(
      `Unsupported Content-Encoding ${quoted(encoding)}; supported: ${SUPPORTED_ENCODINGS_TEXT} (a single coding).`,
    );
  }
}

export class InvalidContentEncodingError extends DomainError {
  readonly code: DomainErrorCode = 'invalid-content-encoding';
  constructor(
    readonly encoding: string,
    reason: string,
  ) {
    super(
      `The request body is not valid ${encoding} data (${reason}); ` +
        `supported Content-Encoding values: ${SUPPORTED_ENCODINGS_TEXT}.`,
    );
  }
}

/**
 * Parses JSON bodies (`application/json`, `application/*+json`) with Express's body-parser, adding what it lacks:
 * UTF-8 only; a fixed set of content codings (checked before anything is read); the nesting depth checked on the
 * decoded bytes in one linear pass _before_ `JSON.parse` (so a 1,000,000-level body is refused in milliseconds
 * instead of blocking the event loop and overflowing the stack later); and every failure as a domain error with its
 * own problem type. The size limit applies to the decoded body, as before.
 */
export function jsonBodyParser(options: { limit: number; maxDepth?: number }): RequestHandler {
  const maxDepth = options.maxDepth ?? JSON_MAX_DEPTH;
  // requests whose JSON-typed body was empty: body-parser makes that `{}`, but no bytes are no JSON (the route says
  // "the body must be JSON", not that each of its fields is missing)
  const empty = new WeakSet<object>();
  const parse = express.json({
    limit: options.limit,
    type: JSON_MEDIA_TYPES,
    // runs on the raw (decoded, not yet parsed) bytes; `charset` is the Content-Type's, lower-cased, or utf-8
    verify: (req, _res, body, charset) => {
      if (charset !== 'utf-8') throw new UnsupportedCharsetError(charset);
      if (body.length === 0) empty.add(req);
      const nesting = scanJsonNesting(body, maxDepth);
      if (nesting.firstPastLimit >= 0)
        throw new JsonTooDeepError(nesting.depth, maxDepth, nesting.firstPastLimit);
    },
  });
  return (req: Request, res: Response, next: NextFunction): void => {
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (req.is(JSON_MEDIA_TYPES) && !SUPPORTED_CONTENT_ENCODINGS.includes(encoding)) {
      next(new UnsupportedContentEncodingError(req.headers['content-encoding'] ?? ''));
      return;
    }
    parse(req, res, (err?: unknown) => {
      if (err !== undefined && err !== null) return next(bodyParserError(err, encoding));
      if (empty.has(req)) req.body = undefined;
      next();
    });
  };
}

/**
 * body-parser's own errors as domain errors: its charset/encoding refusals (`charset.unsupported`,
 * `encoding.unsupported`) and a decompression failure (the zlib error, which carries no `type`; its `code` is
 * `Z_BUF_ERROR` for a truncated stream, `Z_DATA_ERROR` or a brotli `ERR_…` for corrupt data). Everything else (size
 * limit, JSON syntax, aborted request) keeps its existing handling.
 */
export function bodyParserError(err: unknown, encoding: string): unknown {
  if (err instanceof DomainError || typeof err !== 'object' || err === null) return err;
  const fields = err as { type?: unknown; charset?: unknown; encoding?: unknown; code?: unknown };
  if (fields.type === 'charset.unsupported')
    return new UnsupportedCharsetError(typeof fields.charset === 'string' ? fields.charset : '');
  if (fields.type === 'encoding.unsupported')
    return new UnsupportedContentEncodingError(
      typeof fields.encoding === 'string' ? fields.encoding : encoding,
    );
  if (fields.type === undefined && encoding !== 'identity')
    return new InvalidContentEncodingError(
      encoding,
      fields.code === 'Z_BUF_ERROR' ? 'it ends early' : 'corrupt data',
    );
  return err;
}
