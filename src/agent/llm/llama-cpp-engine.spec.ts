import { EngineOpenError, type EngineOptions, openLlamaCppEngine, SAMPLING } from './llama-cpp-engine';

/** A double of the parts of node-llama-cpp the glue uses, recording what it was asked. */
function fakeLib(fail: Partial<Record<'getLlama' | 'loadModel' | 'createContext', Error>> = {}) {
  const log: string[] = [];
  const meter = { usedInputTokens: 0, usedOutputTokens: 0 };
  const sequence = {
    tokenMeter: meter,
    clearHistory: () => {
      log.push('clearHistory');
      return Promise.resolve();
    },
  };
  const context = {
    contextSize: 2048,
    currentThreads: 2,
    getSequence: () => sequence,
    dispose: () => {
      log.push('context.dispose');
      return Promise.resolve();
    },
  };
  const model = {
    trainContextSize: 8192,
    tokenizer: 'tok',
    fileInfo: { metadata: { general: { name: 'Tiny Model' } } },
    createContext: (o: Record<string, unknown>) => {
      log.push(`createContext ${JSON.stringify(o)}`);
      return fail.createContext ? Promise.reject(fail.createContext) : Promise.resolve(context);
    },
    dispose: () => {
      log.push('model.dispose');
      return Promise.resolve();
    },
  };
  const llama = {
    loadModel: (o: { modelPath: string }) => {
      log.push(`loadModel ${o.modelPath}`);
      return fail.loadModel ? Promise.reject(fail.loadModel) : Promise.resolve(model);
    },
    createGrammarForJsonSchema: (schema: unknown) => {
      log.push(`grammar ${JSON.stringify(schema)}`);
      return Promise.resolve({ grammar: schema });
    },
    dispose: () => {
      log.push('llama.dispose');
      return Promise.resolve();
    },
  };
  class LlamaChatSession {
    constructor(readonly options: Record<string, unknown>) {
      log.push(
        `session system=${String(options.systemPrompt)} autoDispose=${String(options.autoDisposeSequence)}`,
      );
    }
    promptWithMeta(prompt: string, options: Record<string, unknown>) {
      log.push(`prompt ${prompt} max=${String(options.maxTokens)} grammar=${options.grammar ? 'yes' : 'no'}`);
      expect(options.temperature).toBe(SAMPLING.temperature);
      if (prompt === 'boom') return Promise.reject(new Error('generation failed'));
      (options.onTextChunk as ((t: string) => void) | undefined)?.(`answer to ${prompt}`);
      meter.usedInputTokens += 30;
      meter.usedOutputTokens += 12;
      return Promise.resolve({ responseText: `answer to ${prompt}`, stopReason: 'eogToken' });
    }
    dispose(o: { disposeSequence: boolean }) {
      log.push(`session.dispose disposeSequence=${String(o.disposeSequence)}`);
    }
  }
  const lib = {
    LlamaLogLevel: { error: 'error' },
    getLlama: (o: Record<string, unknown>) => {
      log.push(`getLlama gpu=${String(o.gpu)} build=${String(o.build)} maxThreads=${String(o.maxThreads)}`);
      (o.logger as () => void)();
      return fail.getLlama ? Promise.reject(fail.getLlama) : Promise.resolve(llama);
    },
    resolveChatWrapper: () => ({
      generateContextState: ({ chatHistory }: { chatHistory: { text?: string }[] }) => ({
        contextText: {
          tokenize: (tokenizer: string) => {
            expect(tokenizer).toBe('tok');
            return Array.from({
              length: (chatHistory[0].text ?? '').length + (chatHistory[1].text ?? '').length,
            });
          },
        },
      }),
    }),
    LlamaChatSession,
  };
  return { lib: lib as never, log };
}

const options: EngineOptions = {
  modelPath: '/models/tiny.gguf',
  threads: 2,
  gpu: false,
  sequences: 2,
  contextSize: (train) => Math.min(train, 2048),
};

describe('openLlamaCppEngine (node-llama-cpp replaced by a double)', () => {
  it('opens backend, model and context with the settings, never building or downloading', async () => {
    const { lib, log } = fakeLib();
    const engine = await openLlamaCppEngine(options, () => Promise.resolve(lib));
    expect(engine).toMatchObject({ modelName: 'Tiny Model', contextSize: 2048, sequences: 2, threads: 2 });
    expect(log.slice(0, 3)).toEqual([
      'getLlama gpu=false build=never maxThreads=2',
      'loadModel /models/tiny.gguf',
      'createContext {"contextSize":2048,"sequences":2,"threads":2}',
    ]);
    expect(engine.promptTokens('abc', 'de')).toBe(5);
  });

  it('answers from an empty sequence with the token meter’s counts; constrained answers use a cached grammar', async () => {
    const { lib, log } = fakeLib();
    const engine = await openLlamaCppEngine(options, () => Promise.resolve(lib));
    const signal = new AbortController().signal;
    await expect(engine.prompt(0, { system: 'S', prompt: 'P', signal, maxTokens: 50 })).resolves.toEqual({
      text: 'answer to P',
      stopReason: 'eogToken',
      inputTokens: 30,
      outputTokens: 12,
    });
    const schema = { type: 'object' };
    await engine.prompt(1, { system: 'S', prompt: 'J', signal, maxTokens: 40, jsonSchema: schema });
    await engine.prompt(1, { system: 'S', prompt: 'K', signal, maxTokens: 40, jsonSchema: schema });
    expect(log.filter((l) => l.startsWith('grammar'))).toEqual(['grammar {"type":"object"}']);
    // streaming: the text chunks reach the caller as node-llama-cpp generates them
    const chunks: string[] = [];
    await engine.prompt(0, { system: 'S', prompt: 'T', signal, maxTokens: 5, onText: (c) => chunks.push(c) });
    expect(chunks).toEqual(['answer to T']);
    expect(log).toContain('prompt P max=50 grammar=no');
    expect(log).toContain('prompt J max=40 grammar=yes');
    expect(log).toContain('session system=S autoDispose=false');
    expect(log.filter((l) => l === 'clearHistory')).toHaveLength(4);
    // the session is disposed after each answer, the sequence kept
    expect(log.filter((l) => l === 'session.dispose disposeSequence=false')).toHaveLength(4);
    await expect(engine.prompt(0, { system: 'S', prompt: 'boom', signal, maxTokens: 5 })).rejects.toThrow(
      'generation failed',
    );
    expect(log.at(-1)).toBe('session.dispose disposeSequence=false');
    await engine.close();
    expect(log.slice(-3)).toEqual(['context.dispose', 'model.dispose', 'llama.dispose']);
  });

  it('names the model after its file when the metadata has no name', async () => {
    const { lib } = fakeLib();
    (lib as { resolveChatWrapper: unknown }).resolveChatWrapper = () => ({});
    const withoutName = {
      ...(lib as object),
      getLlama: async (o: Record<string, unknown>) => {
        const llama = await (lib as { getLlama: (o: unknown) => Promise<Record<string, unknown>> }).getLlama(
          o,
        );
        return {
          ...llama,
          loadModel: async (m: unknown) => ({
            ...(await (llama.loadModel as (m: unknown) => Promise<Record<string, unknown>>)(m)),
            fileInfo: { metadata: {} },
          }),
        };
      },
    };
    const engine = await openLlamaCppEngine(options, () => Promise.resolve(withoutName as never));
    expect(engine.modelName).toBe('tiny.gguf');
  });

  it.each([
    ['package', undefined],
    ['backend', 'getLlama'],
    ['model', 'loadModel'],
    ['context', 'createContext'],
  ] as const)(
    'a failure to open is an EngineOpenError of phase %s, and what was opened is freed',
    async (phase, step) => {
      const failure = new Error(`${phase} failed`);
      const { lib, log } = fakeLib(step ? { [step]: failure } : {});
      const load = step ? () => Promise.resolve(lib) : () => Promise.reject(failure);
      const err = await openLlamaCppEngine(options, load).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineOpenError);
      expect(err).toMatchObject({ phase, message: `${phase} failed`, cause: failure });
      if (phase === 'model') expect(log.at(-1)).toBe('llama.dispose');
      if (phase === 'context') expect(log.slice(-2)).toEqual(['model.dispose', 'llama.dispose']);
    },
  );
});

describe('openLlamaCppEngine with the real package loader', () => {
  it('fails with an EngineOpenError (the package unavailable to Jest, or the missing file refused), never a crash', async () => {
    const err = await openLlamaCppEngine({ ...options, modelPath: '/nonexistent/model.gguf' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineOpenError);
    expect(['package', 'model']).toContain((err as EngineOpenError).phase);
  });
});
