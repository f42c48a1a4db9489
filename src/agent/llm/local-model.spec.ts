import { StartupError } from '../../config';
import { createAgentRunner } from '../agent.module';
import type { LlmSettings, LocalModelSettings } from '../../config';
import { AgentRunError } from '../agent-runner';
import { EngineOpenError, type EngineOptions, type EnginePrompt, type LocalEngine } from './llama-cpp-engine';
import {
  defaultContextSize,
  grammarSchema,
  loadLocalModel,
  LocalModel,
  MIN_ANSWER_TOKENS,
} from './local-model';
import { loadPromptTemplates } from './prompt-templates';

/** A double of the llama.cpp engine: answers when told to, records every call, honours the abort signal. */
class FakeEngine implements LocalEngine {
  modelName = 'Fake 1M';
  threads = 2;
  closed = 0;
  calls: { sequence: number; args: EnginePrompt }[] = [];
  pending: { resolve: (text: string) => void; reject: (err: unknown) => void }[] = [];
  constructor(
    readonly sequences = 2,
    readonly contextSize = 1000,
    public tokensPerChar = 0.25,
  ) {}
  promptTokens(system: string, prompt: string): number {
    return Math.ceil((system.length + prompt.length) * this.tokensPerChar) + 10;
  }
  prompt(sequence: number, args: EnginePrompt) {
    this.calls.push({ sequence, args });
    return new Promise<{ text: string; stopReason: string; inputTokens: number; outputTokens: number }>(
      (resolve, reject) => {
        const onAbort = (): void => reject(args.signal.reason as Error);
        args.signal.addEventListener('abort', onAbort, { once: true });
        this.pending.push({
          resolve: (text) => resolve({ text, stopReason: 'eogToken', inputTokens: 11, outputTokens: 7 }),
          reject,
        });
      },
    );
  }
  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('LocalModel', () => {
  it('runs a call on a free sequence with the room the context leaves, and reports the engine token counts', async () => {
    const engine = new FakeEngine(2, 1000);
    const model = new LocalModel(engine, 500);
    expect(model.capacity).toBe(2);
    expect(model.description).toBe('Fake 1M, context 1000 tokens × 2 sequences, 2 threads');
    const p = model.generate({
      system: 's'.repeat(400),
      prompt: 'p'.repeat(400),
      signal: new AbortController().signal,
    });
    await flush();
    expect(model.inUse).toBe(1);
    expect(engine.calls[0].sequence).toBe(0);
    expect(engine.calls[0].args.maxTokens).toBe(500);
    expect(engine.calls[0].args.jsonSchema).toBeUndefined();
    expect(engine.calls[0].args).not.toHaveProperty('onText');
    engine.pending[0].resolve('answer');
    await expect(p).resolves.toEqual({
      text: 'answer',
      stopReason: 'eogToken',
      usage: { inputTokens: 11, outputTokens: 7 },
    });
    expect(model.inUse).toBe(0);
  });

  it('gives the answer only what the context has left, and constrains structured answers with the grammar schema', async () => {
    const engine = new FakeEngine(1, 1000);
    const model = new LocalModel(engine, 2048);
    const schema = { type: 'object', properties: { level: { anyOf: [{ type: 'number', const: 1 }] } } };
    const p = model.generate({
      system: 'x'.repeat(3000),
      prompt: '',
      signal: new AbortController().signal,
      jsonSchema: schema,
    });
    await flush();
    expect(engine.calls[0].args.maxTokens).toBe(1000 - 760);
    expect(engine.calls[0].args.jsonSchema).toEqual({
      type: 'object',
      properties: { level: { oneOf: [{ const: 1 }] } },
    });
    engine.pending[0].resolve('{}');
    await p;
  });

  it('hands the engine the text listener when streaming', async () => {
    const engine = new FakeEngine(1, 1000);
    const onText = jest.fn();
    const p = new LocalModel(engine, 100).generate({
      system: 's',
      prompt: 'p',
      signal: new AbortController().signal,
      onText,
    });
    await flush();
    expect(engine.calls[0].args.onText).toBe(onText);
    engine.pending[0].resolve('x');
    await p;
  });

  it('fails a prompt the context cannot hold with AGENT_BAD_REQUEST, without taking a sequence', async () => {
    const engine = new FakeEngine(1, 300);
    const model = new LocalModel(engine, 100);
    const err = await model
      .generate({ system: 'x'.repeat(1000), prompt: 'y', signal: new AbortController().signal })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentRunError);
    expect((err as AgentRunError).errorType).toBe('AGENT_BAD_REQUEST');
    expect((err as Error).message).toContain('raise AGENT_LOCAL_CONTEXT_SIZE or lower AGENT_CONTEXT_TOKENS');
    expect((err as Error).message).toContain(`at least ${MIN_ANSWER_TOKENS}`);
    expect(engine.calls).toHaveLength(0);
    expect(model.inUse).toBe(0);
  });

  it('never runs more calls than sequences: the next waits, first come first served, and gets the freed sequence', async () => {
    const engine = new FakeEngine(1);
    const model = new LocalModel(engine, 100);
    const signal = new AbortController().signal;
    const a = model.generate({ system: 'a', prompt: 'a', signal });
    const b = model.generate({ system: 'b', prompt: 'b', signal });
    const c = model.generate({ system: 'c', prompt: 'c', signal });
    await flush();
    expect(engine.calls.map((x) => x.args.system)).toEqual(['a']);
    engine.pending[0].resolve('A');
    await a;
    await flush();
    expect(engine.calls.map((x) => x.args.system)).toEqual(['a', 'b']);
    expect(model.inUse).toBe(1);
    engine.pending[1].resolve('B');
    await b;
    await flush();
    engine.pending[2].resolve('C');
    await expect(c).resolves.toMatchObject({ text: 'C' });
    expect(model.inUse).toBe(0);
  });

  it('an abort stops the generation and frees the sequence; an abort while waiting leaves the queue', async () => {
    const engine = new FakeEngine(1);
    const model = new LocalModel(engine, 100);
    const running = new AbortController();
    const waiting = new AbortController();
    const a = model.generate({ system: 'a', prompt: 'a', signal: running.signal });
    const b = model.generate({ system: 'b', prompt: 'b', signal: waiting.signal });
    await flush();
    waiting.abort(new Error('cancelled while waiting'));
    await expect(b).rejects.toThrow('cancelled while waiting');
    running.abort(new Error('cancelled while generating'));
    await expect(a).rejects.toThrow('cancelled while generating');
    expect(model.inUse).toBe(0);
    // the sequence is free again: the next call runs at once
    const c = model.generate({ system: 'c', prompt: 'c', signal: new AbortController().signal });
    await flush();
    expect(engine.calls.map((x) => x.args.system)).toEqual(['a', 'c']);
    engine.pending[1].resolve('C');
    await expect(c).resolves.toMatchObject({ text: 'C' });
    const aborted = new AbortController();
    aborted.abort(new Error('already'));
    await expect(model.generate({ system: 'd', prompt: 'd', signal: aborted.signal })).rejects.toThrow(
      'already',
    );
  });

  it('an abort that comes as the answer completes still ends the call as aborted', async () => {
    const engine = new FakeEngine(1);
    const model = new LocalModel(engine, 100);
    const ctl = new AbortController();
    const p = model.generate({ system: 'a', prompt: 'a', signal: ctl.signal });
    await flush();
    engine.pending[0].resolve('late');
    ctl.abort(new Error('too late'));
    await expect(p).rejects.toThrow('too late');
    expect(model.inUse).toBe(0);
  });

  it('close fails waiting calls, closes the engine once and refuses new calls', async () => {
    const engine = new FakeEngine(1);
    const model = new LocalModel(engine, 100);
    const signal = new AbortController().signal;
    const a = model.generate({ system: 'a', prompt: 'a', signal });
    const b = model.generate({ system: 'b', prompt: 'b', signal });
    await flush();
    await model.close();
    await model.close();
    expect(engine.closed).toBe(1);
    await expect(b).rejects.toThrow('the local model was closed');
    engine.pending[0].resolve('A');
    await a;
    await expect(model.generate({ system: 'c', prompt: 'c', signal })).rejects.toThrow('closed');
  });

  it('says "1 sequence, 1 thread" in the singular', () => {
    const engine = new FakeEngine(1);
    engine.threads = 1;
    expect(new LocalModel(engine, 10).description).toBe(
      'Fake 1M, context 1000 tokens × 1 sequence, 1 thread',
    );
  });
});

describe('grammarSchema', () => {
  it('turns anyOf into oneOf, small integer ranges into enums, and bounds free strings', () => {
    expect(
      grammarSchema({
        type: 'object',
        properties: {
          score: { type: 'integer', minimum: 0, maximum: 3 },
          big: { type: 'integer', minimum: 0, maximum: 1000 },
          open: { type: 'integer', minimum: 0 },
          text: { type: 'string', minLength: 1 },
          short: { type: 'string', maxLength: 5 },
          level: {
            anyOf: [
              { type: 'number', const: 1 },
              { type: 'number', const: 2 },
            ],
          },
          kind: { type: 'string', enum: ['a', 'b'] },
          list: { type: 'array', items: { type: 'string' }, minItems: 1 },
        },
        required: ['score'],
      }),
    ).toEqual({
      type: 'object',
      properties: {
        score: { enum: [0, 1, 2, 3] },
        big: { type: 'integer', minimum: 0, maximum: 1000 },
        open: { type: 'integer', minimum: 0 },
        text: { type: 'string', minLength: 1, maxLength: 600 },
        short: { type: 'string', maxLength: 5 },
        level: { oneOf: [{ const: 1 }, { const: 2 }] },
        kind: { enum: ['a', 'b'] },
        list: { type: 'array', items: { type: 'string', maxLength: 600 }, minItems: 1 },
      },
      required: ['score'],
    });
  });
});

describe('defaultContextSize', () => {
  it('is prompt budget + answer + instructions, rounded up to 256, at most the training context', () => {
    const size = defaultContextSize({ contextTokens: 4000, maxOutputTokens: 2048 });
    expect(size(8192)).toBe(7168);
    expect(size(2048)).toBe(2048);
    expect(size(0)).toBe(7168);
  });
});

describe('loadLocalModel', () => {
  const templates = loadPromptTemplates();
  const local: LocalModelSettings = {
    modelPath: '/models/m.gguf',
    threads: 2,
    contextSize: undefined,
    sequences: 2,
    gpu: false,
  };
  const settings: LlmSettings & { local: LocalModelSettings } = {
    provider: 'local',
    model: '/models/m.gguf',
    baseUrl: undefined,
    apiKey: undefined,
    stream: false,
    retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    contextTokens: 4000,
    maxOutputTokens: 2048,
    prices: undefined,
    local,
  };

  it('opens the engine with the settings (default context from the budget) and returns the model', async () => {
    let seen: EngineOptions | undefined;
    const model = await loadLocalModel(settings, templates, (o) => {
      seen = o;
      return Promise.resolve(new FakeEngine(2, 7168));
    });
    expect(model.capacity).toBe(2);
    expect(seen).toMatchObject({ modelPath: '/models/m.gguf', threads: 2, gpu: false, sequences: 2 });
    expect(seen!.contextSize(8192)).toBe(7168);
    const fixed = await loadLocalModel(
      { ...settings, local: { ...local, contextSize: 3000 } },
      templates,
      (o) => {
        seen = o;
        return Promise.resolve(new FakeEngine(2, 3000));
      },
    );
    expect(seen!.contextSize(8192)).toBe(3000);
    expect(fixed.capacity).toBe(2);
  });

  it('refuses to start with a context too small for the longest instructions, naming a size that fits', async () => {
    const engine = new FakeEngine(2, 400);
    const err = await loadLocalModel(settings, templates, () => Promise.resolve(engine)).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(
      /^AGENT_LOCAL_CONTEXT_SIZE 400 is too small: the instructions of [\w-]+ alone take \d+ tokens.*set it to \d+ or more/,
    );
    expect(engine.closed).toBe(1);
  });

  it.each<[EngineOpenError | Error, RegExp]>([
    [
      new EngineOpenError('package', "Cannot find package 'node-llama-cpp'"),
      /needs the optional package node-llama-cpp.*npm install node-llama-cpp@3\.21\.1/,
    ],
    [
      new EngineOpenError('backend', 'no binary'),
      /llama\.cpp cannot run on this machine with AGENT_LOCAL_GPU=false \(no binary\)/,
    ],
    [
      new EngineOpenError('model', 'failed to load\nmodel'),
      /^AGENT_MODEL \/models\/m\.gguf could not be loaded as a model \(failed to load model\)/,
    ],
    [
      new EngineOpenError('context', 'out of memory'),
      /its context \(default size tokens × AGENT_LOCAL_SEQUENCES 2\) could not be created \(out of memory\)/,
    ],
    [new Error('something else'), /could not be loaded as a model \(something else\)/],
  ])('a failure to open becomes a start-up error naming the setting: %s', async (failure, message) => {
    const err = await loadLocalModel(settings, templates, () => Promise.reject(failure)).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).cause).toBe(failure);
  });

  it('a non-Error failure is told as text', async () => {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    const err = await loadLocalModel(settings, templates, () => Promise.reject('plain')).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toContain('(plain)');
  });
});

describe('createAgentRunner with the local provider', () => {
  it('loads the model before the runner exists: a model that cannot be opened rejects with a StartupError', async () => {
    const pending = createAgentRunner({
      llm: {
        provider: 'local',
        model: '/nonexistent/model.gguf',
        baseUrl: undefined,
        apiKey: undefined,
        stream: false,
        retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
        contextTokens: 1000,
        maxOutputTokens: 100,
        prices: undefined,
        local: {
          modelPath: '/nonexistent/model.gguf',
          threads: 1,
          contextSize: undefined,
          sequences: 1,
          gpu: false,
        },
      },
    });
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toBeInstanceOf(StartupError);
  });
});
