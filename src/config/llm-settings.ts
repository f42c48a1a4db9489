/** The LLM providers the service can call (through the Vercel AI SDK). */
export const LLM_PROVIDERS = ['anthropic', 'openai-compatible', 'google'] as const;
export type LlmProvider = (typeof LLM_PROVIDERS)[number];

/** USD per million tokens, for the optional cost estimate. */
export interface TokenPrices {
  inputPerMTok: number;
  outputPerMTok: number;
}

export interface RetrySettings {
  /** Provider calls per node at most, the first included. */
  maxAttempts: number;
  /** First backoff (doubled per attempt, with jitter) when the provider gives no `Retry-After`. */
  baseDelayMs: number;
  /** Longest backoff without `Retry-After`. */
  maxDelayMs: number;
  /**
   * One provider call's own time limit: a call that takes longer is aborted and retried (a timeout is transient).
   * `undefined`: only the node's `AGENT_TIMEOUT_MS` applies, so a hung call ends the node.
   */
  attemptTimeoutMs?: number;
}

/** Everything the LLM runner needs, validated at start-up. `apiKey` is never logged or echoed. */
export interface LlmSettings {
  provider: LlmProvider;
  model: string;
  /** `undefined`: the provider's own endpoint. */
  baseUrl: string | undefined;
  apiKey: string | undefined;
  /** Ask for server-sent events instead of one JSON answer. */
  stream: boolean;
  retry: RetrySettings;
  /** Budget for the node's content plus its neighbours, in tokens (≈ 4 characters each). */
  contextTokens: number;
  maxOutputTokens: number;
  prices: TokenPrices | undefined;
}

/** Default model per provider (used when `AGENT_MODEL` is unset). */
export const DEFAULT_MODELS: Record<LlmProvider, string> = {
  anthropic: 'claude-sonnet-4-5',
  'openai-compatible': 'gpt-4o-mini',
  google: 'gemini-2.5-flash',
};

/** The provider's usual credential variable, read when `AGENT_API_KEY` is unset. */
export const KEY_VARIABLES: Record<LlmProvider, string> = {
  anthropic: 'ANTHROPIC_API_KEY',
  'openai-compatible': 'OPENAI_API_KEY',
  google: 'GOOGLE_GENERATIVE_AI_API_KEY',
};

type Get = (name: string) => string | undefined;
type Int = (name: string, def: number, min: number, max: number) => number;

/**
 * Reads `AGENT_PROVIDER` and, for an LLM provider, its settings. Problems are appended to `problems` (never with
 * the key's value); returns `undefined` for the offline provider.
 */
export function parseLlmSettings(get: Get, int: Int, problems: string[]): LlmSettings | undefined {
  const provider = get('AGENT_PROVIDER') ?? 'offline';
  if (provider === 'offline') return undefined;
  if (!(LLM_PROVIDERS as readonly string[]).includes(provider)) {
    problems.push(`AGENT_PROVIDER must be one of offline, ${LLM_PROVIDERS.join(', ')} (got "${provider}")`);
    return undefined;
  }
  const p = provider as LlmProvider;
  const baseUrl = get('AGENT_BASE_URL');
  if (baseUrl !== undefined) {
    if (!isHttpUrl(baseUrl)) problems.push(`AGENT_BASE_URL must be an http(s) URL (got "${baseUrl}")`);
  }
  let model = get('AGENT_MODEL');
  if (model === undefined) {
    if (p === 'openai-compatible' && baseUrl !== undefined) {
      problems.push(
        'AGENT_MODEL is required with AGENT_PROVIDER=openai-compatible and AGENT_BASE_URL (the model name the server knows, e.g. "llama3.2")',
      );
    }
    model = DEFAULT_MODELS[p];
  }
  const apiKey = get('AGENT_API_KEY') ?? get(KEY_VARIABLES[p]);
  // A local OpenAI-compatible server (Ollama, vLLM, llama.cpp) usually needs no key; the hosted APIs always do.
  if (apiKey === undefined && !(p === 'openai-compatible' && baseUrl !== undefined)) {
    problems.push(`AGENT_API_KEY (or ${KEY_VARIABLES[p]}) is required for AGENT_PROVIDER=${p}`);
  }
  const stream = get('AGENT_STREAM');
  if (stream !== undefined && !['true', 'false', '1', '0'].includes(stream)) {
    problems.push(`AGENT_STREAM must be true or false (got "${stream}")`);
  }
  const prices = parsePrices(get('AGENT_PRICE_PER_MTOK'), problems);
  const retry: RetrySettings = {
    maxAttempts: int('AGENT_MAX_ATTEMPTS', 8, 1, 50),
    baseDelayMs: int('AGENT_RETRY_BASE_MS', 500, 1, 60_000),
    maxDelayMs: int('AGENT_RETRY_MAX_MS', 30_000, 1, 600_000),
    ...(get('AGENT_ATTEMPT_TIMEOUT_MS') !== undefined && {
      attemptTimeoutMs: int('AGENT_ATTEMPT_TIMEOUT_MS', 0, 100, 3_600_000),
    }),
  };
  if (retry.maxDelayMs < retry.baseDelayMs) {
    problems.push('AGENT_RETRY_MAX_MS must be at least AGENT_RETRY_BASE_MS');
  }
  return {
    provider: p,
    model,
    baseUrl: baseUrl?.replace(/\/+$/, ''),
    apiKey,
    stream: stream === 'true' || stream === '1',
    retry,
    contextTokens: int('AGENT_CONTEXT_TOKENS', 4000, 100, 1_000_000),
    maxOutputTokens: int('AGENT_MAX_OUTPUT_TOKENS', 2048, 16, 200_000),
    prices,
  };
}

function isHttpUrl(raw: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(raw).protocol);
  } catch {
    return false;
  }
}

/** `AGENT_PRICE_PER_MTOK="INPUT,OUTPUT"`: USD per million input and output tokens, e.g. `3,15`. */
function parsePrices(raw: string | undefined, problems: string[]): TokenPrices | undefined {
  if (raw === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/.exec(raw);
  if (!m) {
    problems.push(
      `AGENT_PRICE_PER_MTOK must be "INPUT,OUTPUT" in USD per million tokens, e.g. "3,15" (got "${raw}")`,
    );
    return undefined;
  }
  return { inputPerMTok: Number(m[1]), outputPerMTok: Number(m[2]) };
}

/** Estimated cost in USD of a token count, rounded to micro-dollars. */
export function costOf(prices: TokenPrices, inputTokens: number, outputTokens: number): number {
  const usd = (inputTokens * prices.inputPerMTok + outputTokens * prices.outputPerMTok) / 1_000_000;
  return Math.round(usd * 1e6) / 1e6;
}
