import { Terminal } from '@xterm/headless';
import { PassThrough } from 'node:stream';
import type { TaskStatusDto } from '../orchestrator';
import { parseSse } from './api-client';
import { BarsView, BatchProgress } from './progress';
import { printable, TextFocus, wrap } from './text-focus';

const d = (node_id: string, text: string, offset: number) => ({ node_id, group_id: 1, text, offset });

describe('TextFocus', () => {
  it('grows a node’s text at its offsets: appended, restarted at 0, rewritten, or a gap marked', () => {
    const f = new TextFocus();
    f.apply(d('a', 'Hello', 0));
    f.apply(d('a', ' world', 5));
    expect(f.textOf('a')).toBe('Hello world');
    f.apply(d('a', 'Again', 0));
    expect(f.textOf('a')).toBe('Again');
    f.apply(d('a', 'ED', 3));
    expect(f.textOf('a')).toBe('AgaED');
    f.apply(d('a', 'later', 20));
    expect(f.textOf('a')).toBe('AgaED…later');
    f.apply(d('a', 'y'.repeat(70_000), 25));
    expect(f.textOf('a')).toHaveLength(64 * 1024);
  });

  it('focuses the node that started writing last, or the chosen one; a settled node leaves the focus', () => {
    const f = new TextFocus();
    expect(f.focus).toBeUndefined();
    expect(f.lines(80, 10)).toEqual([]);
    f.apply(d('a', 'A text', 0));
    f.apply(d('b', 'B text', 0));
    f.apply(d('a', ' more', 6));
    expect(f.focus).toBe('b');
    f.settle('b');
    expect(f.focus).toBe('a');
    const chosen = new TextFocus('c');
    chosen.apply(d('a', 'A', 0));
    expect(chosen.focus).toBeUndefined();
    chosen.apply(d('c', 'C', 0));
    chosen.settle('c');
    expect(chosen.focus).toBe('c');
  });

  it('draws a title and the end of the text, every row within the width, at most the rows given', () => {
    const f = new TextFocus();
    f.apply(d('n1', 'line one\nline two is a long line that has to wrap\x1b[31m red\tand\r\nlast', 0));
    const rows = f.lines(20, 4);
    expect(rows).toHaveLength(4);
    expect(rows[0]).toBe('── n1 (group 1) ───');
    // the escape character is gone (what followed it is plain text), the tab is two spaces
    expect(rows.slice(1)).toEqual(['line that has to wr', 'ap[31m red  and', 'last']);
    for (const r of rows) expect([...r].length).toBeLessThanOrEqual(19);
    expect(rows.join('')).not.toContain('\x1b');
    expect(f.lines(20, 1)).toEqual([]);
    expect(wrap('光合作用是植物', 5)).toEqual(['光合', '作用', '是植', '物']);
    expect(printable('a\x07b\tc\r\nd')).toBe('ab  c\nd');
  });
});

describe('the panel under the bars', () => {
  it('shows the focused node’s text under the bars and redraws it in place as it grows', async () => {
    const progress = new BatchProgress({
      task_id: 't',
      total_nodes: 2,
      groups: [{ group_id: 1, agent_type: 'oral-explanation', total_nodes: 2 }],
    } as TaskStatusDto);
    const stream = Object.assign(new PassThrough(), { columns: 60, rows: 12 });
    let written = '';
    stream.on('data', (c: Buffer) => (written += c.toString()));
    const focus = new TextFocus();
    const view = new BarsView(stream, progress, {
      intervalMs: 0,
      panel: (columns, rows) => focus.lines(columns, rows),
    });
    focus.apply(d('n1', 'First words', 0));
    view.update();
    focus.apply(d('n1', ' and more words', 11));
    view.update();
    view.stop();
    const term = new Terminal({ cols: 60, rows: 12, allowProposedApi: true });
    await new Promise<void>((resolve) => term.write(written.replace(/\n/g, '\r\n'), resolve));
    const screen: string[] = [];
    for (let y = 0; y < term.buffer.active.length; y++)
      screen.push(term.buffer.active.getLine(y)?.translateToString(true).trimEnd() ?? '');
    term.dispose();
    expect(screen.filter(Boolean)).toEqual([
      expect.stringMatching(/^ 1 oral-explanation/),
      expect.stringMatching(/^ total/),
      expect.stringMatching(/^── n1 \(group 1\) ─+$/),
      'First words and more words',
    ]);
  });
});

describe('parseSse with deltas', () => {
  const body = (text: string): ReadableStream<Uint8Array> =>
    new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(text));
        c.close();
      },
    });
  const frames =
    'id: 1\nevent: progress_update\ndata: {"type":"progress_update","data":{"completed_nodes":0}}\n\n' +
    'event: task_output_delta\ndata: {"type":"task_output_delta","task_id":"t","node_id":"n1","group_id":1,"text":"Hi","offset":0}\n\n' +
    'event: task_output_delta\ndata: {"type":"task_output_delta","node_id":"n1"}\n\n' +
    'id: 2\nevent: session_completed\ndata: {"type":"session_completed","data":{"status":"completed"}}\n\n';

  it('hands the deltas to onDelta and yields the events as before; without onDelta they are skipped', async () => {
    const deltas: unknown[] = [];
    const events = [];
    for await (const e of parseSse(body(frames), undefined, (x) => deltas.push(x))) events.push(e.id);
    expect(events).toEqual([1, 2]);
    expect(deltas).toEqual([
      { type: 'task_output_delta', task_id: 't', node_id: 'n1', group_id: 1, text: 'Hi', offset: 0 },
    ]);
    const plain = [];
    for await (const e of parseSse(body(frames))) plain.push(e.id);
    expect(plain).toEqual([1, 2]);
  });
});
