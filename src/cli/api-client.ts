/** What the CLI needs of the service's HTTP API, over Node's fetch. */
import type { TaskEventPayloads, TaskEventType } from '../orchestrator';
import type { OutputDeltaData } from './text-focus';

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: { field: string; message: string }[];
}

/** The service answered with an error (problem+json), or could not be reached (`status` 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problem?: Problem,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** One event of a task's stream: its SSE `id:`, its name (`event:`) and its payload (`data` of the `data:` line). */
export type TaskEvent<K extends TaskEventType = TaskEventType> = {
  [T in K]: { id: number; type: T; data: TaskEventPayloads[T] };
}[K];

/**
 * The event names the CLI follows: the service's vocabulary, checked by the compiler (the service's code itself is
 * not loaded by the CLI, only its types).
 */
const EVENT_NAMES: Readonly<Record<TaskEventType, true>> = {
  progress_update: true,
  task_completed: true,
  task_failed: true,
  group_completed: true,
  cancelled: true,
  error: true,
  resumed: true,
  session_completed: true,
};

function isEventName(name: string): name is TaskEventType {
  return Object.hasOwn(EVENT_NAMES, name);
}

export interface ApiClientOptions {
  baseUrl: string;
  token?: string;
  /** Reconnect attempts of an event stream that broke before `session_completed`. Default 20. */
  maxReconnects?: number;
  /** Delay before a reconnect in ms. Default 500. */
  reconnectDelayMs?: number;
}

export class ApiClient {
  readonly baseUrl: string;

  constructor(private readonly options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          accept: 'application/json',
          ...this.auth(),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw unreachable(this.baseUrl, err);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const problem = (parsed ?? {}) as Problem;
      const fields = problem.errors?.map((e) => `\n  - ${e.field}: ${e.message}`).join('') ?? '';
      throw new ApiError(
        res.status,
        `${problem.title ?? `HTTP ${res.status}`}: ${problem.detail ?? (text.slice(0, 200) || res.statusText)}${fields}`,
        problem,
      );
    }
    return parsed as T;
  }

  /**
   * A task's events from the start (replayed from the log), then live, until `session_completed`. A broken stream
   * reconnects with `Last-Event-ID`, so no event is lost or repeated. `onDelta`: asks for the running nodes' partial
   * text too (`?include=deltas`) and gets each `task_output_delta` (live only; some may be lost).
   */
  async *events(
    taskId: string,
    signal?: AbortSignal,
    onDelta?: (d: OutputDeltaData) => void,
  ): AsyncGenerator<TaskEvent> {
    let lastId = 0;
    let failures = 0;
    const maxReconnects = this.options.maxReconnects ?? 20;
    for (;;) {
      let res: Response;
      try {
        const include = onDelta ? '?include=deltas' : '';
        res = await fetch(`${this.baseUrl}/parallel/events/${encodeURIComponent(taskId)}${include}`, {
          headers: { accept: 'text/event-stream', 'last-event-id': String(lastId), ...this.auth() },
          signal,
        });
      } catch (err) {
        if (signal?.aborted) return;
        if (++failures > maxReconnects) throw unreachable(this.baseUrl, err);
        await sleep(this.options.reconnectDelayMs ?? 500);
        continue;
      }
      // 204: the task is finished and every event after `lastId` was seen already — nothing more will come
      if (res.status === 204) return;
      if (!res.ok || !res.body) {
        const problem = (await res.json().catch(() => ({}))) as Problem;
        throw new ApiError(
          res.status,
          `${problem.title ?? `HTTP ${res.status}`}: ${problem.detail ?? ''}`,
          problem,
        );
      }
      try {
        for await (const e of parseSse(res.body, signal, onDelta)) {
          failures = 0;
          lastId = e.id;
          yield e;
          if (e.type === 'session_completed') return;
        }
      } catch (err) {
        if (signal?.aborted) return;
        if (++failures > maxReconnects) throw unreachable(this.baseUrl, err);
      }
      if (signal?.aborted) return;
      // the stream ended early (e.g. the service restarted): continue after the last event seen
      await sleep(this.options.reconnectDelayMs ?? 500);
    }
  }

  private auth(): Record<string, string> {
    return this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
  }
}

/**
 * Parses `text/event-stream` blocks into events with a numeric id (comments and other id-less blocks are skipped);
 * `task_output_delta` blocks (no id) go to `onDelta` when given.
 */
export async function* parseSse(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
  onDelta?: (d: OutputDeltaData) => void,
): AsyncGenerator<TaskEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = body.getReader();
  const onAbort = (): void => void reader.cancel().catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let idx: number;
      while ((idx = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, idx);
        buffer = buffer.slice(idx + 2);
        const e = parseBlock(block, onDelta);
        if (e) yield e;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}

function parseBlock(block: string, onDelta?: (d: OutputDeltaData) => void): TaskEvent | undefined {
  let id: number | undefined;
  let type = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = Number(value);
    else if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (id === undefined && type === 'task_output_delta' && onDelta && data.length) {
    const d = JSON.parse(data.join('\n')) as Partial<OutputDeltaData>;
    if (typeof d.node_id === 'string' && typeof d.text === 'string' && typeof d.offset === 'number')
      onDelta(d as OutputDeltaData);
    return undefined;
  }
  // an event name this CLI does not know (a newer service) is skipped: nothing here would use it
  if (id === undefined || !Number.isSafeInteger(id) || data.length === 0 || !isEventName(type))
    return undefined;
  // the service's `WireEvent`: its `data` is the payload the name selects
  const payload = JSON.parse(data.join('\n')) as { data?: TaskEvent['data'] };
  return { id, type, data: payload.data ?? {} } as TaskEvent;
}

function unreachable(baseUrl: string, err: unknown): ApiError {
  const cause = (err as { cause?: { code?: string } })?.cause?.code ?? (err as Error)?.message ?? String(err);
  return new ApiError(0, `cannot reach canvas-batch at ${baseUrl} (${cause})`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
