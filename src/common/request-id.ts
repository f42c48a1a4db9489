import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-request-id';
/** A caller's own request id is kept when it is short and plain; anything else is replaced. */
const ACCEPTED_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives every request an id (the caller's `X-Request-Id` when it is plain, else a new UUID), echoed in the
 * `X-Request-Id` response header and written on the request's log lines.
 */
export function requestId(): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const id = requestIdOf(req);
    res.setHeader('X-Request-Id', id);
    next();
  };
}

/** The request's id, assigned once (pino-http's `genReqId` uses the same one). */
export function requestIdOf(req: IncomingMessage & { id?: unknown }): string {
  if (typeof req.id === 'string') return req.id;
  const given = req.headers[REQUEST_ID_HEADER];
  const id = typeof given === 'string' && ACCEPTED_ID.test(given) ? given : randomUUID();
  req.id = id;
  return id;
}
