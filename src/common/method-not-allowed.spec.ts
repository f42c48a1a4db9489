import express, { type NextFunction, type Request, type Response } from 'express';
import type { AddressInfo } from 'node:net';
import { request as httpRequest, type Server } from 'node:http';
import { allowedMethods, methodNotAllowed, type RoutingLayer } from './method-not-allowed';

/** A real Express application's routing table: routes, a mounted router, a middleware on every method. */
function routedApp(): { app: express.Express; stack: () => readonly RoutingLayer[] } {
  const app = express();
  const stack = (): readonly RoutingLayer[] =>
    (app as unknown as { router: { stack: readonly RoutingLayer[] } }).router.stack;
  app.use(methodNotAllowed(stack));
  app.get('/items/:id', (_req, res) => void res.send('item'));
  app.delete('/items/:id', (_req, res) => void res.send('deleted'));
  app.post('/items', (_req, res) => void res.send('created'));
  // what Nest's MiddlewareConsumer registers: a route answering every method on every path
  app.all('{/*splat}', (_req: Request, _res: Response, next: NextFunction) => next());
  const admin = express.Router();
  admin.put('/settings', (_req, res) => void res.send('saved'));
  app.use('/admin', admin);
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    void _next;
    res.status(err.status ?? 500).send(err.message);
  });
  return { app, stack };
}

function send(
  server: Server,
  method: string,
  path: string,
): Promise<{ status: number; allow?: string; body: string }> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, allow: res.headers.allow, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('allowedMethods', () => {
  const { stack } = routedApp();

  it('collects every route of a path (GET brings HEAD, OPTIONS always), skipping every-method middleware', () => {
    expect([...allowedMethods(stack(), '/items/42')!].sort()).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS']);
    expect([...allowedMethods(stack(), '/items')!].sort()).toEqual(['OPTIONS', 'POST']);
  });

  it('looks into mounted routers below their prefix', () => {
    expect([...allowedMethods(stack(), '/admin/settings')!].sort()).toEqual(['OPTIONS', 'PUT']);
  });

  it('knows nothing of a path no route serves', () => {
    expect(allowedMethods(stack(), '/nothing')).toBeUndefined();
    expect(allowedMethods([], '/items')).toBeUndefined();
  });

  it('skips a route registered with _all', () => {
    const all: RoutingLayer = { route: { methods: { _all: true } }, match: () => ({ path: '/x' }) };
    const get: RoutingLayer = {
      route: { methods: { get: true, post: false } },
      match: () => ({ path: '/x' }),
    };
    expect([...allowedMethods([all, get], '/x')!].sort()).toEqual(['GET', 'HEAD', 'OPTIONS']);
  });
});

describe('methodNotAllowed', () => {
  let server: Server;
  beforeAll(async () => {
    server = routedApp().app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('answers a known path’s other methods 405 with Allow', async () => {
    expect(await send(server, 'PUT', '/items/1')).toMatchObject({
      status: 405,
      allow: 'DELETE, GET, HEAD, OPTIONS',
      body: 'PUT is not allowed on /items/1; it answers DELETE, GET, HEAD, OPTIONS',
    });
    expect(await send(server, 'TRACE', '/admin/settings')).toMatchObject({
      status: 405,
      allow: 'OPTIONS, PUT',
    });
  });

  it('answers OPTIONS 204 with Allow', async () => {
    expect(await send(server, 'OPTIONS', '/items')).toMatchObject({ status: 204, allow: 'OPTIONS, POST' });
  });

  it('lets allowed methods and unknown paths through', async () => {
    expect(await send(server, 'GET', '/items/7')).toMatchObject({ status: 200, body: 'item' });
    expect(await send(server, 'HEAD', '/items/7')).toMatchObject({ status: 200 });
    expect((await send(server, 'PUT', '/nothing')).status).toBe(404);
    expect((await send(server, 'OPTIONS', '/nothing')).status).toBe(404);
  });
});
