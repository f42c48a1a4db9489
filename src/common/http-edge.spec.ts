import { Body, Controller, Get, Logger, NotFoundException, Post } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import type { NextFunction, Request, Response } from 'express';
import request from 'supertest';
import { ApiTokenCheck, SESSION_COOKIE } from './api-token';
import { configureHttpEdge, type HttpEdge } from './http-edge';
import { ProblemDetailsFilter } from './problem-details.filter';

const TOKEN = 'edge-s3cret-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

@Controller()
class ProbeController {
  @Get('probe')
  probe(): { ok: boolean } {
    return { ok: true };
  }

  @Post('probe')
  echo(@Body() body: unknown): unknown {
    return body;
  }

  @Get('missing')
  missing(): never {
    throw new NotFoundException('no such probe');
  }
}

/** A Nest application with one controller and an Express route mounted beside it, behind the edge. */
async function edgeApp(options: { authFailureLimit?: number } = {}) {
  const moduleRef = await Test.createTestingModule({ controllers: [ProbeController] }).compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({ bodyParser: false, logger: false });
  const edge = configureHttpEdge(
    app,
    { apiToken: TOKEN, bodyLimitBytes: 1024, corsOrigins: ['app://obsidian.md'], ...options },
    ({ problems }) => {
      app.use('/mounted', (req: Request, res: Response, next: NextFunction) => {
        if (req.query.fail === '1') return next(new Error('mounted route broke'));
        res.json({ mounted: true });
      });
      // what the dashboard does with it: the same instance for its own errors
      app.use('/mounted-problem', (req: Request, res: Response) =>
        problems.send(new NotFoundException('mounted'), req, res),
      );
    },
  );
  await app.init();
  return { app, edge, http: request(app.getHttpServer()) };
}

describe('configureHttpEdge', () => {
  let app: NestExpressApplication;
  let edge: HttpEdge;
  let http: ReturnType<typeof request>;

  beforeEach(async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    ({ app, edge, http } = await edgeApp());
  });
  afterEach(async () => {
    await app.close();
    jest.restoreAllMocks();
  });

  it('checks the token once per request, on Nest routes and Express routes alike', async () => {
    const matches = jest.spyOn(ApiTokenCheck.prototype, 'matches');
    const assertRequest = jest.spyOn(ApiTokenCheck.prototype, 'assertRequest');
    const cases: [string, Record<string, string>, number][] = [
      ['/probe', auth, 200],
      ['/mounted', auth, 200],
      ['/no/such/route', auth, 404],
      ['/probe', { authorization: 'Bearer wrong' }, 401],
    ];
    for (const [path, headers, status] of cases) {
      matches.mockClear();
      assertRequest.mockClear();
      expect((await http.get(path).set(headers)).status).toBe(status);
      expect({
        path,
        status,
        checks: assertRequest.mock.calls.length,
        comparisons: matches.mock.calls.length,
      }).toEqual({ path, status, checks: 1, comparisons: 1 });
    }
    // the dashboard page trades a right ?access_token= for a session without comparing it again
    matches.mockClear();
    const traded = await http.get(`/?access_token=${TOKEN}`);
    expect([traded.status, traded.headers.location]).toEqual([303, '/']);
    expect(traded.headers['set-cookie']?.[0]).toMatch(new RegExp(`^${SESSION_COOKIE}=`));
    expect(matches).toHaveBeenCalledTimes(1);
  });

  it('refuses before the body is parsed, with 401 or 429 problem+json (Retry-After) from the same check', async () => {
    await app.close();
    ({ app, edge, http } = await edgeApp({ authFailureLimit: 1 }));
    const refused = await http
      .post('/probe')
      .set({ authorization: 'Bearer wrong', 'content-type': 'application/json' })
      .send('{"not json');
    expect([refused.status, refused.headers['content-type']]).toEqual([
      401,
      'application/problem+json; charset=utf-8',
    ]);
    expect(refused.body).toMatchObject({ status: 401, instance: '/probe' });
    const blocked = await http.get('/probe').set(auth);
    expect([blocked.status, blocked.headers['retry-after']]).toEqual([429, '60']);
    // a session of the edge's check passes, blocked or not
    const cookie = `${SESSION_COOKIE}=${edge.check.sessions.create()}`;
    expect((await http.get('/probe').set({ cookie })).status).toBe(200);
  });

  it('sends every error as problem+json through its one ProblemDetailsFilter', async () => {
    const send = jest.spyOn(ProblemDetailsFilter.prototype, 'send');
    const replies = [
      await http.get('/missing').set(auth), // thrown by a Nest route
      await http.get('/nowhere').set(auth), // Nest's unknown route
      await http.post('/probe').set(auth).set('content-type', 'application/json').send('{"a":'), // body parsing
      await http.get('/probe'), // the token check
      await http.get('/mounted?fail=1').set(auth), // an Express route mounted behind the edge
      await http.get('/mounted-problem').set(auth),
    ];
    expect(replies.map((r) => r.status)).toEqual([404, 404, 400, 401, 500, 404]);
    for (const r of replies)
      expect(r.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(send).toHaveBeenCalledTimes(replies.length);
    expect(new Set(send.mock.contexts)).toEqual(new Set([edge.problems]));
  });

  it('sets request ids and security headers, allows only the configured origins, hides x-powered-by', async () => {
    const res = await http
      .get('/probe')
      .set({ ...auth, origin: 'app://obsidian.md', 'x-request-id': 'trace-1' });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('trace-1');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['access-control-allow-origin']).toBe('app://obsidian.md');
    expect(res.headers['x-powered-by']).toBeUndefined();
    const other = await http.get('/probe').set({ ...auth, origin: 'https://evil.example' });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const big = await http
      .post('/probe')
      .set(auth)
      .set('content-type', 'application/json')
      .send(JSON.stringify({ s: 'x'.repeat(2048) }));
    expect([big.status, big.body.type]).toEqual([413, 'https://canvas-batch.dev/problems/payload-too-large']);
  });
});
