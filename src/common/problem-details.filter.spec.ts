import {
  type ArgumentsHost,
  BadRequestException,
  HttpException,
  Logger,
  NotFoundException,
  PayloadTooLargeException,
  UnauthorizedException,
} from '@nestjs/common';
import { CanvasPathOutsideVaultError, UnknownNodeIdsError } from '../canvas';
import { IdempotencyKeyReusedError, TaskNotFoundError } from '../session';
import { DomainError, type DomainErrorCode } from './domain-error';
import { Test } from '@nestjs/testing';
import { ThrottlerException } from '@nestjs/throttler';
import { RESOLVED_OPTIONS } from '../config';
import { ProblemDetailsFilter, TOO_MANY_REQUESTS_DETAIL } from './problem-details.filter';
import { PROBLEM_TABLE, problemType } from './problem-table';

/** Records what the filter does to an Express-like response. */
class FakeResponse {
  headersSent = false;
  writableEnded = false;
  statusCode?: number;
  contentType?: string;
  body?: string;
  headers: Record<string, string> = {};
  ended = 0;
  status(code: number): this {
    this.statusCode = code;
    return this;
  }
  type(t: string): this {
    this.contentType = t;
    return this;
  }
  send(body: string): this {
    this.body = body;
    return this;
  }
  setHeader(name: string, value: string): void {
    this.headers[name] = value;
  }
  end(): void {
    this.ended++;
    this.writableEnded = true;
  }
}

const hostFor = (res: FakeResponse, originalUrl = '/parallel/execute', method = 'POST'): ArgumentsHost =>
  ({
    switchToHttp: () => ({
      getResponse: () => res,
      getRequest: () => ({ originalUrl, path: originalUrl.split('?')[0], method }),
    }),
  }) as unknown as ArgumentsHost;

class TestDomainError extends DomainError {
  constructor(
    readonly code: DomainErrorCode,
    message = `test ${code}`,
    errors?: { field: string; message: string }[],
  ) {
    super(message, errors);
  }
}

describe('ProblemDetailsFilter', () => {
  let filter: ProblemDetailsFilter;
  let errorLog: jest.SpyInstance;
  let warnLog: jest.SpyInstance;

  beforeEach(() => {
    filter = new ProblemDetailsFilter();
    errorLog = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    warnLog = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => jest.restoreAllMocks());

  const send = (exception: unknown, url?: string) => {
    const res = new FakeResponse();
    filter.catch(exception, hostFor(res, url));
    return { res, body: JSON.parse(res.body ?? 'null') as Record<string, unknown> };
  };

  describe('domain errors', () => {
    it.each(Object.entries(PROBLEM_TABLE))('maps %s through the problem table', (code, { status, title }) => {
      const { res, body } = send(new TestDomainError(code as DomainErrorCode));
      expect(res.statusCode).toBe(status);
      expect(res.contentType).toBe('application/problem+json');
      expect(body).toEqual({
        type: `https://canvas-batch.dev/problems/${code}`,
        title,
        status,
        detail: `test ${code}`,
        instance: '/parallel/execute',
      });
    });

    it('sends the field errors of a real domain error', () => {
      const { res, body } = send(
        new CanvasPathOutsideVaultError('../x.canvas', '".." segments are not allowed'),
      );
      expect(res.statusCode).toBe(400);
      expect(body.type).toBe(problemType('canvas-path-outside-vault'));
      expect(body.errors).toEqual([{ field: 'canvas_path', message: '".." segments are not allowed' }]);
      expect(body.detail).toBe('canvas_path "../x.canvas" is refused: ".." segments are not allowed');
    });

    it('maps other real domain errors to their statuses', () => {
      expect(send(new TaskNotFoundError('abc')).res.statusCode).toBe(404);
      expect(send(new IdempotencyKeyReusedError('k', 't')).res.statusCode).toBe(422);
      expect(
        send(new UnknownNodeIdsError('a.canvas', [{ field: 'groups[0].node_ids[0]', message: 'm' }])).body
          .errors,
      ).toEqual([{ field: 'groups[0].node_ids[0]', message: 'm' }]);
    });

    it('uses the path as instance, never the query string (it may carry ?access_token=)', () => {
      const { res, body } = send(new TaskNotFoundError('t1'), '/parallel/events/t1?access_token=s3cret&x=1');
      expect(body.instance).toBe('/parallel/events/t1');
      expect(res.body).not.toContain('s3cret');
    });

    it('leaves out an empty errors list', () => {
      expect(send(new TestDomainError('validation-failed', 'x', [])).body).not.toHaveProperty('errors');
    });

    it('asks clients to retry later while shutting down (503 + Retry-After)', () => {
      const { res } = send(new TestDomainError('shutting-down'));
      expect(res.statusCode).toBe(503);
      expect(res.headers).toEqual({ 'Retry-After': '5' });
      expect(send(new TestDomainError('task-not-found')).res.headers).toEqual({});
    });
  });

  describe('HTTP exceptions', () => {
    it('maps a Nest exception with a message object by status', () => {
      const { res, body } = send(new NotFoundException('Cannot GET /nope'), '/nope');
      expect(res.statusCode).toBe(404);
      expect(body).toEqual({
        type: problemType('not-found'),
        title: 'Not found',
        status: 404,
        detail: 'Cannot GET /nope',
        instance: '/nope',
      });
    });

    it('maps 401 and 413', () => {
      expect(send(new UnauthorizedException('token please')).body).toMatchObject({
        type: problemType('unauthorized'),
        title: 'Unauthorized',
        status: 401,
        detail: 'token please',
      });
      expect(send(new PayloadTooLargeException()).body).toMatchObject({
        type: problemType('payload-too-large'),
        title: 'Payload too large',
        status: 413,
      });
    });

    it('uses a string response body as the detail', () => {
      expect(send(new HttpException('I am a teapot', 418)).body).toEqual({
        type: problemType('http-418'),
        title: 'I am a teapot',
        status: 418,
        detail: 'I am a teapot',
        instance: '/parallel/execute',
      });
    });

    it("falls back to the exception's message when the body's message is not a string", () => {
      const exception = new BadRequestException(['a must be a string', 'b must be a number']);
      expect(send(exception).body).toMatchObject({
        status: 400,
        title: 'Bad request',
        detail: exception.message,
      });
    });

    it('titles a status Nest does not know as "Error"', () => {
      expect(send(new HttpException({ message: 'odd' }, 599)).body).toMatchObject({
        type: problemType('http-599'),
        title: 'Error',
        status: 599,
        detail: 'odd',
      });
    });
  });

  describe('body-parser errors', () => {
    it('maps entity.too.large to 413', () => {
      const err = Object.assign(new Error('request entity too large'), {
        type: 'entity.too.large',
        status: 413,
      });
      expect(send(err).body).toEqual({
        type: problemType('payload-too-large'),
        title: 'Payload too large',
        status: 413,
        detail: 'The request body exceeds the size limit.',
        instance: '/parallel/execute',
      });
    });

    it('maps entity.parse.failed to 400', () => {
      const err = Object.assign(new SyntaxError('Unexpected token } in JSON'), {
        type: 'entity.parse.failed',
        status: 400,
      });
      expect(send(err).body).toMatchObject({
        type: problemType('bad-request'),
        title: 'Bad request',
        status: 400,
        detail: 'The request body is not valid JSON.',
      });
    });

    it('uses an http-<status> type for other 4xx body errors', () => {
      const err = { type: 'entity.verify.failed', status: 403 };
      expect(send(err).body).toMatchObject({ type: problemType('forbidden'), status: 403 });
      expect(send({ type: 'entity.odd', status: 418 }).body).toMatchObject({
        type: problemType('http-418'),
        status: 418,
      });
    });

    it.each([
      ['a non-4xx status', { type: 'entity.too.large', status: 500 }],
      ['a status that is not a number', { type: 'entity.too.large', status: '413' }],
      ['a type that is not entity.*', { type: 'charset.unsupported', status: 415 }],
      ['no type', { status: 413 }],
    ])('masks an error with %s as a 500', (_what, err) => {
      expect(send(err).res.statusCode).toBe(500);
    });
  });

  describe('unknown errors', () => {
    it('masks them as a generic 500 without internal detail, and logs the stack', () => {
      const err = new Error('SQLITE_CORRUPT at /var/lib/secret/path.sqlite');
      const { res, body } = send(err);
      expect(res.statusCode).toBe(500);
      expect(body).toEqual({
        type: problemType('internal-error'),
        title: 'Internal server error',
        status: 500,
        detail: 'An unexpected error occurred; it has been logged.',
        instance: '/parallel/execute',
      });
      expect(res.body).not.toContain('secret');
      expect(res.body).not.toContain('SQLITE');
      expect(errorLog).toHaveBeenCalledWith(err.stack);
    });

    it('logs the message of an Error without a stack', () => {
      const err = new Error('no stack here');
      err.stack = undefined;
      send(err);
      expect(errorLog).toHaveBeenCalledWith('no stack here');
    });

    it.each([
      ['a string', 'boom'],
      ['null', null],
      ['a number', 42],
    ])('masks a thrown %s', (_what, thrown) => {
      const { res, body } = send(thrown);
      expect(res.statusCode).toBe(500);
      expect(body.detail).toBe('An unexpected error occurred; it has been logged.');
      expect(errorLog).toHaveBeenCalledWith(String(thrown));
    });
  });

  describe('after the headers were sent (SSE)', () => {
    it('only ends the response, writing nothing, and logs a warning', () => {
      const res = new FakeResponse();
      res.headersSent = true;
      filter.catch(new Error('stream broke'), hostFor(res, '/parallel/events/t1', 'GET'));
      expect(res.ended).toBe(1);
      expect(res.statusCode).toBeUndefined();
      expect(res.body).toBeUndefined();
      expect(res.headers).toEqual({});
      expect(warnLog).toHaveBeenCalledWith(
        'error after headers were sent on GET /parallel/events/t1: An unexpected error occurred; it has been logged.',
      );
    });

    it('logs the URL with its token masked, however the parameter is spelled', () => {
      const res = new FakeResponse();
      res.headersSent = true;
      filter.catch(
        new Error('x'),
        hostFor(res, '/parallel/events/t1?access%5Ftoken=s3cret&last_event_id=2', 'GET'),
      );
      expect(warnLog).toHaveBeenCalledWith(
        'error after headers were sent on GET /parallel/events/t1?access%5Ftoken=[redacted]&last_event_id=2: An unexpected error occurred; it has been logged.',
      );
    });

    it('does not end a response that has already ended', () => {
      const res = new FakeResponse();
      res.headersSent = true;
      res.writableEnded = true;
      filter.catch(new TestDomainError('shutting-down'), hostFor(res));
      expect(res.ended).toBe(0);
      expect(res.headers).toEqual({});
    });
  });
});

describe('ProblemDetailsFilter: texts that do not mislead', () => {
  const send = (filter: ProblemDetailsFilter, exception: unknown) => {
    const res = new FakeResponse();
    filter.catch(exception, hostFor(res));
    return JSON.parse(res.body ?? 'null') as Record<string, any>;
  };

  it("says which rate limit a 429 is and what to do, not the throttler's own text", () => {
    const body = send(new ProblemDetailsFilter(), new ThrottlerException());
    expect(body).toMatchObject({ status: 429, title: 'Too many requests', detail: TOO_MANY_REQUESTS_DETAIL });
    expect(body.detail).not.toContain('ThrottlerException');
    expect(body.detail).toContain('Retry-After');
    // a throttler configured with its own message keeps it
    expect(send(new ProblemDetailsFilter(), new ThrottlerException('slow down')).detail).toBe('slow down');
  });

  it('shows no absolute server path: vault-relative, <DATA_DIR>/…, or <server path> when quoted like fs errors', () => {
    const filter = new ProblemDetailsFilter({ vaultRoot: '/srv/vault', dataDir: '/srv/data' });
    const body = send(
      filter,
      new TestDomainError(
        'invalid-canvas',
        "cannot read /srv/vault/Biology/cells.canvas: EACCES: permission denied, open '/srv/vault/Biology/cells.canvas'",
        [{ field: '', message: "ENOSPC, write '/srv/data/canvas-batch.sqlite' or '/elsewhere/x y.tmp'" }],
      ),
    );
    expect(body.detail).toBe(
      "cannot read Biology/cells.canvas: EACCES: permission denied, open 'Biology/cells.canvas'",
    );
    expect(body.errors).toEqual([
      { field: '', message: "ENOSPC, write '<DATA_DIR>/canvas-batch.sqlite' or '<server path>'" },
    ]);
    expect(send(filter, new BadRequestException("EISDIR, read '/srv/vault'")).detail).toBe(
      "EISDIR, read '<vault>'",
    );
    // a client's own input (the URL of a 404, a refused canvas_path) is not a server path: kept as sent
    expect(send(filter, new NotFoundException('Cannot GET /etc/passwd')).detail).toBe(
      'Cannot GET /etc/passwd',
    );
  });

  it('gets the vault and DATA_DIR from the resolved options when Nest creates it (and works without them)', async () => {
    const withOptions = await Test.createTestingModule({
      providers: [
        { provide: RESOLVED_OPTIONS, useValue: { vaultRoot: '/srv/vault', dataDir: '/srv/data' } },
        ProblemDetailsFilter,
      ],
    }).compile();
    const error = new BadRequestException("open '/srv/vault/a.md'");
    expect(send(withOptions.get(ProblemDetailsFilter), error).detail).toBe("open 'a.md'");
    const without = await Test.createTestingModule({ providers: [ProblemDetailsFilter] }).compile();
    expect(send(without.get(ProblemDetailsFilter), error).detail).toBe("open '<server path>'");
  });
});

describe('PROBLEM_TABLE', () => {
  it('gives every code a client or server error status and a title', () => {
    for (const { status, title } of Object.values(PROBLEM_TABLE)) {
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
      expect(title.length).toBeGreaterThan(0);
    }
  });
});
