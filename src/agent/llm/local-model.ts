import { type LlmSettings, type LocalModelSettings, StartupError } from '../../config';
import { AgentRunError, type TokenUsage } from '../agent-runner';
import { AGENT_CATALOGUE } from '../agent-catalogue';
import {
  EngineOpenError,
  type LocalEngine,
  openLlamaCppEngine,
  type EngineOptions,
} from './llama-cpp-engine';
import { buildPrompt, type PromptTemplate } from './prompt-templates';

/** The fewest tokens an answer is given room for: a prompt that leaves less fails its node. */
export const MIN_ANSWER_TOKENS = 64;
/** What the instructions and the chat template take beside the node's content, for the default context size. */
const INSTRUCTIONS_ALLOWANCE = 1024;
/** Longest string a constrained answer may hold (keeps a looping small model from filling the context). */
const MAX_JSON_STRING = 600;

export interface LocalGenerate {
  system: string;
  prompt: string;
  signal: AbortSignal;
  /** Structured agents: the answer is constrained to this JSON Schema while it is generated. */
  jsonSchema?: Record<string, unknown>;
  /** The answer's text as it is generated (`AGENT_STREAM`). */
  onText?: (chunk: string) => void;
}

export interface LocalAnswer {
  text: string;
  usage: TokenUsage;
  /** `maxTokens` when the answer was cut at the token limit. */
  stopReason: string;
}

/**
 * A GGUF model loaded once at start-up and run in this process (llama.cpp through node-llama-cpp): one context with
 * `sequences` parallel sequences. Each call takes a free sequence (waiting for one when all are busy: the dispatcher
 * is capped at `capacity`, so it only waits when a host runs more), starts it from an empty state and gives it
 * back when the answer is complete, failed or aborted.
 */
export class LocalModel {
  private readonly free: number[];
  private readonly waiting: { resolve: (seq: number) => void; reject: (err: Error) => void }[] = [];
  private closed = false;

  constructor(
    readonly engine: LocalEngine,
    private readonly maxOutputTokens: number,
  ) {
    this.free = Array.from({ length: engine.sequences }, (_, i) => i);
  }

  /** Nodes the model can work on at once (its parallel sequences). */
  get capacity(): number {
    return this.engine.sequences;
  }

  /** Sequences busy right now. */
  get inUse(): number {
    return this.engine.sequences - this.free.length;
  }

  get description(): string {
    const e = this.engine;
    return `${e.modelName}, context ${e.contextSize} tokens × ${e.sequences} sequence${e.sequences === 1 ? '' : 's'}, ${e.threads} thread${e.threads === 1 ? '' : 's'}`;
  }

  /**
   * One answer. A prompt that leaves less than `MIN_ANSWER_TOKENS` of the context fails at once with
   * `AGENT_BAD_REQUEST` (never retried); the answer gets at most `AGENT_MAX_OUTPUT_TOKENS` and what the context has
   * left. An abort stops generation and frees the sequence.
   */
  async generate({ system, prompt, signal, jsonSchema, onText }: LocalGenerate): Promise<LocalAnswer> {
    signal.throwIfAborted();
    const promptTokens = this.engine.promptTokens(system, prompt);
    const room = this.engine.contextSize - promptTokens;
    if (room < MIN_ANSWER_TOKENS) {
      throw new AgentRunError(
        `the prompt takes ${promptTokens} tokens and leaves ${Math.max(0, room)} of the local model's context of ${this.engine.contextSize} (at least ${MIN_ANSWER_TOKENS} are needed for the answer): raise AGENT_LOCAL_CONTEXT_SIZE or lower AGENT_CONTEXT_TOKENS`,
        'AGENT_BAD_REQUEST',
      );
    }
    const sequence = await this.acquire(signal);
    try {
      const answer = await this.engine.prompt(sequence, {
        system,
        prompt,
        signal,
        maxTokens: Math.min(this.maxOutputTokens, room),
        ...(jsonSchema && { jsonSchema: grammarSchema(jsonSchema) }),
        ...(onText && { onText }),
      });
      signal.throwIfAborted();
      return {
        text: answer.text,
        stopReason: answer.stopReason,
        usage: { inputTokens: answer.inputTokens, outputTokens: answer.outputTokens },
      };
    } finally {
      this.release(sequence);
    }
  }

  /** Frees the model (waiting calls fail). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(new AgentRunError('the local model was closed'));
    await this.engine.close();
  }

  private acquire(signal: AbortSignal): Promise<number> {
    if (this.closed) return Promise.reject(new AgentRunError('the local model was closed'));
    const seq = this.free.shift();
    if (seq !== undefined) return Promise.resolve(seq);
    return new Promise<number>((resolve, reject) => {
      const entry = {
        resolve: (s: number) => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (err: Error) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private release(seq: number): void {
    const next = this.waiting.shift();
    if (next) next.resolve(seq);
    else this.free.push(seq);
  }
}

/**
 * The schema the grammar is built from. node-llama-cpp's JSON-Schema grammar knows `oneOf` but not `anyOf`, and
 * ignores `minimum`/`maximum`: the real model answered a score of 30 out of 25 and a hint level outside 1–3. So
 * `anyOf` becomes `oneOf`, a small integer range an `enum` of its values, and every free string gets a `maxLength`
 * (a small model that starts repeating itself inside a string is stopped there instead of filling the context). The
 * answer is still validated against the real schema.
 */
export function grammarSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!node || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k === 'anyOf' ? 'oneOf' : k] = walk(v);
    if ('const' in out || 'enum' in out) {
      const { type: _type, ...rest } = out;
      return rest;
    }
    if (out.type === 'string' && out.maxLength === undefined) out.maxLength = MAX_JSON_STRING;
    const { minimum, maximum } = out;
    if (
      out.type === 'integer' &&
      typeof minimum === 'number' &&
      typeof maximum === 'number' &&
      maximum >= minimum &&
      maximum - minimum <= 100
    ) {
      return { enum: Array.from({ length: maximum - minimum + 1 }, (_, i) => minimum + i) };
    }
    return out;
  };
  return walk(schema) as Record<string, unknown>;
}

/** The context size per sequence when `AGENT_LOCAL_CONTEXT_SIZE` is unset: prompt budget + answer + instructions. */
export function defaultContextSize(
  settings: Pick<LlmSettings, 'contextTokens' | 'maxOutputTokens'>,
): (train: number) => number {
  const wanted =
    Math.ceil((settings.contextTokens + settings.maxOutputTokens + INSTRUCTIONS_ALLOWANCE) / 256) * 256;
  return (train) => (train > 0 ? Math.min(train, wanted) : wanted);
}

/**
 * Loads the model once, at start-up. Every failure is a `StartupError` naming the setting to fix: the optional
 * package missing, llama.cpp's backend unusable, a file llama.cpp cannot load as a model (not a model, or too large
 * for this machine's memory), a context that does not fit, or one too small for the agents' own instructions.
 */
export async function loadLocalModel(
  settings: LlmSettings & { local: LocalModelSettings },
  templates: Map<string, PromptTemplate>,
  open: (o: EngineOptions) => Promise<LocalEngine> = openLlamaCppEngine,
): Promise<LocalModel> {
  const l = settings.local;
  let engine: LocalEngine;
  try {
    engine = await open({
      modelPath: l.modelPath,
      threads: l.threads,
      gpu: l.gpu,
      sequences: l.sequences,
      contextSize: l.contextSize === undefined ? defaultContextSize(settings) : () => l.contextSize as number,
    });
  } catch (err) {
    throw openFailure(err, settings);
  }
  const tightest = longestInstructions(engine, templates);
  if (tightest && engine.contextSize - tightest.tokens < MIN_ANSWER_TOKENS) {
    await engine.close().catch(() => undefined);
    throw new StartupError(
      `AGENT_LOCAL_CONTEXT_SIZE ${engine.contextSize} is too small: the instructions of ${tightest.agent} alone take ${tightest.tokens} tokens, and an answer needs at least ${MIN_ANSWER_TOKENS} more; set it to ${Math.ceil((tightest.tokens + MIN_ANSWER_TOKENS + settings.maxOutputTokens) / 256) * 256} or more (or unset it)`,
    );
  }
  return new LocalModel(engine, settings.maxOutputTokens);
}

/** The agent whose prompt for a one-word node is longest, in tokens. */
function longestInstructions(
  engine: LocalEngine,
  templates: Map<string, PromptTemplate>,
): { agent: string; tokens: number } | undefined {
  let best: { agent: string; tokens: number } | undefined;
  for (const def of AGENT_CATALOGUE.filter((d) => d.runnable)) {
    const t = templates.get(def.name);
    if (!t) continue;
    const { system, prompt } = buildPrompt(
      t,
      { canvasPath: 'x.canvas', nodeId: 'x', nodeType: 'text', content: 'x' },
      1,
    );
    const tokens = engine.promptTokens(system, prompt);
    if (!best || tokens > best.tokens) best = { agent: def.name, tokens };
  }
  return best;
}

function openFailure(err: unknown, settings: LlmSettings & { local: LocalModelSettings }): StartupError {
  const l = settings.local;
  const why = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
  const phase = err instanceof EngineOpenError ? err.phase : 'model';
  switch (phase) {
    case 'package':
      return new StartupError(
        `AGENT_PROVIDER=local needs the optional package node-llama-cpp, which cannot be loaded (${why}): install it with \`npm install node-llama-cpp@3.21.1\`, or choose another AGENT_PROVIDER`,
        { cause: err },
      );
    case 'backend':
      return new StartupError(
        `AGENT_PROVIDER=local: llama.cpp cannot run on this machine with AGENT_LOCAL_GPU=${String(l.gpu)} (${why}): check that node-llama-cpp's prebuilt binaries for this platform are installed, or set AGENT_LOCAL_GPU=false`,
        { cause: err },
      );
    case 'context':
      return new StartupError(
        `AGENT_MODEL ${l.modelPath} loaded, but its context (${l.contextSize ?? 'default size'} tokens × AGENT_LOCAL_SEQUENCES ${l.sequences}) could not be created (${why}): lower AGENT_LOCAL_CONTEXT_SIZE or AGENT_LOCAL_SEQUENCES`,
        { cause: err },
      );
    default:
      return new StartupError(
        `AGENT_MODEL ${l.modelPath} could not be loaded as a model (${why}): give the path of a GGUF model file that fits in this machine's memory (see docs/agents.md, "The local provider")`,
        { cause: err },
      );
  }
}
