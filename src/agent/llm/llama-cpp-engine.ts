import type * as LlamaCpp from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import type { LocalGpu } from '../../config';

/**
 * The thin glue between the local provider (`LocalModel`, which holds the logic and is unit-tested with a double of
 * this interface) and node-llama-cpp, an optional dependency loaded only when `AGENT_PROVIDER=local`.
 */
export interface LocalEngine {
  /** The model's own name (GGUF metadata), else the file name. */
  readonly modelName: string;
  /** Tokens one sequence holds (prompt and answer together). */
  readonly contextSize: number;
  /** Parallel sequences of the context. */
  readonly sequences: number;
  readonly threads: number;
  /** Tokens of `system` + `prompt` formatted with the model's chat template, as the model will read them. */
  promptTokens(system: string, prompt: string): number;
  /** One chat turn on sequence `sequence` (0-based, at most one call per sequence at a time), from an empty state. */
  prompt(sequence: number, args: EnginePrompt): Promise<EngineAnswer>;
  close(): Promise<void>;
}

export interface EnginePrompt {
  system: string;
  prompt: string;
  signal: AbortSignal;
  maxTokens: number;
  /** Constrain the answer to this JSON Schema (a grammar built from it). */
  jsonSchema?: Record<string, unknown>;
  /** The answer's text as it is generated (node-llama-cpp's text-chunk callback). */
  onText?: (chunk: string) => void;
}

export interface EngineAnswer {
  text: string;
  /** Why generation stopped: `eogToken` (the model finished), `maxTokens` (cut at the limit), … */
  stopReason: string;
  /** Tokens the model evaluated and generated for this call (its token meter). */
  inputTokens: number;
  outputTokens: number;
}

export interface EngineOptions {
  modelPath: string;
  threads: number;
  gpu: LocalGpu;
  sequences: number;
  /** The context size per sequence, given the model's training context size. */
  contextSize: (trainContextSize: number) => number;
}

/** Which step of opening the engine failed: the package, llama.cpp's backend, the model file, or the context. */
export type EngineOpenPhase = 'package' | 'backend' | 'model' | 'context';

export class EngineOpenError extends Error {
  constructor(
    readonly phase: EngineOpenPhase,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EngineOpenError';
  }
}

/** Sampling: near-greedy with a mild repeat penalty (greedy decoding made the small model loop on one phrase). */
export const SAMPLING = {
  temperature: 0.2,
  seed: 1,
  repeatPenalty: { penalty: 1.12, frequencyPenalty: 0.1, lastTokens: 64 },
} as const;

/**
 * The package, imported as an ES module: it uses top-level await, so Node's `require(esm)` cannot load it, and a
 * transpiler that turns `import()` into `require()` (ts-node, @swc-node/register, Jest) must not see the call.
 */
function importLlamaCpp(): Promise<typeof LlamaCpp> {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- a real import(), untouched by any transpiler
  const load = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<never>;
  return load('node-llama-cpp');
}

/**
 * Opens the model with node-llama-cpp: llama.cpp's prebuilt CPU (or GPU) backend, the model, one context. `load`
 * replaces the package (tests).
 */
export async function openLlamaCppEngine(
  o: EngineOptions,
  load: () => Promise<typeof LlamaCpp> = importLlamaCpp,
): Promise<LocalEngine> {
  let lib: typeof LlamaCpp;
  try {
    lib = await load();
  } catch (err) {
    throw new EngineOpenError('package', (err as Error).message, { cause: err });
  }
  let llama: Awaited<ReturnType<typeof lib.getLlama>>;
  try {
    // never build or download at run time: the prebuilt binaries of the npm packages, or a clear failure
    llama = await lib.getLlama({
      gpu: o.gpu,
      build: 'never',
      skipDownload: true,
      maxThreads: o.threads,
      logLevel: lib.LlamaLogLevel.error,
      logger: () => undefined,
      progressLogs: false,
    });
  } catch (err) {
    throw new EngineOpenError('backend', (err as Error).message, { cause: err });
  }
  let model: Awaited<ReturnType<typeof llama.loadModel>>;
  try {
    model = await llama.loadModel({ modelPath: o.modelPath });
  } catch (err) {
    await llama.dispose().catch(() => undefined);
    throw new EngineOpenError('model', (err as Error).message, { cause: err });
  }
  let context: Awaited<ReturnType<typeof model.createContext>>;
  try {
    context = await model.createContext({
      contextSize: o.contextSize(model.trainContextSize),
      sequences: o.sequences,
      threads: o.threads,
    });
  } catch (err) {
    await model.dispose().catch(() => undefined);
    await llama.dispose().catch(() => undefined);
    throw new EngineOpenError('context', (err as Error).message, { cause: err });
  }
  const sequences = Array.from({ length: o.sequences }, () => context.getSequence());
  const wrapper = lib.resolveChatWrapper(model);
  const grammars = new Map<string, ReturnType<typeof llama.createGrammarForJsonSchema>>();
  const grammarFor = (
    schema: Record<string, unknown>,
  ): ReturnType<typeof llama.createGrammarForJsonSchema> => {
    const key = JSON.stringify(schema);
    let g = grammars.get(key);
    if (!g) {
      g = llama.createGrammarForJsonSchema(schema as Parameters<typeof llama.createGrammarForJsonSchema>[0]);
      grammars.set(key, g);
    }
    return g;
  };
  const name = model.fileInfo.metadata.general?.name;
  return {
    modelName: typeof name === 'string' && name ? name : (o.modelPath.split('/').pop() ?? o.modelPath),
    contextSize: context.contextSize,
    sequences: o.sequences,
    threads: context.currentThreads,
    promptTokens(system, prompt) {
      const { contextText } = wrapper.generateContextState({
        chatHistory: [
          { type: 'system', text: system },
          { type: 'user', text: prompt },
          { type: 'model', response: [] },
        ],
      });
      return contextText.tokenize(model.tokenizer).length;
    },
    async prompt(index, args) {
      const sequence = sequences[index];
      await sequence.clearHistory();
      const before = {
        input: sequence.tokenMeter.usedInputTokens,
        output: sequence.tokenMeter.usedOutputTokens,
      };
      const session = new lib.LlamaChatSession({
        contextSequence: sequence,
        systemPrompt: args.system,
        chatWrapper: wrapper,
        autoDisposeSequence: false,
      });
      try {
        const grammar = args.jsonSchema ? await grammarFor(args.jsonSchema) : undefined;
        const r = await session.promptWithMeta(args.prompt, {
          ...SAMPLING,
          repeatPenalty: { ...SAMPLING.repeatPenalty },
          maxTokens: args.maxTokens,
          signal: args.signal,
          ...(grammar && { grammar }),
          ...(args.onText && { onTextChunk: args.onText }),
        });
        return {
          text: r.responseText,
          stopReason: r.stopReason,
          inputTokens: sequence.tokenMeter.usedInputTokens - before.input,
          outputTokens: sequence.tokenMeter.usedOutputTokens - before.output,
        };
      } finally {
        session.dispose({ disposeSequence: false });
      }
    },
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}
