import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Test } from '@nestjs/testing';
import { Logger } from 'nestjs-pino';
import { AppModule } from '../../src/app.module';
import { configureApp, createApp } from '../../src/bootstrap';
import { MemoryStore } from '../../src/memory/memory-store';
import { type AppConfig, loadAppConfig } from '../../src/config/app.config';
import { BUNDLED_VAULT } from '../../src/config/example-vault';

/** A real service on a free port, with a temp vault (copy of the example vault) and a temp SQLite data dir. */
export interface TestServer {
  app: NestExpressApplication;
  url: string;
  vault: string;
  dataDir: string;
  config: AppConfig;
  /** Closes the application and removes its temp folder (unless `keepFiles`). */
  close(options?: { keepFiles?: boolean }): Promise<void>;
}

/** Test-only replacements of the service's providers. */
export interface ServerOverrides {
  /** Another `MemoryStore` behind the port (e.g. one that misbehaves). */
  memoryStore?: MemoryStore;
}

/** The whole service (AppModule), with a provider replaced, as `createApp` builds it. */
async function createAppWith(config: AppConfig, overrides: ServerOverrides): Promise<NestExpressApplication> {
  if (!overrides.memoryStore) return createApp(config);
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forConfig(config)] })
    .overrideProvider(MemoryStore)
    .useValue(overrides.memoryStore)
    .compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({
    bufferLogs: true,
    bodyParser: false,
    forceCloseConnections: true,
  });
  app.useLogger(app.get(Logger));
  configureApp(app, config);
  return app;
}

export async function startServer(
  env: Record<string, string> = {},
  setupVault?: (vault: string) => void,
  overrides: ServerOverrides = {},
): Promise<TestServer> {
  const root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-e2e-'));
  const vault = path.join(root, 'vault');
  const dataDir = path.join(root, 'data');
  cpSync(BUNDLED_VAULT, vault, { recursive: true });
  setupVault?.(vault);
  const config = loadAppConfig({
    PORT: '0',
    LOG_LEVEL: 'error',
    LOG_PRETTY: 'false',
    // suites count provider calls and watch nodes run (latency, cancels) batch after batch on the same nodes: the
    // result cache would answer the repeats; test/result-cache.e2e-spec.ts turns it on
    RESULT_CACHE: 'off',
    VAULT_ROOT: vault,
    DATA_DIR: dataDir,
    ...env,
  });
  const app = await createAppWith(config, overrides);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    vault,
    dataDir,
    config,
    async close(options = {}) {
      await (app as INestApplication).close();
      if (!options.keepFiles) rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface ReceivedEvent {
  id: number;
  event: string;
  data: { type: string; task_id: string; timestamp: string; data: Record<string, unknown> };
}

/** A `task_output_delta` (no id: never stored, never replayed), with when it arrived. */
export interface ReceivedDelta {
  data: {
    type: string;
    task_id: string;
    node_id: string;
    group_id: string | number;
    text: string;
    offset: number;
  };
  at: number;
}

/**
 * A real SSE client over Node's fetch: collects events until the stream ends (or `stopWhen` says so, or the
 * client aborts). Also counts comment lines (keep-alives) and collects `task_output_delta`s (`deltas`).
 */
export function sseClient(
  url: string,
  options: {
    lastEventId?: number;
    headers?: Record<string, string>;
    stopWhen?: (e: ReceivedEvent, all: ReceivedEvent[]) => boolean;
  } = {},
): {
  events: ReceivedEvent[];
  deltas: ReceivedDelta[];
  comments: string[];
  status: Promise<number>;
  done: Promise<ReceivedEvent[]>;
  abort(): void;
  headers: Promise<Headers>;
} {
  const controller = new AbortController();
  const events: ReceivedEvent[] = [];
  const deltas: ReceivedDelta[] = [];
  const comments: string[] = [];
  let resolveStatus!: (n: number) => void;
  let resolveHeaders!: (h: Headers) => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const headers = new Promise<Headers>((r) => (resolveHeaders = r));
  const done = (async () => {
    try {
      const res = await fetch(url, {
        signal: controller.signal,
        headers: {
          accept: 'text/event-stream',
          ...(options.lastEventId !== undefined ? { 'last-event-id': String(options.lastEventId) } : {}),
          ...options.headers,
        },
      });
      resolveStatus(res.status);
      resolveHeaders(res.headers);
      if (!res.body || res.status !== 200) return events;
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let idx: number;
        while ((idx = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, idx);
          buffer = buffer.slice(idx + 2);
          const e = parseBlock(block, comments, deltas);
          if (e) {
            events.push(e);
            if (options.stopWhen?.(e, events)) {
              controller.abort();
              return events;
            }
          }
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
    return events;
  })();
  return { events, deltas, comments, status, done, headers, abort: () => controller.abort() };
}

function parseBlock(block: string, comments: string[], deltas: ReceivedDelta[]): ReceivedEvent | undefined {
  let id: number | undefined;
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) comments.push(line.slice(1).trim());
    else if (line.startsWith('id: ')) id = Number(line.slice(4));
    else if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (id === undefined) {
    if (event === 'task_output_delta')
      deltas.push({ data: JSON.parse(data.join('\n')) as ReceivedDelta['data'], at: Date.now() });
    return undefined;
  }
  return { id, event, data: JSON.parse(data.join('\n')) as ReceivedEvent['data'] };
}

/** JSON over HTTP with status and content type. */
export async function http<T = Record<string, unknown>>(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string; body: T; headers: Headers }> {
  const res = await fetch(url, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: parsed as T,
    headers: res.headers,
  };
}

/** Polls the status route until the task is terminal. */
export async function waitTerminal(
  server: { url: string },
  taskId: string,
  timeoutMs = 20_000,
): Promise<Record<string, any>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await http<Record<string, any>>('GET', `${server.url}/parallel/status/${taskId}`);
    if (!['pending', 'running'].includes(body.status as string)) return body;
    if (Date.now() > end)
      throw new Error(`task ${taskId} still ${String(body.status)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function readCanvas(
  vault: string,
  rel: string,
): { nodes: Record<string, any>[]; edges: Record<string, any>[] } {
  return JSON.parse(readFileSync(path.join(vault, rel), 'utf8'));
}
