import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { prng } from './prng';

/**
 * A local LLM provider for tests and benchmarks. It speaks three wire formats over plain HTTP:
 * - OpenAI chat completions: `POST …/chat/completions` (JSON, or SSE with `stream: true`)
 * - Anthropic messages: `POST …/messages` (JSON, or SSE with `stream: true`)
 * - Google Gemini: `POST …/models/{model}:generateContent` (JSON) and `:streamGenerateContent?alt=sse` (SSE)
 *
 * and can misbehave on purpose: latency drawn from a range, a concurrency capacity beyond which it answers 429
 * with `Retry-After`, random 5xx and malformed JSON, hung connections, connection resets, scripted answers per
 * request. Every request is logged (arrival, close, status, tokens, whether the client hung up first). For tests
 * of several service processes, each process gets its own key (`processKeys`), so every call names its process;
 * `peakConcurrency` tells how many calls were open at once, overall and per process.
 */
export type Wire = 'openai' | 'anthropic' | 'google';

/** What the server does with one request. */
export type Behaviour =
  | { kind: 'ok'; text?: string }
  | { kind: 'status'; status: number; message?: string; headers?: Record<string, string> }
  /** 200 with a body that is not JSON at all (a broken proxy, a truncated answer). */
  | { kind: 'malformed-json' }
  /** Accepts the request and never answers (until the client gives up). */
  | { kind: 'hang' }
  /** Answers 200 and starts the answer (the first SSE events when streaming, headers only otherwise), then stalls. */
  | { kind: 'stall' }
  /** Destroys the socket without an answer. */
  | { kind: 'reset' };

export interface FakeRequest {
  seq: number;
  wire: Wire;
  path: string;
  stream: boolean;
  model: string;
  /** The system prompt and the user prompt, flattened. */
  system: string;
  prompt: string;
  headers: Record<string, string | string[] | undefined>;
  /** OpenAI: the request asked for the usage chunk (`stream_options.include_usage`), as the real API needs. */
  includeUsage?: boolean;
}

export interface RequestLogEntry {
  seq: number;
  wire: Wire;
  stream: boolean;
  /** `x-canvas-batch-node` / `x-canvas-batch-attempt` headers the service sends (for per-node timelines). */
  node: string | undefined;
  attempt: number | undefined;
  /** The service process that made the call: the name `processKeys` gives its credential (undefined without). */
  process: string | undefined;
  arrivedAt: number;
  /** When the response finished or the connection closed, whichever came first (epoch ms). */
  closedAt: number | undefined;
  /**
   * Where the request's arrival and its close fall in one sequence of all arrivals and closes on this server: their
   * exact order, where the millisecond timestamps tie (`peakConcurrency` counts with these).
   */
  openOrder: number;
  closeOrder: number | undefined;
  /** HTTP status sent (0 when none: hang or reset). */
  status: number;
  behaviour: Behaviour['kind'] | 'capacity-429' | 'unauthorized';
  /** The client closed the connection before the server had finished answering. */
  clientClosed: boolean;
  inputTokens: number;
  outputTokens: number;
  /** The credential the request carried (to assert which key was sent). */
  credential: string | undefined;
  /** The system prompt and the user prompt as the provider received them. */
  system: string;
  prompt: string;
}

export interface FakeLlmOptions {
  /** Uniform latency range before answering, in ms. */
  latencyMs?: { min: number; max: number };
  /** Requests in flight beyond this get 429 at once. */
  capacity?: number;
  /** `Retry-After` header value (seconds) on capacity 429s; `retryAfterMs` sets `retry-after-ms` instead/as well. */
  retryAfterSeconds?: number;
  retryAfterMs?: number;
  /** Probability of a random 500 / of a malformed 200 body. */
  errorRate?: number;
  malformedRate?: number;
  /** The key every request must carry; a mismatch is a 401. Undefined: any key is accepted. */
  apiKey?: string;
  /**
   * Keys of several service processes, each to the name of its process (e.g. `{ 'key-A': 'A' }`): a request with
   * one of them is logged with that `process`. When set, a key neither here nor `apiKey` is a 401.
   */
  processKeys?: Record<string, string>;
  /** Chooses the behaviour of one request; default: `ok`. Called after auth and the capacity check. */
  script?: (req: FakeRequest) => Behaviour;
  /**
   * How the usage it reports counts tokens; default `tokensOf` (4 characters a token). A suite comparing estimates
   * with usage gives a counter of its own (test/estimate-budget.e2e-spec.ts).
   */
  countTokens?: (text: string) => number;
  /** The answer text of an `ok` request without its own; default: a reply fitting the requested output contract. */
  reply?: (req: FakeRequest) => string;
  /**
   * Streamed answers: how many text deltas the answer is cut into (at word boundaries when it has enough words;
   * default 3), and the pause between two SSE events in ms (default 0: the whole stream in one write).
   */
  streamChunks?: number;
  streamIntervalMs?: number;
  seed?: number;
}

export interface FakeLlmServer {
  url: string;
  /** Base URLs for the service's `AGENT_BASE_URL`, per wire format. */
  baseUrl(wire: Wire): string;
  log: RequestLogEntry[];
  /** Requests currently open. */
  readonly inFlight: number;
  readonly peakInFlight: number;
  configure(patch: Partial<FakeLlmOptions>): void;
  /** Resolves once no request is open (hung ones included: they close when the client aborts). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeLlm(initial: FakeLlmOptions = {}): Promise<FakeLlmServer> {
  let options: FakeLlmOptions = { ...initial };
  let random = prng(options.seed ?? 1);
  const log: RequestLogEntry[] = [];
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let peak = 0;
  let idleWaiters: Array<() => void> = [];
  let seq = 0;
  let order = 0;

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrivedAt = Date.now();
    inFlight++;
    peak = Math.max(peak, inFlight);
    const key = credentialOf(req);
    const entry: RequestLogEntry = {
      seq: ++seq,
      wire: 'openai',
      stream: false,
      node: header(req, 'x-canvas-batch-node'),
      attempt: Number(header(req, 'x-canvas-batch-attempt')) || undefined,
      process: key === undefined ? undefined : options.processKeys?.[key],
      arrivedAt,
      closedAt: undefined,
      openOrder: ++order,
      closeOrder: undefined,
      status: 0,
      behaviour: 'ok',
      clientClosed: false,
      inputTokens: 0,
      outputTokens: 0,
      credential: undefined,
      system: '',
      prompt: '',
    };
    log.push(entry);
    let finished = false;
    const settle = (): void => {
      if (entry.closedAt !== undefined) return;
      entry.closedAt = Date.now();
      entry.closeOrder = ++order;
      inFlight--;
      if (inFlight === 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        waiters.forEach((w) => w());
      }
    };
    res.on('finish', () => {
      finished = true;
      settle();
    });
    res.on('close', () => {
      if (!finished) entry.clientClosed = true;
      settle();
    });

    const body = await readBody(req);
    const route = routeOf(req.url ?? '');
    if (!route) {
      entry.behaviour = 'status';
      return send(res, entry, 404, { error: { message: `no route ${req.url}` } });
    }
    entry.wire = route.wire;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body) as Record<string, unknown>;
    } catch {
      entry.behaviour = 'status';
      return send(res, entry, 400, errorBody(route.wire, 400, 'request body is not JSON'));
    }
    const fake = describe(route, parsed, req, entry.seq);
    entry.stream = fake.stream;
    entry.system = fake.system;
    entry.prompt = fake.prompt;
    entry.credential = credentialOf(req);
    if (!authorized(options, entry.credential)) {
      entry.behaviour = 'unauthorized';
      return send(res, entry, 401, errorBody(route.wire, 401, 'invalid x-api-key'));
    }
    if (options.capacity !== undefined && inFlight > options.capacity) {
      entry.behaviour = 'capacity-429';
      const headers: Record<string, string> = {};
      if (options.retryAfterSeconds !== undefined) headers['retry-after'] = String(options.retryAfterSeconds);
      if (options.retryAfterMs !== undefined) headers['retry-after-ms'] = String(options.retryAfterMs);
      return send(res, entry, 429, errorBody(route.wire, 429, 'rate limited: over capacity'), headers);
    }
    let behaviour: Behaviour = options.script?.(fake) ?? { kind: 'ok' };
    if (behaviour.kind === 'ok') {
      const r = random();
      if (r < (options.errorRate ?? 0)) behaviour = { kind: 'status', status: 500 };
      else if (r < (options.errorRate ?? 0) + (options.malformedRate ?? 0))
        behaviour = { kind: 'malformed-json' };
    }
    entry.behaviour = behaviour.kind;
    if (behaviour.kind === 'hang') return; // the socket stays open until the client closes it
    if (behaviour.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    const { min, max } = options.latencyMs ?? { min: 0, max: 0 };
    const delay = min + Math.floor(random() * (max - min + 1));
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (res.destroyed || entry.clientClosed) return;
    if (behaviour.kind === 'status') {
      return send(
        res,
        entry,
        behaviour.status,
        errorBody(route.wire, behaviour.status, behaviour.message ?? `fake ${behaviour.status}`),
        behaviour.headers,
      );
    }
    if (behaviour.kind === 'malformed-json') {
      entry.status = 200;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id": "broken", "choices": [ {"message": ');
      return;
    }
    const text = behaviour.kind === 'ok' ? (behaviour.text ?? (options.reply ?? defaultReply)(fake)) : '';
    if (behaviour.kind === 'stall') {
      entry.status = 200;
      if (!fake.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        return;
      }
      streamAnswer(res, entry, fake, 'The answer starts and then stops', { stall: true });
      return;
    }
    const count = options.countTokens ?? tokensOf;
    entry.inputTokens = count(fake.system + fake.prompt);
    entry.outputTokens = count(text);
    if (fake.stream)
      streamAnswer(res, entry, fake, text, {
        chunks: options.streamChunks ?? 3,
        intervalMs: options.streamIntervalMs ?? 0,
      });
    else send(res, entry, 200, answerBody(route.wire, fake.model, text, entry));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseUrl: (wire) => (wire === 'google' ? `${url}/v1beta` : `${url}/v1`),
    log,
    get inFlight() {
      return inFlight;
    },
    get peakInFlight() {
      return peak;
    },
    configure(patch) {
      options = { ...options, ...patch };
      if (patch.seed !== undefined) random = prng(patch.seed);
    },
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r))),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Whether `credential` passes: `apiKey` or one of `processKeys`, any key when neither is set. */
function authorized(options: FakeLlmOptions, credential: string | undefined): boolean {
  if (options.apiKey === undefined && options.processKeys === undefined) return true;
  if (credential === undefined) return false;
  return credential === options.apiKey || Object.hasOwn(options.processKeys ?? {}, credential);
}

/** How many calls were open at once: at the peak, and per process (`?` for calls without one). */
export interface Concurrency {
  peak: number;
  byProcess: Record<string, { calls: number; peak: number }>;
}

/**
 * The most calls of `log` (or of a part of it) open at the same time, over all processes and per process, in the
 * exact order the server saw arrivals and closes (a call still open counts as open to the end).
 */
export function peakConcurrency(log: readonly RequestLogEntry[]): Concurrency {
  const steps = log.flatMap((e) => [
    { at: e.openOrder, delta: 1, who: e.process ?? '?' },
    ...(e.closeOrder === undefined ? [] : [{ at: e.closeOrder, delta: -1, who: e.process ?? '?' }]),
  ]);
  steps.sort((a, b) => a.at - b.at);
  const byProcess: Concurrency['byProcess'] = {};
  const open = new Map<string, number>();
  let now = 0;
  let peak = 0;
  for (const e of log) {
    const p = (byProcess[e.process ?? '?'] ??= { calls: 0, peak: 0 });
    p.calls++;
  }
  for (const { delta, who } of steps) {
    now += delta;
    peak = Math.max(peak, now);
    const mine = (open.get(who) ?? 0) + delta;
    open.set(who, mine);
    byProcess[who].peak = Math.max(byProcess[who].peak, mine);
  }
  return { peak, byProcess };
}

/** ~4 characters per token, at least 1: deterministic, so tests can sum what the server reported. */
export function tokensOf(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/**
 * A plausible answer for the output contract the prompt asks for (`OUTPUT CONTRACT: <kind>` in the system
 * prompt); markdown otherwise.
 */
export function defaultReply(req: FakeRequest): string {
  const kind = /OUTPUT CONTRACT: (\w+)/.exec(req.system)?.[1] ?? 'markdown';
  switch (kind) {
    case 'questions':
      return JSON.stringify({
        questions: [
          { text: 'What is it made of?', type: 'understanding', difficulty: 'easy' },
          { text: 'Why does it matter?', type: 'application', difficulty: 'medium' },
          {
            text: 'How would you test it?',
            type: 'application',
            difficulty: 'hard',
            guidance: 'Start small.',
          },
        ],
      });
    case 'score':
      return JSON.stringify({
        breakdown: { accuracy: 20, imagery: 15, completeness: 18, originality: 12 },
        feedback: 'Accurate; add an example.',
      });
    case 'hint':
      return JSON.stringify({ text: 'Look at its parts.', level: 1 });
    default:
      return `## Explanation (fake #${req.seq})\n\nA short explanation of the concept.`;
  }
}

interface Route {
  wire: Wire;
  model?: string;
  stream?: boolean;
}

function routeOf(url: string): Route | undefined {
  const { pathname, searchParams } = new URL(url, 'http://x');
  if (pathname.endsWith('/chat/completions')) return { wire: 'openai' };
  if (pathname.endsWith('/messages')) return { wire: 'anthropic' };
  const g = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(pathname);
  if (g)
    return {
      wire: 'google',
      model: g[1],
      stream: g[2] === 'streamGenerateContent' || searchParams.get('alt') === 'sse',
    };
  return undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function credentialOf(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer (.+)$/.exec(header(req, 'authorization') ?? '')?.[1];
  return bearer ?? header(req, 'x-api-key') ?? header(req, 'x-goog-api-key');
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p as { text?: string }).text ?? '').join('');
  return '';
}

function describe(
  route: Route,
  body: Record<string, unknown>,
  req: IncomingMessage,
  seq: number,
): FakeRequest {
  const base = { seq, wire: route.wire, path: req.url ?? '', headers: req.headers };
  if (route.wire === 'google') {
    const sys = body.systemInstruction as { parts?: Array<{ text?: string }> } | undefined;
    const contents = (body.contents as Array<{ parts?: Array<{ text?: string }> }>) ?? [];
    return {
      ...base,
      stream: route.stream ?? false,
      model: route.model ?? '',
      system: (sys?.parts ?? []).map((p) => p.text ?? '').join(''),
      prompt: contents
        .flatMap((c) => c.parts ?? [])
        .map((p) => p.text ?? '')
        .join('\n'),
    };
  }
  const messages = (body.messages as Array<{ role: string; content: unknown }>) ?? [];
  const system =
    route.wire === 'anthropic'
      ? textOf(body.system)
      : messages
          .filter((m) => m.role === 'system')
          .map((m) => textOf(m.content))
          .join('\n');
  const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
  return {
    ...base,
    stream: body.stream === true,
    ...(route.wire === 'openai' && { includeUsage: streamOptions?.include_usage === true }),
    model: typeof body.model === 'string' ? body.model : '',
    system,
    prompt: messages
      .filter((m) => m.role !== 'system')
      .map((m) => textOf(m.content))
      .join('\n'),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

function send(
  res: ServerResponse,
  entry: RequestLogEntry,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  entry.status = status;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function errorBody(wire: Wire, status: number, message: string): unknown {
  if (wire === 'anthropic') {
    const type = status === 401 ? 'authentication_error' : status === 429 ? 'rate_limit_error' : 'api_error';
    return { type: 'error', error: { type, message } };
  }
  if (wire === 'google') return { error: { code: status, message, status: 'ERROR' } };
  return { error: { message, type: 'fake_error', code: status } };
}

function answerBody(wire: Wire, model: string, text: string, e: RequestLogEntry): unknown {
  if (wire === 'anthropic') {
    return {
      id: `msg_${e.seq}`,
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'text', text }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: e.inputTokens, output_tokens: e.outputTokens },
    };
  }
  if (wire === 'google') {
    return {
      candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 }],
      usageMetadata: {
        promptTokenCount: e.inputTokens,
        candidatesTokenCount: e.outputTokens,
        totalTokenCount: e.inputTokens + e.outputTokens,
      },
    };
  }
  return {
    id: `chatcmpl-${e.seq}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: e.inputTokens,
      completion_tokens: e.outputTokens,
      total_tokens: e.inputTokens + e.outputTokens,
    },
  };
}

/** `text` cut into `count` pieces (fewer for a short text), at word boundaries when there are enough words. */
export function textChunks(text: string, count: number): string[] {
  const words = text.match(/\s*\S+\s*/g) ?? (text ? [text] : []);
  if (words.length >= count) {
    const per = Math.ceil(words.length / count);
    return Array.from({ length: Math.ceil(words.length / per) }, (_, i) =>
      words.slice(i * per, (i + 1) * per).join(''),
    );
  }
  const size = Math.ceil(text.length / count);
  return Array.from({ length: Math.ceil(text.length / size) }, (_, i) =>
    text.slice(i * size, (i + 1) * size),
  );
}

/**
 * The same answer as server-sent events, as each provider sends them: Anthropic's named events (`message_start`
 * with the input tokens, `content_block_start`, `ping`, one `content_block_delta` per chunk, `content_block_stop`,
 * `message_delta` with the output tokens, `message_stop`); OpenAI's `chat.completion.chunk`s (the role first, one
 * per chunk, the finish reason, then the usage chunk only when the request asked for it, then `[DONE]`); Google's
 * candidates (usage on the last). `stall`: everything up to the first text delta, then nothing.
 */
function streamAnswer(
  res: ServerResponse,
  e: RequestLogEntry,
  req: FakeRequest,
  text: string,
  options: { chunks?: number; intervalMs?: number; stall?: boolean },
): void {
  const { wire, model } = req;
  e.status = 200;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const parts = textChunks(text, options.chunks ?? 3);
  const data = (obj: unknown, event?: string): string =>
    `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(obj)}\n\n`;
  const out: string[] = [];
  let firstText = 0;
  if (wire === 'anthropic') {
    out.push(
      data(
        {
          type: 'message_start',
          message: {
            id: `msg_${e.seq}`,
            type: 'message',
            role: 'assistant',
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: e.inputTokens, output_tokens: 1 },
          },
        },
        'message_start',
      ),
      data(
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        'content_block_start',
      ),
      data({ type: 'ping' }, 'ping'),
    );
    firstText = out.length;
    out.push(
      ...parts.map((p) =>
        data(
          { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } },
          'content_block_delta',
        ),
      ),
      data({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
      data(
        {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { output_tokens: e.outputTokens },
        },
        'message_delta',
      ),
      data({ type: 'message_stop' }, 'message_stop'),
    );
  } else if (wire === 'google') {
    parts.forEach((p, i) =>
      out.push(
        data({
          candidates: [
            {
              content: { role: 'model', parts: [{ text: p }] },
              ...(i === parts.length - 1 ? { finishReason: 'STOP' } : {}),
              index: 0,
            },
          ],
          ...(i === parts.length - 1
            ? {
                usageMetadata: {
                  promptTokenCount: e.inputTokens,
                  candidatesTokenCount: e.outputTokens,
                  totalTokenCount: e.inputTokens + e.outputTokens,
                },
              }
            : {}),
        }),
      ),
    );
  } else {
    const chunk = (delta: Record<string, unknown>, finish: string | null, usage?: unknown): string =>
      data({
        id: `chatcmpl-${e.seq}`,
        object: 'chat.completion.chunk',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }],
        ...(usage ? { usage } : {}),
      });
    out.push(chunk({ role: 'assistant', content: '' }, null));
    firstText = out.length;
    parts.forEach((p) => out.push(chunk({ content: p }, null)));
    out.push(chunk({}, 'stop'));
    if (req.includeUsage)
      out.push(
        chunk({}, null, {
          prompt_tokens: e.inputTokens,
          completion_tokens: e.outputTokens,
          total_tokens: e.inputTokens + e.outputTokens,
        }),
      );
    out.push('data: [DONE]\n\n');
  }
  if (options.stall) return void res.write(out.slice(0, firstText + 1).join(''));
  const interval = options.intervalMs ?? 0;
  if (interval <= 0) return void res.end(out.join(''));
  // one event at a time, as a provider writes while it generates
  let next = 0;
  const writeNext = (): void => {
    if (res.destroyed) return;
    res.write(out[next++]);
    if (next < out.length) setTimeout(writeNext, interval);
    else res.end();
  };
  writeNext();
}
