import type { AgentNodeInput } from './agent-runner';
import { OFFLINE_STREAM_STEP_MS, OfflineAgentRunner, splitText } from './offline-agent-runner';

const node: AgentNodeInput = {
  canvasPath: 'a.canvas',
  nodeId: 'n1',
  nodeType: 'text',
  content: 'Photosynthesis converts light energy into chemical energy. It happens in chloroplasts.',
};

describe('OfflineAgentRunner streaming (onText)', () => {
  it('writes its whole markdown in pieces spread over the latency; the pieces join to the result', async () => {
    const chunks: string[] = [];
    let resolved = false;
    let piecesWhenResolved = 0;
    const run = new OfflineAgentRunner(300).run({
      agentType: 'oral-explanation',
      node,
      signal: new AbortController().signal,
      onText: (c) => chunks.push(c),
    });
    const firstPiece = new Promise<number>((resolve) => {
      const poll = (): void => (chunks.length ? resolve(chunks.length) : void setImmediate(poll));
      poll();
    });
    void run.then(() => {
      resolved = true;
      piecesWhenResolved = chunks.length;
    });
    // the first piece comes alone, long before the run ends
    expect(await firstPiece).toBe(1);
    expect(resolved).toBe(false);
    const result = await run;
    expect(chunks).toHaveLength(300 / OFFLINE_STREAM_STEP_MS);
    expect(piecesWhenResolved).toBe(chunks.length);
    expect(chunks.join('')).toBe(result.markdown);
  });

  it('without latency, the whole text at once; without onText, nothing streams', async () => {
    const chunks: string[] = [];
    const signal = new AbortController().signal;
    const streamed = await new OfflineAgentRunner(0).run({
      agentType: 'memory-anchor',
      node,
      signal,
      onText: (c) => chunks.push(c),
    });
    expect(chunks).toEqual([streamed.markdown]);
    const plain = await new OfflineAgentRunner(0).run({ agentType: 'memory-anchor', node, signal });
    expect(plain).toEqual(streamed);
  });

  it('stops streaming when aborted, and an agent it cannot run still fails (after its latency)', async () => {
    const ctl = new AbortController();
    const chunks: string[] = [];
    const run = new OfflineAgentRunner(10_000).run({
      agentType: 'oral-explanation',
      node,
      signal: ctl.signal,
      onText: (c) => {
        chunks.push(c);
        if (chunks.length === 2) ctl.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(chunks).toHaveLength(2);

    const unknown = new OfflineAgentRunner(20).run({
      agentType: 'no-such-agent',
      node,
      signal: new AbortController().signal,
      onText: () => undefined,
    });
    await expect(unknown).rejects.toThrow('no template');
  });
});

describe('splitText', () => {
  it('cuts at word boundaries into at most the pieces asked for, losing nothing', () => {
    const text = '  one two  three\nfour five six seven eight nine ten ';
    for (const n of [1, 2, 3, 7, 10, 50]) {
      const pieces = splitText(text, n);
      expect(pieces.join('')).toBe(text);
      expect(pieces.length).toBeLessThanOrEqual(n);
      expect(pieces.every((p) => p.length > 0)).toBe(true);
    }
    expect(splitText('', 4)).toEqual([]);
    expect(splitText('   ', 4)).toEqual(['   ']);
    expect(splitText('光合作用是植物', 3)).toEqual(['光合作用是植物']);
  });
});
