import { setTimeout as sleep } from 'node:timers/promises';
import { type AgentErrorType, AgentRunError, type ProviderFeedback } from '../agent-runner';
import type { RetrySettings } from '../../config';

/** How one failed provider call is handled. */
export interface FailureClass {
  retryable: boolean;
  /** The node's `error_type` if this is the last failure. */
  errorType: AgentErrorType;
  /** HTTP status, when there was a response. */
  status: number | undefined;
  /** What the provider asked us to wait (`retry-after-ms` or `Retry-After`), in ms. */
  retryAfterMs: number | undefined;
  message: string;
}

/** A provider call that exceeded its own time limit (`AGENT_ATTEMPT_TIMEOUT_MS`): retried like a 5xx. */
export class AttemptTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the provider call took longer than ${timeoutMs} ms`);
    this.name = 'AttemptTimeoutError';
  }
}

interface ApiErrorShape {
  statusCode?: number;
  responseHeaders?: Record<string, string>;
  isRetryable?: boolean;
  message?: string;
}

/**
 * Classifies a provider call's failure. The AI SDK reports HTTP failures as `APICallError` (status code and
 * response headers), connection failures as `APICallError` without status, unreadable answers as JSON/type
 * validation errors. `redact` removes secrets from the message.
 */
export function classifyFailure(err: unknown, redact: (s: string) => string): FailureClass {
  if (err instanceof AgentRunError) {
    // the call itself judged the failure (e.g. the local model: a prompt larger than its context): never retried
    return {
      status: undefined,
      retryAfterMs: undefined,
      retryable: false,
      errorType: err.errorType,
      message: redact(err.message),
    };
  }
  if (err instanceof AttemptTimeoutError) {
    return {
      status: undefined,
      retryAfterMs: undefined,
      retryable: true,
      errorType: 'AGENT_TIMEOUT',
      message: err.message,
    };
  }
  const e = (err ?? {}) as ApiErrorShape & { name?: string };
  const raw = redact(err instanceof Error ? err.message : String(err)).slice(0, 500);
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined) {
    const base = { status, retryAfterMs: retryAfterOf(e.responseHeaders) };
    if (status === 429) {
      return {
        ...base,
        retryable: true,
        errorType: 'RATE_LIMITED',
        message: `provider rate limit (429): ${raw}`,
      };
    }
    if (status === 401 || status === 403) {
      return {
        ...base,
        retryable: false,
        errorType: 'AGENT_AUTH_FAILED',
        message: `the provider refused the credential (${status}): ${raw}`,
      };
    }
    if (status === 408 || status === 409 || status >= 500) {
      return {
        ...base,
        retryable: true,
        errorType: 'AGENT_PROVIDER_ERROR',
        message: `provider error (${status}): ${raw}`,
      };
    }
    if (status >= 400) {
      return {
        ...base,
        retryable: false,
        errorType: 'AGENT_BAD_REQUEST',
        message: `the provider rejected the request (${status}): ${raw}`,
      };
    }
  }
  // No status: a connection failure (reset, refused, DNS) or an answer that could not be read.
  return {
    status,
    retryAfterMs: undefined,
    retryable: true,
    errorType: 'AGENT_PROVIDER_ERROR',
    message: `provider call failed: ${raw}`,
  };
}

/** `retry-after-ms` (OpenAI) wins over `Retry-After` (seconds or an HTTP date). Negative or unparsable: ignored. */
export function retryAfterOf(
  headers: Record<string, string> | undefined,
  now = Date.now(),
): number | undefined {
  if (!headers) return undefined;
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const ms = Number.parseFloat(lower['retry-after-ms'] ?? '');
  if (Number.isFinite(ms) && ms >= 0) return Math.ceil(ms);
  const ra = lower['retry-after'];
  if (ra === undefined) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Math.ceil(Number(ra) * 1000);
  const at = Date.parse(ra);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export interface RetryContext {
  settings: RetrySettings;
  signal: AbortSignal;
  /** Epoch ms: no attempt starts, and no backoff sleeps, past it. */
  deadline: number | undefined;
  feedback: ProviderFeedback | undefined;
  redact: (s: string) => string;
  random?: () => number;
  now?: () => number;
}

/** A call that failed for good: the node's error, with how many attempts were made. */
export class RetriesExhausted extends AgentRunError {}

/**
 * The one retry loop for provider calls (the SDK's own retries are off): retries 429, 5xx, 408/409 and
 * connection failures with exponential backoff and full jitter, or exactly the provider's `Retry-After`; fails fast
 * on other 4xx; never sleeps past the deadline or after an abort (the abort's reason is thrown as is). Reports
 * every 429 and success to `feedback`. `call` gets the 1-based attempt number.
 */
export async function withRetries<T>(
  call: (attempt: number) => Promise<T>,
  ctx: RetryContext,
): Promise<{ value: T; attempts: number }> {
  const now = ctx.now ?? Date.now;
  const random = ctx.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    ctx.signal.throwIfAborted();
    const startedAt = now();
    try {
      const value = await call(attempt);
      ctx.feedback?.succeeded();
      return { value, attempts: attempt };
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const failure = classifyFailure(err, ctx.redact);
      if (failure.status === 429) ctx.feedback?.rateLimited(startedAt);
      const tried = `after ${attempt} attempt${attempt === 1 ? '' : 's'}`;
      if (!failure.retryable)
        throw new RetriesExhausted(`${failure.message} (${tried})`, failure.errorType, { attempts: attempt });
      if (attempt >= ctx.settings.maxAttempts) {
        throw new RetriesExhausted(`${failure.message} (gave up ${tried})`, failure.errorType, {
          attempts: attempt,
        });
      }
      const backoff = Math.min(ctx.settings.maxDelayMs, ctx.settings.baseDelayMs * 2 ** (attempt - 1));
      const delay = failure.retryAfterMs ?? Math.round(random() * backoff);
      if (ctx.deadline !== undefined && now() + delay >= ctx.deadline) {
        throw new RetriesExhausted(
          `${failure.message} (${tried}; the next try in ${delay} ms would pass the deadline)`,
          failure.errorType,
          { attempts: attempt },
        );
      }
      if (delay > 0) {
        try {
          await sleep(delay, undefined, { signal: ctx.signal });
        } catch {
          throw ctx.signal.reason;
        }
      }
    }
  }
}
