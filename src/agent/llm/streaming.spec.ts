import type { LlmSettings } from '../../config';
import type { AgentRunRequest } from '../agent-runner';
import { createModel, LlmAgentRunner, localCall, type ModelCall, sdkCall } from './llm-agent-runner';

const settings = (extra: Partial<LlmSettings> = {}): LlmSettings => ({
  provider: 'anthropic',
  model: 'm',
  baseUrl: 'http://127.0.0.1:1/v1',
  apiKey: 'sk-unit',
  stream: false,
  retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
  contextTokens: 1000,
  maxOutputTokens: 100,
  prices: undefined,
  ...extra,
});

/**
 * Streams as the providers send them (Anthropic's Messages API and OpenAI's chat completions with
 * `stream_options.include_usage`, as documented and as captured from their APIs; Gemini's `alt=sse`), parsed by the
 * SDK exactly as on the wire.
 */
const CAPTURED = {
  anthropic: [
    'event: message_start',
    'data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}',
    '',
    'event: content_block_start',
    'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    '',
    'event: ping',
    'data: {"type": "ping"}',
    '',
    'event: content_block_delta',
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"## Cells\\n\\nA cell"}}',
    '',
    'event: content_block_delta',
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" is the unit"}}',
    '',
    'event: content_block_delta',
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" of life."}}',
    '',
    'event: content_block_stop',
    'data: {"type":"content_block_stop","index":0}',
    '',
    'event: message_delta',
    'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}',
    '',
    'event: message_stop',
    'data: {"type":"message_stop"}',
    '',
    '',
  ].join('\n'),
  openai: [
    'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
    '',
    'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"## Cells\\n\\nA cell"},"finish_reason":null}]}',
    '',
    'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" is the unit"},"finish_reason":null}]}',
    '',
    'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" of life."},"finish_reason":null}]}',
    '',
    'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
    '',
    'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":15,"total_tokens":40}}',
    '',
    'data: [DONE]',
    '',
    '',
  ].join('\n'),
  google: [
    'data: {"candidates":[{"content":{"parts":[{"text":"## Cells\\n\\nA cell"}],"role":"model"},"index":0}]}',
    '',
    'data: {"candidates":[{"content":{"parts":[{"text":" is the unit"}],"role":"model"},"index":0}]}',
    '',
    'data: {"candidates":[{"content":{"parts":[{"text":" of life."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":25,"candidatesTokenCount":15,"totalTokenCount":40}}',
    '',
    '',
  ].join('\n'),
} as const;

/** A fetch that answers every request with `body` as an event stream, cut into small reads; records the requests. */
function wire(body: string): typeof fetch & { bodies: Record<string, unknown>[] } {
  const bodies: Record<string, unknown>[] = [];
  const fn = (_url: unknown, init?: RequestInit): Promise<Response> => {
    bodies.push(JSON.parse(init?.body as string) as Record<string, unknown>);
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        // reads that cut events (and lines) in the middle, as TCP does
        for (let i = 0; i < bytes.length; i += 37) controller.enqueue(bytes.slice(i, i + 37));
        controller.close();
      },
    });
    return Promise.resolve(
      new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
    );
  };
  return Object.assign(fn as typeof fetch, { bodies });
}

const PROVIDERS = [
  ['anthropic', CAPTURED.anthropic],
  ['openai-compatible', CAPTURED.openai],
  ['google', CAPTURED.google],
] as const;

describe('streaming from the providers’ wire (the SDK parsing captured event streams)', () => {
  it.each(PROVIDERS)(
    '%s: every text delta reaches onText; text and usage are the stream’s totals',
    async (provider, body) => {
      const s = settings({ provider });
      const fetch = wire(body);
      const call = sdkCall(createModel(s, fetch), s);
      const chunks: string[] = [];
      const out = await call({
        system: 'sys',
        prompt: 'p',
        signal: new AbortController().signal,
        headers: {},
        onText: (c) => chunks.push(c),
      });
      expect(chunks).toEqual(['## Cells\n\nA cell', ' is the unit', ' of life.']);
      expect(out).toEqual({
        text: '## Cells\n\nA cell is the unit of life.',
        usage: { inputTokens: 25, outputTokens: 15 },
      });
      if (provider !== 'google') expect(fetch.bodies[0].stream).toBe(true);
      if (provider === 'openai-compatible')
        expect(fetch.bodies[0].stream_options).toEqual({ include_usage: true });
    },
  );

  it('streams with AGENT_STREAM=true even without a listener (the text is the same)', async () => {
    const s = settings({ stream: true });
    const out = await sdkCall(
      createModel(s, wire(CAPTURED.anthropic)),
      s,
    )({
      system: 'sys',
      prompt: 'p',
      signal: new AbortController().signal,
      headers: {},
    });
    expect(out.text).toBe('## Cells\n\nA cell is the unit of life.');
  });
});

describe('LlmAgentRunner with onText', () => {
  const request = (onText: AgentRunRequest['onText']): AgentRunRequest => ({
    agentType: 'oral-explanation',
    node: { canvasPath: 'a.canvas', nodeId: 'n1', nodeType: 'text', content: 'The cell.' },
    signal: new AbortController().signal,
    onText,
  });

  it('passes the text on; a retried call restarts it, and the result is the last call’s answer', async () => {
    let calls = 0;
    const call: ModelCall = (args) => {
      calls++;
      if (calls === 1) {
        args.onText?.('Half an ans');
        return Promise.reject(new Error('connection reset'));
      }
      args.onText?.('');
      args.onText?.('The whole ');
      args.onText?.('answer.');
      return Promise.resolve({ text: 'The whole answer.', usage: { inputTokens: 1, outputTokens: 2 } });
    };
    const seen: Array<[string, boolean | undefined]> = [];
    const r = await new LlmAgentRunner(settings(), { call }).run(
      request((c, restart) => seen.push([c, restart])),
    );
    expect(seen).toEqual([
      ['Half an ans', undefined],
      ['The whole ', true],
      ['answer.', undefined],
    ]);
    expect(r).toMatchObject({ markdown: 'The whole answer.\n', attempts: 2 });
  });

  it('a call that streamed nothing before failing does not restart the next one', async () => {
    let calls = 0;
    const call: ModelCall = (args) => {
      if (++calls === 1) return Promise.reject(new Error('connection reset'));
      args.onText?.('Answer.');
      return Promise.resolve({ text: 'Answer.', usage: { inputTokens: 1, outputTokens: 1 } });
    };
    const seen: Array<[string, boolean | undefined]> = [];
    await new LlmAgentRunner(settings(), { call }).run(request((c, restart) => seen.push([c, restart])));
    expect(seen).toEqual([['Answer.', undefined]]);
  });

  it('the local model gets the listener as its text-chunk callback', async () => {
    const generate = jest.fn((args: { onText?: (c: string) => void }) => {
      args.onText?.('tok');
      return Promise.resolve({
        text: 'tok',
        usage: { inputTokens: 1, outputTokens: 1 },
        stopReason: 'eogToken',
      });
    });
    const chunks: string[] = [];
    const out = await localCall({ generate })({
      system: 's',
      prompt: 'p',
      signal: new AbortController().signal,
      headers: {},
      onText: (c) => chunks.push(c),
    });
    expect(chunks).toEqual(['tok']);
    expect(out.text).toBe('tok');
    await localCall({ generate })({
      system: 's',
      prompt: 'p',
      signal: new AbortController().signal,
      headers: {},
    });
    expect(generate.mock.calls[1][0]).not.toHaveProperty('onText');
  });
});
