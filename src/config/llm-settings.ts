import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';

/** The hosted LLM providers the service calls through the Vercel AI SDK. */
export const SDK_PROVIDERS = ['anthropic', 'openai-compatible', 'google'] as const;
export type SdkProvider = (typeof SDK_PROVIDERS)[number];
/** Every LLM provider: the SDK ones, and `local` (a GGUF model run in this process by llama.cpp). */
export const LLM_PROVIDERS = [...SDK_PROVIDERS, 'local'] as const;
export type LlmProvider = (typeof LLM_PROVIDERS)[number];

/** GPU use of the local provider (`AGENT_LOCAL_GPU`): llama.cpp's backends; `false` = CPU only. */
export const LOCAL_GPU_CHOICES = ['false', 'auto', 'cuda', 'vulkan', 'metal'] as const;
export type LocalGpu = false | 'auto' | 'cuda' | 'vulkan' | 'metal';

/** The local provider's own settings (`AGENT_PROVIDER=local`). */
export interface LocalModelSettings {
  /** Absolute path of the GGUF file (`AGENT_MODEL`). */
  modelPath: string;
  /** CPU threads llama.cpp computes with (`AGENT_LOCAL_THREADS`); default: the cores this process may use. */
  threads: number;
  /**
   * Tokens each sequence holds, prompt and answer together (`AGENT_LOCAL_CONTEXT_SIZE`). `undefined` (default):
   * enough for `AGENT_CONTEXT_TOKENS` + `AGENT_MAX_OUTPUT_TOKENS` + the instructions, at most the model's own
   * training context.
   */
  contextSize: number | undefined;
  /**
   * Parallel sequences (`AGENT_LOCAL_SEQUENCES`): nodes the model works on at once, the provider's capacity — the
   * dispatcher never runs more nodes than this at once.
   */
  sequences: number;
  gpu: LocalGpu;
}

/** Default parallel sequences of the local provider (see bench/results/local-model.json). */
export const DEFAULT_LOCAL_SEQUENCES = 2;

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
  /** The provider's model name; for `local`, the GGUF file's absolute path. */
  model: string;
  /** `undefined`: the provider's own endpoint. */
  baseUrl: string | undefined;
  apiKey: string | undefined;
  /**
   * `AGENT_STREAM`: ask the provider for server-sent events instead of one JSON answer (the local model: report its
   * text chunks as they are generated).
   */
  stream: boolean;
  retry: RetrySettings;
  /** Budget for the node's content plus its neighbours, in tokens (≈ 4 characters each). */
  contextTokens: number;
  maxOutputTokens: number;
  prices: TokenPrices | undefined;
  /** Present exactly when `provider` is `local`. */
  local?: LocalModelSettings;
}

/** Default model per provider (used when `AGENT_MODEL` is unset). */
export const DEFAULT_MODELS: Record<SdkProvider, string> = {
  anthropic: 'claude-sonnet-4-5',
  'openai-compatible': 'gpt-4o-mini',
  google: 'gemini-2.5-flash',
};

/** The provider's usual credential variable, read when `AGENT_API_KEY` is unset. */
export const KEY_VARIABLES: Record<SdkProvider, string> = {
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
export function parseLlmSettings(
  get: Get,
  int: Int,
  problems: string[],
  cwd = process.cwd(),
): LlmSettings | undefined {
  const provider = get('AGENT_PROVIDER') ?? 'offline';
  const localOnly = LOCAL_VARIABLES.filter((name) => get(name) !== undefined);
  if (provider !== 'local' && localOnly.length) {
    problems.push(
      `${localOnly.join(', ')} only apply to AGENT_PROVIDER=local (unset them, or set AGENT_PROVIDER=local)`,
    );
  }
  if (provider === 'offline') return undefined;
  if (!(LLM_PROVIDERS as readonly string[]).includes(provider)) {
    problems.push(`AGENT_PROVIDER must be one of offline, ${LLM_PROVIDERS.join(', ')} (got "${provider}")`);
    return undefined;
  }
  if (provider === 'local') return parseLocal(get, int, problems, cwd);
  const p = provider as SdkProvider;
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

/** The variables only the local provider reads. */
const LOCAL_VARIABLES = [
  'AGENT_LOCAL_THREADS',
  'AGENT_LOCAL_CONTEXT_SIZE',
  'AGENT_LOCAL_SEQUENCES',
  'AGENT_LOCAL_GPU',
] as const;

/**
 * `AGENT_PROVIDER=local`: `AGENT_MODEL` is the path of a GGUF file (checked here: it exists, is a readable file
 * and starts with the GGUF magic; whether llama.cpp can load it is checked when the model loads at start-up).
 * No key, no base URL; one local call per node (`AGENT_MAX_ATTEMPTS` still bounds the retries of a failed call).
 */
function parseLocal(get: Get, int: Int, problems: string[], cwd: string): LlmSettings {
  for (const name of ['AGENT_BASE_URL', 'AGENT_API_KEY']) {
    if (get(name) !== undefined) problems.push(`${name} does not apply to AGENT_PROVIDER=local (unset it)`);
  }
  const model = get('AGENT_MODEL');
  let modelPath = '';
  if (model === undefined) {
    problems.push('AGENT_MODEL is required with AGENT_PROVIDER=local: the path of a GGUF model file');
  } else {
    modelPath = path.resolve(cwd, model);
    const problem = ggufProblem(modelPath);
    if (problem) problems.push(`AGENT_MODEL ${modelPath} ${problem}`);
  }
  const gpu = get('AGENT_LOCAL_GPU') ?? 'false';
  if (!(LOCAL_GPU_CHOICES as readonly string[]).includes(gpu)) {
    problems.push(`AGENT_LOCAL_GPU must be one of ${LOCAL_GPU_CHOICES.join(', ')} (got "${gpu}")`);
  }
  const contextTokens = int('AGENT_CONTEXT_TOKENS', 4000, 100, 1_000_000);
  const maxOutputTokens = int('AGENT_MAX_OUTPUT_TOKENS', 2048, 16, 200_000);
  // the local model streams through its text-chunk callback (no wire): the partial text of `task_output_delta`
  const stream = get('AGENT_STREAM');
  if (stream !== undefined && !['true', 'false', '1', '0'].includes(stream)) {
    problems.push(`AGENT_STREAM must be true or false (got "${stream}")`);
  }
  const contextSize =
    get('AGENT_LOCAL_CONTEXT_SIZE') === undefined
      ? undefined
      : int('AGENT_LOCAL_CONTEXT_SIZE', 0, 256, 1_048_576);
  return {
    provider: 'local',
    model: modelPath,
    baseUrl: undefined,
    apiKey: undefined,
    stream: stream === 'true' || stream === '1',
    retry: {
      maxAttempts: int('AGENT_MAX_ATTEMPTS', 8, 1, 50),
      baseDelayMs: int('AGENT_RETRY_BASE_MS', 500, 1, 60_000),
      maxDelayMs: int('AGENT_RETRY_MAX_MS', 30_000, 1, 600_000),
      ...(get('AGENT_ATTEMPT_TIMEOUT_MS') !== undefined && {
        attemptTimeoutMs: int('AGENT_ATTEMPT_TIMEOUT_MS', 0, 100, 3_600_000),
      }),
    },
    contextTokens,
    maxOutputTokens,
    prices: parsePrices(get('AGENT_PRICE_PER_MTOK'), problems),
    local: {
      modelPath,
      threads: int('AGENT_LOCAL_THREADS', availableParallelism(), 1, 1024),
      contextSize,
      sequences: int('AGENT_LOCAL_SEQUENCES', DEFAULT_LOCAL_SEQUENCES, 1, 64),
      gpu: gpu === 'false' ? false : (gpu as Exclude<LocalGpu, false>),
    },
  };
}

/** Why `file` cannot be a GGUF model (missing, not a file, unreadable, wrong magic), or `undefined` if it may be. */
export function ggufProblem(file: string): string | undefined {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return 'is not a file';
    size = st.size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
  }
  const head = Buffer.alloc(4);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    readSync(fd, head, 0, 4, 0);
  } catch (err) {
    return `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (size < 4 || head.toString('latin1') !== 'GGUF') {
    return 'is not a GGUF model file (it does not start with the GGUF magic bytes)';
  }
  return undefined;
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
