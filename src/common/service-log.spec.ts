import type { LoggerService } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  failedRequestLine,
  requestLine,
  requestLogView,
  responseLogView,
  ServiceLogger,
  START_UP_DETAIL_CONTEXTS,
} from './service-log';

function recorder(): { inner: LoggerService; calls: [string, unknown[]][] } {
  const calls: [string, unknown[]][] = [];
  const at =
    (level: string) =>
    (...args: unknown[]): void =>
      void calls.push([level, args]);
  return {
    calls,
    inner: {
      log: at('log'),
      error: at('error'),
      warn: at('warn'),
      debug: at('debug'),
      verbose: at('verbose'),
      fatal: at('fatal'),
    },
  };
}

describe('ServiceLogger', () => {
  it("moves Nest's module and route lines (and what the banner says) down to debug", () => {
    const { inner, calls } = recorder();
    const logger = new ServiceLogger(inner);
    logger.log('AppModule dependencies initialized', 'InstanceLoader');
    logger.log('Mapped {/health, GET} route', 'RouterExplorer');
    logger.log('vault /v', 'VaultService');
    logger.log('canvas-batch listening on http://127.0.0.1:3000', 'Bootstrap');
    logger.log({ task_id: 't', msg: 'batch t started' }, 'BatchRunner');
    expect(calls).toEqual([
      ['debug', ['AppModule dependencies initialized', 'InstanceLoader']],
      ['debug', ['Mapped {/health, GET} route', 'RouterExplorer']],
      ['debug', ['vault /v', 'VaultService']],
      ['log', ['canvas-batch listening on http://127.0.0.1:3000', 'Bootstrap']],
      ['log', [{ task_id: 't', msg: 'batch t started' }, 'BatchRunner']],
    ]);
    expect(START_UP_DETAIL_CONTEXTS.has('Bootstrap')).toBe(false);
  });

  it('passes every other level through, also from those contexts', () => {
    const { inner, calls } = recorder();
    const logger = new ServiceLogger(inner);
    logger.error('boom', 'stack', 'NestApplication');
    logger.warn('careful', 'SqliteDatabase');
    logger.debug('detail', 'X');
    logger.verbose('more', 'X');
    logger.fatal('end', 'X');
    expect(calls.map(([level]) => level)).toEqual(['error', 'warn', 'debug', 'verbose', 'fatal']);
  });
});

describe('request lines', () => {
  const req = (url: string, originalUrl?: string): IncomingMessage & { originalUrl?: string } =>
    ({ method: 'GET', url, originalUrl }) as IncomingMessage & { originalUrl?: string };
  const res = (statusCode: number): ServerResponse => ({ statusCode }) as ServerResponse;

  it('say method, path (query secrets masked), status and milliseconds', () => {
    expect(requestLine(req('/tasks', '/parallel/tasks?limit=5'), res(200), 3.4)).toBe(
      'GET /parallel/tasks?limit=5 200 3 ms',
    );
    expect(requestLine(req('/parallel/events/x?access_token=s3cret&last_event_id=2'), res(404), 12)).toBe(
      'GET /parallel/events/x?access_token=[redacted]&last_event_id=2 404 12 ms',
    );
  });

  it("add a failure's message, not pino-http's own", () => {
    expect(failedRequestLine(req('/x'), res(500), new Error('failed with status code 500'), 7)).toBe(
      'GET /x 500 7 ms',
    );
    expect(failedRequestLine(req('/x'), res(500), new Error('socket hang up'), 7)).toBe(
      'GET /x 500 7 ms: socket hang up',
    );
  });
});

describe('request and response serializers', () => {
  it('keep the id, method, masked URL, client address and a few headers; the response keeps its status', () => {
    const view = requestLogView({
      id: 'r1',
      method: 'POST',
      url: '/parallel/execute?token=t',
      remoteAddress: '127.0.0.1',
      headers: {
        host: 'h',
        'user-agent': 'curl',
        'content-type': 'application/json',
        authorization: 'Bearer t',
        accept: '*/*',
      },
    });
    expect(view).toEqual({
      id: 'r1',
      method: 'POST',
      url: '/parallel/execute?token=[redacted]',
      remoteAddress: '127.0.0.1',
      headers: { 'user-agent': 'curl', 'content-type': 'application/json', authorization: 'Bearer t' },
    });
    expect(
      responseLogView({ statusCode: 202, headers: { 'content-security-policy': "default-src 'self'" } } as {
        statusCode: number;
      }),
    ).toEqual({ statusCode: 202 });
  });
});
