import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import * as path from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { parse as parseYaml } from 'yaml';
import { startServer, type TestServer } from './support/harness';

/**
 * Issue 14 items 5 and 6, against a real listening server: deeply nested JSON is refused with 400 before it is
 * parsed (and the event loop keeps serving /health), and a charset or Content-Encoding the service does not support
 * (or a body that does not decode) is a 415/400 problem+json naming what is supported, never a 500. Bodies and
 * headers are sent byte for byte with node:http.
 */

interface Reply {
  status: number;
  contentType: string;
  text: string;
  json: Record<string, unknown>;
}

/** One request with exactly these headers and bytes (Content-Length set from the body). */
function send(
  base: string,
  method: string,
  route: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${base}${route}`,
      {
        method,
        headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            /* not JSON */
          }
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'] ?? '',
            text,
            json,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const CANVAS = 'Biology/cells.canvas';
const GOOD = {
  canvas_path: CANVAS,
  groups: [{ group_id: 'g1', agent_type: 'oral-explanation', node_ids: ['b10c0ffee0000001'] }],
};
const GOOD_BYTES = Buffer.from(JSON.stringify(GOOD), 'utf8');
const PROBLEM = 'https://canvas-batch.dev/problems/';

/** `levels` nested arrays: `[[[…]]]`. */
function nestedArrays(levels: number): Buffer {
  return Buffer.from('['.repeat(levels) + ']'.repeat(levels), 'latin1');
}

interface OpenApi {
  paths: Record<string, Record<string, { responses: Record<string, { $ref?: string }> }>>;
  components: { responses: Record<string, { description: string }> };
}
const OPENAPI_TEXT = readFileSync(path.join(__dirname, '..', 'specs/api/parallel-api.openapi.yml'), 'utf8');
const openapi = parseYaml(OPENAPI_TEXT) as OpenApi;
const OPENAPI_ID = 'https://canvas-batch.dev/specs/api/parallel-api.openapi.yml';
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
ajv.addSchema({ $id: OPENAPI_ID, components: openapi.components });
const validProblem = ajv.getSchema(`${OPENAPI_ID}#/components/schemas/ProblemDetails`)!;

/** The response `POST /parallel/execute` declares for a status, its component followed. */
function declaredForExecute(status: number): { description: string } | undefined {
  const ref = openapi.paths['/parallel/execute'].post.responses[String(status)]?.$ref;
  return ref === undefined ? undefined : openapi.components.responses[ref.split('/').pop()!];
}

/** A problem+json of this status and type, valid against the OpenAPI ProblemDetails and declared for the route. */
function expectProblem(res: Reply, status: number, code: string): Record<string, unknown> {
  expect({ status: res.status, type: res.json.type }).toEqual({ status, type: `${PROBLEM}${code}` });
  expect(res.contentType).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ status, instance: '/parallel/execute' });
  expect({ valid: validProblem(res.json), errors: validProblem.errors ?? null }).toEqual({
    valid: true,
    errors: null,
  });
  expect(declaredForExecute(status)?.description).toContain(code);
  return res.json;
}

function expectAccepted(res: Reply): void {
  expect({ status: res.status, body: res.status === 202 ? undefined : res.text }).toEqual({
    status: 202,
    body: undefined,
  });
  expect(typeof res.json.task_id).toBe('string');
}

describe('request bodies: nesting depth, charset and Content-Encoding (issue 14 items 5, 6)', () => {
  let server: TestServer;
  const execute = (body: Buffer, headers: Record<string, string> = JSON_TYPE): Promise<Reply> =>
    send(server.url, 'POST', '/parallel/execute', body, headers);
  const health = (): Promise<Reply> => send(server.url, 'GET', '/health');

  beforeAll(async () => (server = await startServer({ EXECUTE_RATE_LIMIT: '0' })));
  afterAll(() => server.close());

  describe('nesting depth', () => {
    it('10,000 levels (20 kB) → 400 json-too-deep naming the limit and the depth found', async () => {
      const body = nestedArrays(10_000);
      expect(body.length).toBe(20_000);
      const problem = expectProblem(await execute(body), 400, 'json-too-deep');
      expect(problem.detail).toContain('10000 levels');
      expect(problem.detail).toContain('at most 64');
      expect((await health()).status).toBe(200);
    });

    it('10,000 levels of objects → 400 json-too-deep', async () => {
      const body = Buffer.from('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000));
      expectProblem(await execute(body), 400, 'json-too-deep');
    });

    it('1,000,000 levels (2 MB) → 400 json-too-deep while /health keeps answering', async () => {
      const body = nestedArrays(1_000_000);
      expect(body.length).toBe(2_000_000);
      const deep = execute(body);
      // made while the deep body is in flight: each must complete (the loop is not blocked for long)
      const during = await Promise.all([health(), health(), health()]);
      const problem = expectProblem(await deep, 400, 'json-too-deep');
      expect(problem.detail).toContain('1000000 levels');
      expect(during.map((r) => r.status)).toEqual([200, 200, 200]);
      expect((await health()).status).toBe(200);
    });

    it('a gzip-compressed deep body is refused the same way (the decoded bytes are scanned)', async () => {
      const body = gzipSync(nestedArrays(100_000));
      expectProblem(await execute(body, { ...JSON_TYPE, 'content-encoding': 'gzip' }), 400, 'json-too-deep');
    });

    it('exactly 64 levels is parsed (it reaches validation); 65 is refused', async () => {
      // the body object is level 1, `extra` holds levels 2…n
      const nested = (n: number): Buffer =>
        Buffer.from(`{"canvas_path":"${CANVAS}","extra":${'['.repeat(n - 1)}${']'.repeat(n - 1)}}`);
      const atLimit = await execute(nested(64));
      expectProblem(atLimit, 400, 'validation-failed');
      const over = expectProblem(await execute(nested(65)), 400, 'json-too-deep');
      expect(over.detail).toContain('65 levels');
    });

    it('brackets and escaped quotes inside strings do not count', async () => {
      const tricky = { ...GOOD, groups: [{ ...GOOD.groups[0], group_id: '\\"[{'.repeat(50) }] };
      const body = Buffer.from(JSON.stringify(tricky));
      expect(body.toString()).toContain('\\\\\\"[{\\\\\\"[{');
      expectAccepted(await execute(body));
    });
  });

  describe('charset', () => {
    it.each(['latin1', 'koi8-r', 'iso-8859-1', 'utf-16le', 'utf8', 'nonsense'])(
      'charset=%s → 415 unsupported-charset naming utf-8',
      async (charset) => {
        const res = await execute(GOOD_BYTES, { 'content-type': `application/json; charset=${charset}` });
        const problem = expectProblem(res, 415, 'unsupported-charset');
        expect(problem.detail).toContain(`"${charset}"`);
        expect(problem.detail).toContain('utf-8');
      },
    );

    it.each(['utf-8', 'UTF-8', '"utf-8"', 'Utf-8'])('charset=%s is accepted', async (charset) => {
      expectAccepted(await execute(GOOD_BYTES, { 'content-type': `application/json; charset=${charset}` }));
    });

    it('no charset (UTF-8 by default) and application/*+json are accepted', async () => {
      expectAccepted(await execute(GOOD_BYTES, { 'content-type': 'application/json' }));
      expectAccepted(await execute(GOOD_BYTES, { 'content-type': 'application/merge-patch+json' }));
    });
  });

  describe('Content-Encoding', () => {
    it.each(['compress', 'zstd', 'x-gzip', 'gzip, gzip', 'identity, gzip', 'exotic'])(
      'Content-Encoding: %s → 415 unsupported-content-encoding naming the supported ones',
      async (coding) => {
        const res = await execute(GOOD_BYTES, { ...JSON_TYPE, 'content-encoding': coding });
        const problem = expectProblem(res, 415, 'unsupported-content-encoding');
        expect(problem.detail).toContain(`"${coding}"`);
        expect(problem.detail).toContain('identity, gzip, deflate, br');
      },
    );

    it.each([
      ['gzip', Buffer.from('this is not gzip'), 'corrupt data'],
      ['gzip', gzipSync(GOOD_BYTES).subarray(0, 20), 'it ends early'],
      ['deflate', Buffer.from('this is not deflate'), 'corrupt data'],
      ['br', GOOD_BYTES, 'corrupt data'],
    ])('a body that is not valid %s → 400 invalid-content-encoding (%#)', async (coding, body, reason) => {
      const res = await execute(body, { ...JSON_TYPE, 'content-encoding': coding });
      const problem = expectProblem(res, 400, 'invalid-content-encoding');
      expect(problem.detail).toContain(`not valid ${coding} data (${reason})`);
      expect(problem.detail).toContain('identity, gzip, deflate, br');
      expect((await health()).status).toBe(200);
    });

    it.each([
      ['identity', GOOD_BYTES],
      ['IDENTITY', GOOD_BYTES],
      ['gzip', gzipSync(GOOD_BYTES)],
      ['GZip', gzipSync(GOOD_BYTES)],
      ['deflate', deflateSync(GOOD_BYTES)],
      ['br', brotliCompressSync(GOOD_BYTES)],
    ])('Content-Encoding: %s is decoded and accepted', async (coding, body) => {
      expectAccepted(await execute(body, { ...JSON_TYPE, 'content-encoding': coding }));
    });

    it('the size limit still applies to the decoded body (413)', async () => {
      const big = Buffer.from(`{"canvas_path":"${'a'.repeat(6 * 1024 * 1024)}"}`);
      const body = gzipSync(big);
      expect(body.length).toBeLessThan(server.config.bodyLimitBytes);
      expectProblem(
        await execute(body, { ...JSON_TYPE, 'content-encoding': 'gzip' }),
        413,
        'payload-too-large',
      );
    });

    it('a body that is not JSON-typed is not parsed, so its encoding is not checked', async () => {
      const res = await execute(Buffer.from('hello'), {
        'content-type': 'text/plain; charset=latin1',
        'content-encoding': 'compress',
      });
      expectProblem(res, 400, 'validation-failed');
    });
  });

  it('the OpenAPI file declares the new problem types, the limit and the supported codings', () => {
    expect(declaredForExecute(400)?.description).toMatch(/json-too-deep[\s\S]*invalid-content-encoding/);
    expect(declaredForExecute(415)?.description).toMatch(
      /unsupported-charset[\s\S]*unsupported-content-encoding/,
    );
    expect(declaredForExecute(415)?.description).toContain('identity, gzip, deflate or br');
    expect(OPENAPI_TEXT).toContain('at most 64');
  });
});
