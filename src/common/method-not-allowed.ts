import { MethodNotAllowedException } from '@nestjs/common';
import { METHODS } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** What this module reads of Express's routing table (router 2: `Layer`, `Route`). */
export interface RoutingLayer {
  /** Set on a route's layer: the methods it answers (`_all` for every method). */
  route?: { methods: Record<string, boolean | undefined> };
  /** Set on a mounted router's layer: its own table. */
  handle?: { stack?: readonly RoutingLayer[] };
  /** The matched prefix (a route matches the whole path), or `false`. */
  match(path: string): false | { path: string };
}

/**
 * The methods a path answers, from the routing table as it is when asked (every route of Nest and of the dashboard
 * is in it once the application listens), or `undefined` when no route has that path (a 404). GET implies HEAD (Express answers it); OPTIONS is answered by `methodNotAllowed` itself.
 */
export function allowedMethods(stack: readonly RoutingLayer[], path: string): Set<string> | undefined {
  const methods = new Set<string>();
  const visit = (layers: readonly RoutingLayer[], rest: string): void => {
    for (const layer of layers) {
      const matched = layer.match(rest);
      if (matched === false) continue;
      if (layer.route) {
        const own = Object.entries(layer.route.methods).flatMap(([m, on]) => (on ? [m.toUpperCase()] : []));
        // every method: a Nest middleware (MiddlewareConsumer, RequestMethod.ALL), not what the path answers
        if (own.includes('_ALL') || EVERY_METHOD.every((m) => own.includes(m))) continue;
        for (const method of own) methods.add(method);
      } else if (layer.handle?.stack) {
        const inner = rest.slice(matched.path.length) || '/';
        visit(layer.handle.stack, inner.startsWith('/') ? inner : `/${inner}`);
      }
    }
  };
  visit(stack, path);
  if (methods.size === 0) return undefined;
  if (methods.has('GET')) methods.add('HEAD');
  methods.add('OPTIONS');
  return methods;
}

const EVERY_METHOD = METHODS.map((m) => m.toUpperCase());

/** `Allow` as RFC 9110 writes it: the methods, comma separated, in a stable order. */
function allowHeader(methods: Set<string>): string {
  return [...methods].sort().join(', ');
}

/**
 * RFC 9110 §15.5.6 for every known path: a method it does not answer gets 405 with `Allow` (a problem, through the
 * edge's error handler), and `OPTIONS` gets 204 with `Allow` (a CORS preflight was answered before this, by the
 * CORS middleware). Unknown paths go on to the 404. `stack` reads the application's routing table.
 */
export function methodNotAllowed(stack: () => readonly RoutingLayer[] | undefined): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const methods = allowedMethods(stack() ?? [], req.path);
    if (!methods || (methods.has(req.method) && req.method !== 'OPTIONS')) return next();
    const allow = allowHeader(methods);
    res.setHeader('Allow', allow);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next(new MethodNotAllowedException(`${req.method} is not allowed on ${req.path}; it answers ${allow}`));
  };
}
