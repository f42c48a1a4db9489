import { DomainError } from './domain-error';
import {
  bodyParserError,
  InvalidContentEncodingError,
  JSON_MAX_DEPTH,
  JsonTooDeepError,
  SUPPORTED_CONTENT_ENCODINGS,
  UnsupportedCharsetError,
  UnsupportedContentEncodingError,
} from './json-body';
import { PROBLEM_TABLE } from './problem-table';

describe('json-body errors', () => {
  it('have problem-table codes with the documented statuses', () => {
    expect(PROBLEM_TABLE[new JsonTooDeepError(65, 64, 64).code].status).toBe(400);
    expect(PROBLEM_TABLE[new InvalidContentEncodingError('gzip', 'corrupt data').code].status).toBe(400);
    expect(PROBLEM_TABLE[new UnsupportedCharsetError('latin1').code].status).toBe(415);
    expect(PROBLEM_TABLE[new UnsupportedContentEncodingError('compress').code].status).toBe(415);
  });

  it('say the limit, the depth found and where', () => {
    expect(new JsonTooDeepError(1_000_000, 64, 64).message).toBe(
      'The JSON body nests objects and arrays 1000000 levels deep; at most 64 levels are allowed ' +
        '(level 65 opens at byte 64 of the decoded body).',
    );
    expect(JSON_MAX_DEPTH).toBe(64);
  });

  it('name what is supported', () => {
    expect(new UnsupportedCharsetError('koi8-r').message).toContain('"koi8-r": a JSON body must be UTF-8');
    expect(SUPPORTED_CONTENT_ENCODINGS).toEqual(['identity', 'gzip', 'deflate', 'br']);
    expect(new UnsupportedContentEncodingError('compress').message).toBe(
      'Unsupported Content-Encoding "compress"; supported: identity, gzip, deflate, br (a single coding).',
    );
    expect(new InvalidContentEncodingError('br', 'corrupt data').message).toContain(
      'not valid br data (corrupt data); supported Content-Encoding values: identity, gzip, deflate, br.',
    );
  });

  it('quote what the client sent, escaped and cut at 64 characters', () => {
    const long = new UnsupportedContentEncodingError('x'.repeat(1000)).message;
    expect(long).toContain(`"${'x'.repeat(64)}…"`);
    expect(long.length).toBeLessThan(200);
    expect(new UnsupportedCharsetError('a"b\\c').message).toContain('"a\\"b\\\\c"');
  });
});

describe('bodyParserError', () => {
  it('turns body-parser charset and encoding refusals into domain errors', () => {
    const charset = bodyParserError(
      { type: 'charset.unsupported', charset: 'latin1', status: 415 },
      'identity',
    );
    expect(charset).toBeInstanceOf(UnsupportedCharsetError);
    expect((charset as UnsupportedCharsetError).charset).toBe('latin1');
    const encoding = bodyParserError({ type: 'encoding.unsupported', encoding: 'zstd', status: 415 }, 'zstd');
    expect(encoding).toBeInstanceOf(UnsupportedContentEncodingError);
    expect((encoding as UnsupportedContentEncodingError).encoding).toBe('zstd');
    expect(bodyParserError({ type: 'charset.unsupported' }, 'identity')).toBeInstanceOf(
      UnsupportedCharsetError,
    );
    expect(
      (bodyParserError({ type: 'encoding.unsupported' }, 'compress') as UnsupportedContentEncodingError)
        .encoding,
    ).toBe('compress');
  });

  it('turns a decompression failure (a zlib error: no type) into invalid-content-encoding', () => {
    const corrupt = bodyParserError(
      Object.assign(new Error('incorrect header check'), { code: 'Z_DATA_ERROR' }),
      'gzip',
    );
    expect(corrupt).toBeInstanceOf(InvalidContentEncodingError);
    expect((corrupt as Error).message).toContain('not valid gzip data (corrupt data)');
    const truncated = bodyParserError({ code: 'Z_BUF_ERROR', status: 400 }, 'deflate');
    expect((truncated as Error).message).toContain('not valid deflate data (it ends early)');
    const brotli = bodyParserError({ code: 'ERR__ERROR_FORMAT_PADDING_2' }, 'br');
    expect((brotli as Error).message).toContain('not valid br data (corrupt data)');
  });

  it('leaves everything else as it was', () => {
    const tooLarge = { type: 'entity.too.large', status: 413 };
    expect(bodyParserError(tooLarge, 'gzip')).toBe(tooLarge);
    const syntax = Object.assign(new SyntaxError('Unexpected token'), { type: 'entity.parse.failed' });
    expect(bodyParserError(syntax, 'identity')).toBe(syntax);
    const untyped = new Error('something else');
    expect(bodyParserError(untyped, 'identity')).toBe(untyped);
    const domain = new JsonTooDeepError(70, 64, 64);
    expect(bodyParserError(domain, 'gzip')).toBe(domain);
    expect(domain).toBeInstanceOf(DomainError);
    expect(bodyParserError('a string', 'gzip')).toBe('a string');
    expect(bodyParserError(null, 'gzip')).toBeNull();
  });
});
