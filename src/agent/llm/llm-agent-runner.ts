import { Logger } from '@nestjs/common';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, type LanguageModel, streamText } from 'ai';
import {
  AgentRunError,
  AgentRunner,
  type AgentRunRequest,
  type AgentRunResult,
  type RunnerIdentity,
  type TokenUsage,
} from '../agent-runner';
import { findAgent } from '../agent-catalogue';
import type { LlmSettings, LocalModelSettings } from '../../config';
import { loadLocalModel, type LocalModel } from './local-model';
import {
  buildPrompt,
  loadPromptTemplates,
  PROMPT_TEMPLATE_VERSIONS,
  type PromptTemplate,
} from './prompt-templates';
import { AttemptTimeoutError, withRetries } from './retry';
import { outputJsonSchema, parseAnswer } from './structured-output';

/** The model call (the SDK's, or the local model's), behind a seam so unit tests can replace it. */
export type ModelCall = (args: {
  system: string;
  prompt: string;
  signal: AbortSignal;
  headers: Record<string, string>;
  /**
   * Structured agents: the JSON Schema of the answer (also in the system prompt). A provider that can constrain
   * generation to it does (the local one); the others ignore it and the answer is validated (and asked for once more).
   */
  jsonSchema?: Record<string, unknown>;
  /** Streaming on: the answer's text as it arrives (the SDK providers then call the streaming wire). */
  onText?: (chunk: string) => void;
}) => Promise<{ text: string; usage: TokenUsage }>;

/**
 * The LLM provider behind the `AgentRunner` port, through the Vercel AI SDK (Anthropic, OpenAI-compatible,
 * Google). Builds the prompt from the agent's template, the node and its surroundings; calls the model with the
 * SDK's retries off (our `withRetries` is the only retry layer) and the node's signal on the HTTP request itself;
 * validates structured answers against their schema and asks once more when one does not match.
 */
export class LlmAgentRunner extends AgentRunner {
  private readonly templates: Map<string, PromptTemplate>;
  private readonly call: ModelCall;
  private readonly redact: (s: string) => string;
  override readonly capacity: number | undefined;
  private readonly onClose: (() => Promise<void>) | undefined;

  /**
   * `call` replaces the model call (tests); `capacity` is the most nodes the provider can work on at once (the
   * local model's sequences), `close` what frees it. The local provider is built with `LlmAgentRunner.create`.
   */
  constructor(
    private readonly settings: LlmSettings,
    options: {
      templates?: Map<string, PromptTemplate>;
      call?: ModelCall;
      capacity?: number;
      close?: () => Promise<void>;
    } = {},
  ) {
    super();
    this.templates = options.templates ?? loadPromptTemplates();
    this.call = options.call ?? sdkCall(createModel(settings), settings);
    this.redact = redactor(settings.apiKey);
    this.capacity = options.capacity;
    this.onClose = options.close;
  }

  /**
   * The runner for `settings`; for the local provider, loads the model first (once, at start-up: a file that cannot
   * be loaded is a `StartupError`). `load` replaces the model loader (tests).
   */
  static async create(
    settings: LlmSettings,
    options: {
      templates?: Map<string, PromptTemplate>;
      load?: (
        s: LlmSettings & { local: LocalModelSettings },
        t: Map<string, PromptTemplate>,
      ) => Promise<LocalModel>;
    } = {},
  ): Promise<LlmAgentRunner> {
    const templates = options.templates ?? loadPromptTemplates();
    if (settings.provider !== 'local' || !settings.local) return new LlmAgentRunner(settings, { templates });
    const started = Date.now();
    const model = await (options.load ?? loadLocalModel)({ ...settings, local: settings.local }, templates);
    new Logger('LocalModel').log(`local model loaded in ${Date.now() - started} ms: ${model.description}`);
    return new LlmAgentRunner(settings, {
      templates,
      call: localCall(model),
      capacity: model.capacity,
      close: () => model.close(),
    });
  }

  /** `provider/model`, for the start-up log (never the key). */
  get description(): string {
    return `${this.settings.provider}/${this.settings.model}${this.settings.baseUrl ? ` at ${this.settings.baseUrl}` : ''}`;
  }

  /**
   * Provider, model (for `local` the model file), and the agent's template version with the settings that shape its
   * prompt and answer. `undefined` for an agent without a versioned template (never cached).
   */
  override identity(agentType: string): RunnerIdentity | undefined {
    const name = findAgent(agentType)?.name;
    const version = name === undefined ? undefined : PROMPT_TEMPLATE_VERSIONS[name];
    if (version === undefined) return undefined;
    const { provider, model, baseUrl, contextTokens, maxOutputTokens } = this.settings;
    return {
      provider: baseUrl ? `${provider}@${baseUrl}` : provider,
      model,
      template: `v${version}/ctx${contextTokens}/out${maxOutputTokens}`,
    };
  }

  /** Frees the provider's resources (the local model) once the application has stopped. */
  async onApplicationShutdown(): Promise<void> {
    await this.onClose?.();
  }

  async run({
    agentType,
    node,
    signal,
    deadline,
    feedback,
    onText,
  }: AgentRunRequest): Promise<AgentRunResult> {
    signal.throwIfAborted();
    const def = findAgent(agentType);
    const template = def && this.templates.get(def.name);
    if (!def || !template) throw new AgentRunError(`no prompt template for agent "${agentType}"`);
    if (!node.content.trim()) {
      throw new AgentRunError(
        `node ${node.nodeId} (${node.nodeType}) has no content for ${agentType} to work on`,
      );
    }
    const { system, prompt, lang } = buildPrompt(template, node, this.settings.contextTokens);
    const jsonSchema =
      template.output === 'questions' || template.output === 'score' || template.output === 'hint'
        ? (JSON.parse(outputJsonSchema(template.output, template.questions)) as Record<string, unknown>)
        : undefined;
    const usage: TokenUsage = { inputTokens: 0, outputTokens: 0 };
    let attempts = 0;
    let problem = '';
    // what one call streamed is void once another call starts: its first chunk restarts the node's text
    let streamed = false;
    let restart = false;
    const text =
      onText &&
      ((chunk: string): void => {
        if (!chunk) return;
        onText(chunk, restart || undefined);
        restart = false;
        streamed = true;
      });
    const nextCall = (): void => {
      restart ||= streamed;
      streamed = false;
    };
    // A malformed structured answer is asked for once more, then the node fails.
    for (let answer = 1; answer <= 2; answer++) {
      let out: { text: string; usage: TokenUsage };
      try {
        const r = await withRetries(
          (attempt) => {
            nextCall();
            return this.attempt(signal, {
              system,
              prompt,
              ...(jsonSchema && { jsonSchema }),
              ...(text && { onText: text }),
              headers: {
                'x-canvas-batch-node': node.nodeId,
                'x-canvas-batch-attempt': String(attempts + attempt),
              },
            });
          },
          { settings: this.settings.retry, signal, deadline, feedback, redact: this.redact },
        );
        attempts += r.attempts;
        out = r.value;
      } catch (err) {
        if (err instanceof AgentRunError) {
          throw new AgentRunError(err.message, err.errorType, {
            attempts: attempts + (err.details.attempts ?? 0),
            usage,
          });
        }
        throw err;
      }
      usage.inputTokens += out.usage.inputTokens;
      usage.outputTokens += out.usage.outputTokens;
      const parsed = parseAnswer(template.output, out.text, lang, template.questions);
      if (parsed.ok) return { ...parsed.result, usage, attempts };
      problem = parsed.problem;
    }
    throw new AgentRunError(
      `${agentType} answered twice without a valid ${template.output} output: ${this.redact(problem)}`,
      'AGENT_INVALID_OUTPUT',
      { attempts, usage },
    );
  }

  /**
   * One short free-text answer from the provider, through the same retry layer as the agents (used to route a node
   * the content patterns are unsure about). `deadline` bounds the retries.
   */
  async complete(args: {
    system: string;
    prompt: string;
    signal: AbortSignal;
    deadline: number;
    headers?: Record<string, string>;
  }): Promise<{ text: string; usage: TokenUsage; attempts: number }> {
    const r = await withRetries(
      () =>
        this.attempt(args.signal, { system: args.system, prompt: args.prompt, headers: args.headers ?? {} }),
      {
        settings: this.settings.retry,
        signal: args.signal,
        deadline: args.deadline,
        feedback: undefined,
        redact: this.redact,
      },
    );
    return { ...r.value, attempts: r.attempts };
  }

  /** One provider call, under its own time limit when one is configured (then retried like a 5xx). */
  private async attempt(
    signal: AbortSignal,
    args: Omit<Parameters<ModelCall>[0], 'signal'>,
  ): Promise<{ text: string; usage: TokenUsage }> {
    const limit = this.settings.retry.attemptTimeoutMs;
    if (limit === undefined) return this.call({ ...args, signal });
    // An own controller and timer, not `AbortSignal.any([signal, AbortSignal.timeout(limit)])`: Node 20 holds the
    // timeout signal of an `any()` only weakly, so a garbage collection during the call dropped it and the call was
    // never aborted (nodejs/node#57736); `any()` also leaves its listener on the node's signal until a collection.
    const attempt = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort(new AttemptTimeoutError(limit));
    }, limit);
    const follow = (): void => attempt.abort(signal.reason);
    if (signal.aborted) follow();
    else signal.addEventListener('abort', follow, { once: true });
    try {
      return await this.call({ ...args, signal: attempt.signal });
    } catch (err) {
      if (timedOut && !signal.aborted) throw new AttemptTimeoutError(limit);
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', follow);
    }
  }
}

/** The local model as a `ModelCall`: the schema constrains generation; usage is the model's own token count. */
export function localCall(model: Pick<LocalModel, 'generate'>): ModelCall {
  return async ({ system, prompt, signal, jsonSchema, onText }) => {
    const answer = await model.generate({
      system,
      prompt,
      signal,
      ...(jsonSchema && { jsonSchema }),
      ...(onText && { onText }),
    });
    return { text: answer.text, usage: answer.usage };
  };
}

/** The provider's language model, from the validated settings. `fetch` replaces the HTTP client (tests). */
export function createModel(s: LlmSettings, fetch?: typeof globalThis.fetch): LanguageModel {
  const http = fetch ? { fetch } : {};
  switch (s.provider) {
    case 'local':
      throw new Error('the local provider has no SDK model: build its runner with LlmAgentRunner.create');
    case 'anthropic':
      return createAnthropic({ apiKey: s.apiKey, ...(s.baseUrl ? { baseURL: s.baseUrl } : {}), ...http })(
        s.model,
      );
    case 'google':
      return createGoogleGenerativeAI({
        apiKey: s.apiKey,
        ...(s.baseUrl ? { baseURL: s.baseUrl } : {}),
        ...http,
      })(s.model);
    case 'openai-compatible':
      return createOpenAICompatible({
        name: 'openai-compatible',
        baseURL: s.baseUrl ?? 'https://api.openai.com/v1',
        apiKey: s.apiKey,
        includeUsage: true,
        ...http,
      })(s.model);
  }
}

/**
 * One SDK call, retries off, aborted through `signal`; streaming per settings, or when the node's text is wanted as
 * it arrives (`onText`). The text and usage returned are the SDK's own totals of the stream, not a concatenation here.
 */
export function sdkCall(model: LanguageModel, s: LlmSettings): ModelCall {
  return async ({ system, prompt, signal, headers, onText }) => {
    const common = {
      model,
      system,
      prompt,
      maxRetries: 0,
      abortSignal: signal,
      headers,
      maxOutputTokens: s.maxOutputTokens,
    };
    if (!s.stream && !onText) {
      const r = await generateText(common);
      return { text: r.text, usage: tokens(r.usage) };
    }
    let streamError: unknown;
    const r = streamText({
      ...common,
      onError: ({ error }) => {
        streamError ??= error;
      },
      ...(onText && {
        onChunk: ({ chunk }: { chunk: { type: string; text?: string } }) => {
          if (chunk.type === 'text-delta' && chunk.text) onText(chunk.text);
        },
      }),
    });
    try {
      const [text, usage] = await Promise.all([r.text, r.usage]);
      if (streamError !== undefined) throw streamError as Error;
      return { text, usage: tokens(usage) };
    } catch (err) {
      throw (streamError ?? err) as Error;
    }
  };
}

function tokens(u: { inputTokens: number | undefined; outputTokens: number | undefined }): TokenUsage {
  return { inputTokens: u.inputTokens ?? 0, outputTokens: u.outputTokens ?? 0 };
}

/** Replaces every occurrence of the key (and of its bearer header) in a message. */
export function redactor(key: string | undefined): (s: string) => string {
  if (!key || key.length < 4) return (s) => s;
  return (s) => s.split(key).join('[redacted]');
}
