import { charCount } from '../common';
import type { AgentNodeInput } from './agent-runner';
import {
  capNodeInput,
  capResultMarkdown,
  DEFAULT_MAX_INPUT_CHARS,
  DEFAULT_MAX_RESULT_BYTES,
  formatBytes,
} from './content-limits';

const node = (content: string, context?: AgentNodeInput['context']): AgentNodeInput => ({
  canvasPath: 'a.canvas',
  nodeId: 'n1',
  nodeType: 'text',
  content,
  ...(context && { context }),
});

describe('capNodeInput', () => {
  it('defaults to 256 Ki characters and a 1 MiB result file', () => {
    expect(DEFAULT_MAX_INPUT_CHARS).toBe(262_144);
    expect(DEFAULT_MAX_RESULT_BYTES).toBe(1_048_576);
  });

  it('hands a node within the limit over untouched (the same object)', () => {
    const input = node('Cell theory', { neighbours: ['Nucleus'], groupLabel: 'Biology' });
    expect(capNodeInput(input, 1000)).toEqual({ input, omitted: 0 });
    expect(capNodeInput(input, 1000).input).toBe(input);
    const bare = node('x'.repeat(1000));
    expect(capNodeInput(bare, 1000).input).toBe(bare);
  });

  it('cuts a longer content to the limit with a note the agent can read, and counts what was left out', () => {
    const input = node(`# Membranes\n\n${'lipid bilayer '.repeat(10_000)}`); // 140,013 characters
    const { input: capped, omitted } = capNodeInput(input, 5_000);
    expect(charCount(capped.content)).toBeLessThanOrEqual(5_000);
    expect(capped.content.startsWith('# Membranes\n\nlipid bilayer lipid')).toBe(true);
    expect(capped.content).toMatch(
      / (lipid|bilayer)\n\n… \(truncated: [\d,]+ characters more; an agent reads at most 5,000 characters of a node\)$/,
    );
    const kept = capped.content.slice(0, capped.content.indexOf('\n\n…'));
    expect(omitted).toBe(input.content.length - kept.length);
    expect(capped).toMatchObject({ canvasPath: 'a.canvas', nodeId: 'n1', nodeType: 'text' });
    expect(input.content.length).toBe(140_013); // the original is left alone
  });

  it('holds each neighbour and the group label to the same limit, without counting them', () => {
    const long = 'neighbour text '.repeat(1_000);
    const input = node('short', { neighbours: [long, 'near'], groupLabel: 'g'.repeat(3_000) });
    const { input: capped, omitted } = capNodeInput(input, 1_000);
    expect(omitted).toBe(0);
    expect(capped.content).toBe('short');
    expect(charCount(capped.context!.neighbours[0])).toBeLessThanOrEqual(1_000);
    expect(capped.context!.neighbours[0]).toMatch(/… \(truncated: [\d,]+ characters more\)$/);
    expect(capped.context!.neighbours[1]).toBe('near');
    expect(charCount(capped.context!.groupLabel!)).toBeLessThanOrEqual(1_000);
    const noLabel = capNodeInput(node('short', { neighbours: [long] }), 1_000).input;
    expect(noLabel.context).not.toHaveProperty('groupLabel');
    expect(
      capNodeInput(node('short', { neighbours: ['a'], groupLabel: 'g'.repeat(2_000) }), 1_000).input.context!
        .groupLabel,
    ).toMatch(/truncated/);
  });

  // (its speed is a benchmark's business, not a test's: this machine is shared and noisy)
  it('cuts a 5 MB node to the cap, counting what it left out', () => {
    const content = 'cell membrane protein '.repeat(240_000); // 5,280,000 characters
    const { input, omitted } = capNodeInput(node(content), DEFAULT_MAX_INPUT_CHARS);
    expect(charCount(input.content)).toBeLessThanOrEqual(DEFAULT_MAX_INPUT_CHARS);
    expect(omitted).toBeGreaterThan(5_000_000);
  });
});

describe('capResultMarkdown', () => {
  const title = 'oral-explanation: Cell theory';
  const fileBytes = (markdown: string): number => Buffer.byteLength(`# ${title}\n\n${markdown.trim()}\n`);

  it('leaves an output within the limit as it is (trimmed, as the file holds it)', () => {
    expect(
      capResultMarkdown('  ## Core idea\n\nCells.\n\n', { title, maxBytes: 65_536, inputOmitted: 0 }),
    ).toEqual({
      markdown: '## Core idea\n\nCells.',
      omitted: 0,
    });
  });

  it('starts with a note when the agent was given only part of the node', () => {
    const r = capResultMarkdown('## Core idea\n\nCells.', {
      title,
      maxBytes: 65_536,
      inputOmitted: 4_980_736,
    });
    expect(r.omitted).toBe(0);
    expect(r.markdown).toBe(
      '> **Truncated input:** this node is longer than an agent reads; its last 4,980,736 characters were not given to the agent.\n\n## Core idea\n\nCells.',
    );
  });

  it('cuts a longer output so the whole file stays within the limit, ending with a visible note', () => {
    const output = `## Core idea\n\n${'细胞膜由磷脂双分子层构成🧬'.repeat(20_000)}`;
    const r = capResultMarkdown(output, { title, maxBytes: 65_536, inputOmitted: 12 });
    expect(fileBytes(r.markdown)).toBeLessThanOrEqual(65_536);
    expect(fileBytes(r.markdown)).toBeGreaterThan(65_536 - 16);
    expect(r.markdown.startsWith('> **Truncated input:**')).toBe(true);
    expect(r.markdown).toMatch(
      /\n\n---\n\n_… \(truncated: [\d,]+ characters more; a result file holds at most 64 KiB\)_$/,
    );
    expect(r.omitted).toBeGreaterThan(200_000);
    expect(r.markdown).not.toContain('\ufffd');
  });

  it('names the limit in the unit it divides into', () => {
    expect(formatBytes(1_048_576)).toBe('1 MiB');
    expect(formatBytes(3 * 1_048_576)).toBe('3 MiB');
    expect(formatBytes(524_288)).toBe('512 KiB');
    expect(formatBytes(70_000)).toBe('70,000 bytes');
  });
});
