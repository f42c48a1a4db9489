import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AgentRunError, type AgentRunRequest } from '../agent-runner';
import { createModel, LlmAgentRunner, type ModelCall, redactor } from './llm-agent-runner';
import type { LlmSettings } from '../../config';

const settings = (extra: Partial<LlmSettings> = {}): LlmSettings => ({
  provider: 'anthropic',
  model: 'm',
  baseUrl: 'http://127.0.0.1:1/v1',
  apiKey: 'sk-unit-SECRET',
  stream: false,
  retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
  contextTokens: 1000,
  maxOutputTokens: 100,
  prices: undefined,
  ...extra,
});

const request = (agentType: string, content = 'The cell is the unit of life.'): AgentRunRequest => ({
  agentType,
  node: { canvasPath: 'a.canvas', nodeId: 'n1', nodeType: 'text', content },
  signal: new AbortController().signal,
});

/** A scripted model: each call takes the next answer (a text, or an error to throw). */
function scripted(answers: Array<string | Error>): ModelCall & { calls: Parameters<ModelCall>[0][] } {
  const calls: Parameters<ModelCall>[0][] = [];
  const fn = (args: Parameters<ModelCall>[0]) => {
    calls.push(args);
    const next = answers.shift() ?? 'default answer';
    return next instanceof Error
      ? Promise.reject(next)
      : Promise.resolve({ text: next, usage: { inputTokens: 10, outputTokens: next.length } });
  };
  return Object.assign(fn, { calls });
}

describe('LlmAgentRunner (model call replaced, real templates, schemas and retry layer)', () => {
  it('returns a markdown agent’s answer with usage and attempts; headers name node and attempt', async () => {
    const call = scripted(['Explanation body.']);
    const runner = new LlmAgentRunner(settings(), { call });
    await expect(runner.run(request('oral-explanation'))).resolves.toEqual({
      markdown: 'Explanation body.\n',
      usage: { inputTokens: 10, outputTokens: 17 },
      attempts: 1,
    });
    expect(call.calls[0].headers).toEqual({ 'x-canvas-batch-node': 'n1', 'x-canvas-batch-attempt': '1' });
    expect(call.calls[0].system).toContain('OUTPUT CONTRACT: markdown');
    expect(runner.description).toBe('anthropic/m at http://127.0.0.1:1/v1');
    expect(new LlmAgentRunner(settings({ baseUrl: undefined }), { call }).description).toBe('anthropic/m');
  });

  it('resolves aliases; asks once more after a malformed structured answer, summing both answers’ tokens', async () => {
    const call = scripted([
      'not json',
      '{"breakdown":{"accuracy":25,"imagery":25,"completeness":25,"originality":25},"feedback":"Great."}',
    ]);
    const r = await new LlmAgentRunner(settings(), { call }).run(request('scoring'));
    expect(r.structured).toMatchObject({ kind: 'score', score: { totalScore: 100, pass: true } });
    expect(r.attempts).toBe(2);
    expect(r.usage).toEqual({ inputTokens: 20, outputTokens: 8 + 97 });
    expect(call.calls.map((c) => c.headers['x-canvas-batch-attempt'])).toEqual(['1', '2']);
  });

  it('fails with AGENT_INVALID_OUTPUT after two malformed answers, with attempts and usage', async () => {
    const err = (await new LlmAgentRunner(settings(), { call: scripted(['{}', '{"text": 1}']) })
      .run(request('hint-generation'))
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as AgentRunError;
    expect(err).toBeInstanceOf(AgentRunError);
    expect(err.errorType).toBe('AGENT_INVALID_OUTPUT');
    expect(err.details).toEqual({ attempts: 2, usage: { inputTokens: 20, outputTokens: 13 } });
    expect(err.message).toMatch(/hint-generation answered twice without a valid hint output/);
  });

  it('counts retried provider calls across answers and keeps the final error type', async () => {
    const e503 = Object.assign(new Error('overloaded SECRET'), { statusCode: 503 });
    const e401 = Object.assign(new Error('bad key sk-unit-SECRET'), { statusCode: 401 });
    const call = scripted([e503, 'not json', e401]);
    const err = (await new LlmAgentRunner(settings(), { call }).run(request('basic-decomposition')).then(
      () => undefined,
      (e: unknown) => e,
    )) as AgentRunError;
    expect(err.errorType).toBe('AGENT_AUTH_FAILED');
    expect(err.details.attempts).toBe(3);
    expect(err.message).not.toContain('sk-unit-SECRET');
    expect(call.calls.map((c) => c.headers['x-canvas-batch-attempt'])).toEqual(['1', '2', '3']);
  });

  it('refuses an unknown agent, an empty node and an aborted signal before any call', async () => {
    const call = scripted([]);
    const runner = new LlmAgentRunner(settings(), { call });
    await expect(runner.run(request('nope'))).rejects.toThrow('no prompt template for agent "nope"');
    await expect(runner.run(request('oral-explanation', '  '))).rejects.toThrow(/has no content/);
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    await expect(runner.run({ ...request('oral-explanation'), signal: controller.signal })).rejects.toThrow(
      'cancelled',
    );
    expect(call.calls).toHaveLength(0);
  });

  it('passes non-agent errors (an abort reason) through untouched', async () => {
    const controller = new AbortController();
    const reason = new Error('node timeout');
    const call: ModelCall = () => {
      controller.abort(reason);
      return Promise.reject(new Error('aborted'));
    };
    await expect(
      new LlmAgentRunner(settings(), { call }).run({
        ...request('oral-explanation'),
        signal: controller.signal,
      }),
    ).rejects.toBe(reason);
  });
});

type Attempt = (signal: AbortSignal, args: Omit<Parameters<ModelCall>[0], 'signal'>) => Promise<unknown>;

describe('LlmAgentRunner with a time limit per provider call', () => {
  const timed = settings({ retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, attemptTimeoutMs: 100 } });

  it('aborts a call past its limit and retries it; gives up with AGENT_TIMEOUT', async () => {
    const signals: AbortSignal[] = [];
    const hang: ModelCall = ({ signal }) => {
      signals.push(signal);
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    };
    const err = (await new LlmAgentRunner(timed, { call: hang }).run(request('oral-explanation')).then(
      () => undefined,
      (e: unknown) => e,
    )) as AgentRunError;
    expect(err.errorType).toBe('AGENT_TIMEOUT');
    expect(err.details.attempts).toBe(2);
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it('still aborts a hung call when garbage collections run while it waits (nodejs/node#57736)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const node = new AbortController();
    const hang: ModelCall = ({ signal }) =>
      new Promise((_, reject) => {
        signal.addEventListener('abort', () => reject(new Error('aborted')));
        // collections before the 100-ms limit: a weakly held timeout signal would be gone, the call hung forever
        for (const ms of [10, 30, 60]) setTimeout(gc, ms);
      });
    // far beyond the two 100-ms attempts: only a call that would never end gets here (a loaded machine's GCs are slow)
    const guard = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref());
    const outcome = await Promise.race([
      new LlmAgentRunner(timed, { call: hang })
        .run({ ...request('oral-explanation'), signal: node.signal })
        .catch((e: AgentRunError) => e.errorType),
      guard,
    ]);
    expect(outcome).toBe('AGENT_TIMEOUT');
    expect(getEventListeners(node.signal, 'abort')).toHaveLength(0); // each attempt took its listener back
  }, 60_000);

  it('a call started on a node signal that is already aborted gets an aborted signal', async () => {
    // the retry layer checks the node's signal before each attempt; the attempt itself must not rely on that
    const node = new AbortController();
    const reason = new Error('cancelled before the call');
    node.abort(reason);
    const seen: unknown[] = [];
    const call: ModelCall = ({ signal }) => {
      seen.push(signal.aborted && signal.reason);
      return Promise.reject(new Error('aborted'));
    };
    const runner = new LlmAgentRunner(timed, { call }) as unknown as { attempt: Attempt };
    await expect(runner.attempt(node.signal, { system: '', prompt: '', headers: {} })).rejects.toThrow(
      'aborted',
    );
    expect(seen).toEqual([reason]);
  });

  it('a call within its limit passes; other failures and the node’s own abort pass through', async () => {
    const runner = new LlmAgentRunner(timed, { call: scripted(['fine']) });
    await expect(runner.run(request('oral-explanation'))).resolves.toMatchObject({ attempts: 1 });
    const e400 = Object.assign(new Error('bad'), { statusCode: 400 });
    await expect(
      new LlmAgentRunner(timed, { call: scripted([e400]) }).run(request('oral-explanation')),
    ).rejects.toMatchObject({ errorType: 'AGENT_BAD_REQUEST' });
    const controller = new AbortController();
    const reason = new Error('cancelled');
    const call: ModelCall = () => {
      controller.abort(reason);
      return Promise.reject(new Error('aborted'));
    };
    await expect(
      new LlmAgentRunner(timed, { call }).run({ ...request('oral-explanation'), signal: controller.signal }),
    ).rejects.toBe(reason);
  });
});

describe('createModel and redactor', () => {
  it.each(['anthropic', 'openai-compatible', 'google'] as const)('builds a %s model', (provider) => {
    for (const baseUrl of ['http://127.0.0.1:9/v1', undefined]) {
      const model = createModel(settings({ provider, baseUrl }));
      expect(model).toMatchObject({ modelId: 'm' });
    }
  });

  it('redacts the key and leaves text alone without one', () => {
    expect(redactor('sk-abc123')('key sk-abc123 and sk-abc123')).toBe('key [redacted] and [redacted]');
    expect(redactor(undefined)('sk-abc123')).toBe('sk-abc123');
    expect(redactor('abc')('abc')).toBe('abc');
  });
});

describe('LlmAgentRunner with the local provider (model loader replaced)', () => {
  const localSettings = settings({
    provider: 'local',
    model: '/m.gguf',
    baseUrl: undefined,
    apiKey: undefined,
    local: { modelPath: '/m.gguf', threads: 2, contextSize: undefined, sequences: 3, gpu: false },
  });

  /** A loaded model double: answers structured agents with JSON, markdown agents with text. */
  function fakeModel(answer: (args: { jsonSchema?: Record<string, unknown> }) => string | Error) {
    const calls: { system: string; prompt: string; jsonSchema?: Record<string, unknown> }[] = [];
    let closed = 0;
    const model = {
      capacity: 3,
      description: 'Fake, context 100 tokens × 3 sequences, 2 threads',
      generate: (args: {
        system: string;
        prompt: string;
        signal: AbortSignal;
        jsonSchema?: Record<string, unknown>;
      }) => {
        calls.push(args);
        const a = answer(args);
        return a instanceof Error
          ? Promise.reject(a)
          : Promise.resolve({ text: a, stopReason: 'eogToken', usage: { inputTokens: 21, outputTokens: 5 } });
      },
      close: () => {
        closed++;
        return Promise.resolve();
      },
    };
    return { model, calls, closed: () => closed };
  }

  it('loads the model once, declares its capacity and frees it at shutdown', async () => {
    const fake = fakeModel(() => 'Spoken explanation.');
    let loads = 0;
    const runner = await LlmAgentRunner.create(localSettings, {
      load: (s) => {
        loads++;
        expect(s.local.sequences).toBe(3);
        return Promise.resolve(fake.model as never);
      },
    });
    expect(loads).toBe(1);
    expect(runner.capacity).toBe(3);
    await expect(runner.run(request('oral-explanation'))).resolves.toEqual({
      markdown: 'Spoken explanation.\n',
      usage: { inputTokens: 21, outputTokens: 5 },
      attempts: 1,
    });
    // markdown agents are not constrained
    expect(fake.calls[0].jsonSchema).toBeUndefined();
    await runner.onApplicationShutdown();
    expect(fake.closed()).toBe(1);
  });

  it('constrains structured agents with their JSON Schema and still validates the answer', async () => {
    const fake = fakeModel(({ jsonSchema }) =>
      jsonSchema ? '{"text":"Think about what the ribosome reads.","level":1}' : 'x',
    );
    const runner = await LlmAgentRunner.create(localSettings, {
      load: () => Promise.resolve(fake.model as never),
    });
    const result = await runner.run(request('hint-generation'));
    expect(result.structured).toEqual({
      kind: 'hint',
      hint: { text: 'Think about what the ribosome reads.', level: 1 },
    });
    expect(fake.calls[0].jsonSchema).toMatchObject({ type: 'object', required: ['text', 'level'] });
  });

  it('a prompt the context cannot hold fails the node at once (AGENT_BAD_REQUEST, one attempt)', async () => {
    const fake = fakeModel(() => new AgentRunError('the prompt takes 900 tokens', 'AGENT_BAD_REQUEST'));
    const runner = await LlmAgentRunner.create(localSettings, {
      load: () => Promise.resolve(fake.model as never),
    });
    const err = await runner.run(request('oral-explanation')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentRunError);
    expect((err as AgentRunError).errorType).toBe('AGENT_BAD_REQUEST');
    expect((err as AgentRunError).details.attempts).toBe(1);
    expect(fake.calls).toHaveLength(1);
  });

  it('an SDK provider gets a runner without a capacity of its own; createModel refuses the local provider', async () => {
    const runner = await LlmAgentRunner.create(settings());
    expect(runner.capacity).toBeUndefined();
    await runner.onApplicationShutdown();
    expect(() => createModel(localSettings)).toThrow('LlmAgentRunner.create');
  });
});
