import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { TaskStatusDto } from '../orchestrator';
import {
  answerFor,
  estimateLines,
  EXIT,
  exitCodeFor,
  printSummary,
  readDotEnv,
  selectNodes,
  serviceUrl,
} from './cli';

describe('CLI settings and choices', () => {
  it('one exit code per final status', () => {
    expect(['completed', 'partial_failure', 'failed', 'cancelled'].map(exitCodeFor)).toEqual([
      EXIT.completed,
      EXIT.partialFailure,
      EXIT.failed,
      EXIT.cancelled,
    ]);
    expect(new Set(Object.values(EXIT)).size).toBe(Object.keys(EXIT).length);
  });

  it('reaches the service where PORT and HOST put it when no URL is given', () => {
    expect(serviceUrl({})).toBe('http://127.0.0.1:3000');
    expect(serviceUrl({ PORT: '4123' })).toBe('http://127.0.0.1:4123');
    expect(serviceUrl({ PORT: ' ', HOST: '' })).toBe('http://127.0.0.1:3000');
    expect(serviceUrl({ PORT: '4123', HOST: '0.0.0.0' })).toBe('http://127.0.0.1:4123');
    expect(serviceUrl({ PORT: '4123', HOST: '::' })).toBe('http://[::1]:4123');
    expect(serviceUrl({ HOST: '::1' })).toBe('http://[::1]:3000');
    expect(serviceUrl({ HOST: 'box.lan' })).toBe('http://box.lan:3000');
    expect(serviceUrl({ CANVAS_BATCH_URL: 'http://x:1', PORT: '2' })).toBe('http://x:1');
    expect(() => serviceUrl({ PORT: '0' })).toThrow('PORT=0 lets the service pick a free port');
    expect(() => serviceUrl({ PORT: 'http' })).toThrow('PORT "http" is not a port number');
  });

  it("reads the CLI's variables from .env, as the service does", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'canvas-batch-cli-'));
    try {
      const warnings: string[] = [];
      expect(readDotEnv(dir, (l) => warnings.push(l))).toEqual({});
      writeFileSync(
        path.join(dir, '.env'),
        '# comment\nPORT=4555\nHOST=\nAPI_TOKEN="secret value"\nVAULT_ROOT=/elsewhere\n',
      );
      expect(readDotEnv(dir, (l) => warnings.push(l))).toEqual({ PORT: '4555', API_TOKEN: 'secret value' });
      const unreadable = path.join(dir, 'sub');
      mkdirSync(path.join(unreadable, '.env'), { recursive: true });
      expect(readDotEnv(unreadable, (l) => warnings.push(l))).toEqual({});
      expect(warnings).toEqual([expect.stringMatching(/\.env ignored: /)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints an estimate per group and in all, with an unknown price and durations as learned', () => {
    const group = {
      group_id: 'g',
      agent_type: 'oral-explanation',
      nodes: 3,
      input_tokens: 900,
      output_tokens: 600,
      output_basis: 'learned' as const,
      cost_usd: null,
      expected_ms: 750,
    };
    const lines = estimateLines(
      {
        provider: 'custom',
        model: null,
        price: null,
        concurrency: 2,
        tokens: { method: 'heuristic', tolerance: 0.25 },
        groups: [group, { ...group, group_id: 2, expected_ms: 42_000 }],
        total: {
          nodes: 6,
          input_tokens: 1800,
          output_tokens: 1200,
          cost_usd: null,
          price_known: false,
          expected_duration_ms: 200_000,
        },
      },
      5,
    );
    expect(lines).toEqual([
      'estimate: custom, unknown price, 2 at once (tokens ±25 %)',
      '  group g oral-explanation: 3 node(s), 900 in + 600 out tokens, unknown price, ~750 ms of work',
      '  group 2 oral-explanation: 3 node(s), 900 in + 600 out tokens, unknown price, ~42 s of work',
      '  total: 6 node(s), 1800 in + 1200 out tokens, unknown price, ~3 min 20 s',
      '  budget: $5',
    ]);
  });

  it('reads one key at the Ctrl-C question', () => {
    expect(['y', 'Y', 'yes', '\x03'].map(answerFor)).toEqual(['yes', 'yes', 'yes', 'yes']);
    expect(['n', '\r', ' ', '\x1b[A'].map(answerFor)).toEqual(['no', 'no', 'no', 'no']);
    expect([undefined, '\x04'].map(answerFor)).toEqual(['detach', 'detach']);
  });

  it('leaves groups and generated cards out of all and color:, unless asked for', () => {
    const nodes = [
      { id: 'a', type: 'text', color: '1', result: false },
      { id: 'b', type: 'group', color: '1', result: false },
      { id: 'c', type: 'file', color: '1', result: true },
      { id: 'q', type: 'text', color: '#FF0000', result: true },
      { id: 'd', type: 'link', result: false },
    ] as Parameters<typeof selectNodes>[0];
    expect(selectNodes(nodes, 'all')).toEqual(['a', 'd']);
    expect(selectNodes(nodes, ' all ', { includeGenerated: true })).toEqual(['a', 'c', 'q', 'd']);
    expect(selectNodes(nodes, 'color:1')).toEqual(['a']);
    expect(selectNodes(nodes, 'color:#ff0000')).toEqual([]);
    expect(selectNodes(nodes, 'color:#ff0000', { includeGenerated: true })).toEqual(['q']);
    expect(selectNodes(nodes, 'q,c')).toEqual(['q', 'c']);
    expect(() => selectNodes(nodes, 'color: ')).toThrow('needs a colour');
    expect(() => selectNodes(nodes, ' , ')).toThrow('names no node');
  });
});

describe('printSummary', () => {
  const result = (nodeId: string, extra: Record<string, unknown> = {}) => ({
    node_id: nodeId,
    file_path: `Notes/${nodeId}.md`,
    file_size: 10,
    duration_ms: 5,
    attempts: 1,
    usage: { input_tokens: 1, output_tokens: 1 },
    ...extra,
  });
  const status = (results: ReturnType<typeof result>[]): TaskStatusDto =>
    ({
      task_id: 't',
      status: 'completed',
      canvas_path: 'c.canvas',
      completed_nodes: results.length,
      failed_nodes: 0,
      skipped_nodes: 0,
      total_nodes: results.length,
      performance_metrics: { total_duration_seconds: 0.5 },
      groups: [
        {
          group_id: 1,
          agent_type: 'auto',
          status: 'completed',
          total_nodes: results.length,
          completed_nodes: results.length,
          failed_nodes: 0,
          skipped_nodes: 0,
          results,
          errors: [],
        },
      ],
    }) as unknown as TaskStatusDto;
  const lines = (s: TaskStatusDto): string[] => {
    const out: string[] = [];
    printSummary(s, (line = '') => out.push(line));
    return out;
  };

  it("lists an auto group's routed agent per result, and marks a result the cache gave back", () => {
    const text = lines(
      status([
        result('a', { agent_type: 'memory-anchor' }),
        result('b', { agent_type: 'oral-explanation', cached: true }),
      ]),
    ).join('\n');
    expect(text).toMatch(/NODE\s+AGENT\s+FILE/);
    expect(text).toMatch(/a\s+memory-anchor\s+Notes\/a\.md\n/);
    expect(text).toMatch(/b\s+oral-explanation\s+Notes\/b\.md \(cached\)/);
  });

  it('has no agent column when no node was routed', () => {
    const text = lines(status([result('a')])).join('\n');
    expect(text).toMatch(/NODE\s+FILE/);
    expect(text).not.toMatch(/AGENT\s+FILE/);
  });
});
