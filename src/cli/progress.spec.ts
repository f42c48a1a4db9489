import { Terminal } from '@xterm/headless';
import fc from 'fast-check';
import { PassThrough } from 'node:stream';
import type { TaskStatusDto } from '../orchestrator';
import type { TaskEvent } from './api-client';
import {
  BAR_CHARS,
  BarsView,
  BatchProgress,
  type Counts,
  countsText,
  LinesView,
  renderBar,
  segmentWidths,
} from './progress';

function task(groups: [number, number][]): TaskStatusDto {
  return {
    task_id: 't',
    total_nodes: groups.reduce((n, [, total]) => n + total, 0),
    groups: groups.map(([id, total]) => ({
      group_id: id,
      agent_type: 'oral-explanation',
      total_nodes: total,
    })),
  } as TaskStatusDto;
}

let nextId = 1;
function event<T extends TaskEvent['type']>(type: T, data: Record<string, unknown>): TaskEvent {
  return { id: nextId++, type, data } as unknown as TaskEvent;
}

/** A terminal stream that keeps what was written. */
function terminal(columns = 100, rows = 24) {
  const stream = Object.assign(new PassThrough(), { columns, rows });
  let written = '';
  stream.on('data', (c: Buffer) => (written += c.toString()));
  return { stream, written: () => written };
}

/** The screen a terminal shows after `written` (a headless xterm), non-empty rows, trailing blanks trimmed. */
async function screenOf(written: string, columns = 100, rows = 24): Promise<string[]> {
  const term = new Terminal({ cols: columns, rows, allowProposedApi: true });
  // a terminal's output processing turns \n into \r\n (ONLCR)
  await new Promise<void>((resolve) => term.write(written.replace(/\n/g, '\r\n'), resolve));
  const out: string[] = [];
  for (let y = 0; y < term.buffer.active.length; y++)
    out.push(term.buffer.active.getLine(y)?.translateToString(true).trimEnd() ?? '');
  term.dispose();
  return out.filter(Boolean);
}

describe('segmented bars', () => {
  it('shows completed, failed, skipped and pending apart, each that happened with at least one cell', () => {
    expect(renderBar({ total: 42, completed: 19, failed: 0, skipped: 23 }, 20)).toBe(
      `[${'█'.repeat(9)}${'░'.repeat(11)}]`,
    );
    expect(renderBar({ total: 10, completed: 5, failed: 1, skipped: 0 }, 10)).toBe('[█████▓····]');
    expect(renderBar({ total: 1000, completed: 998, failed: 1, skipped: 1 }, 10)).toBe('[████████▓░]');
    expect(renderBar({ total: 4, completed: 4, failed: 0, skipped: 0 }, 8)).toBe('[████████]');
    expect(renderBar({ total: 0, completed: 0, failed: 0, skipped: 0 }, 4)).toBe('[····]');
    expect(segmentWidths({ total: 3, completed: 1, failed: 1, skipped: 1 }, 0)).toEqual({
      completed: 0,
      failed: 0,
      skipped: 0,
      pending: 0,
    });
  });

  it('colours completed green, failed red, skipped grey (the shapes still differ without colour)', () => {
    const bar = renderBar({ total: 4, completed: 1, failed: 1, skipped: 1 }, 4, true);
    expect(bar).toBe('[\x1b[32m█\x1b[0m\x1b[31m▓\x1b[0m\x1b[90m░\x1b[0m\x1b[2m·\x1b[0m]');
    expect(new Set(Object.values(BAR_CHARS)).size).toBe(4);
  });

  it('always fills the width exactly, and is whole only when every node completed', () => {
    fc.assert(
      fc.property(
        fc.nat(60),
        fc.nat(60),
        fc.nat(60),
        fc.nat(60),
        fc.integer({ min: 4, max: 50 }),
        (completed, failed, skipped, pending, width) => {
          const c: Counts = { total: completed + failed + skipped + pending, completed, failed, skipped };
          const cells = segmentWidths(c, width);
          expect(cells.completed + cells.failed + cells.skipped + cells.pending).toBe(width);
          expect(cells.completed === width).toBe(c.total > 0 && completed === c.total);
          expect(cells.failed > 0).toBe(failed > 0);
          expect(cells.skipped > 0).toBe(skipped > 0);
        },
      ),
    );
  });

  it('uses the summary words', () => {
    expect(countsText({ total: 42, completed: 19, failed: 0, skipped: 23 })).toBe(
      '19 completed, 0 failed, 23 skipped of 42',
    );
    expect(countsText({ total: 42, completed: 1, failed: 0, skipped: 0 }, 2)).toBe(
      ' 1 completed,  0 failed,  0 skipped of 42',
    );
  });
});

describe('BatchProgress', () => {
  it('counts per group from the events, skipped ones once a group settles, and takes the final counts', () => {
    const p = new BatchProgress(
      task([
        [1, 3],
        [2, 4],
      ]),
    );
    p.apply(event('task_completed', { group_id: 1 }));
    p.apply(event('task_failed', { group_id: '2' }));
    p.apply(event('task_completed', { group_id: 9 }));
    expect(p.totals).toEqual({ total: 7, completed: 1, failed: 1, skipped: 0 });
    expect(
      p.apply(event('group_completed', { group_id: 1, completed_nodes: 1, failed_nodes: 0 })),
    ).toMatchObject({
      key: '1',
      closed: true,
      skipped: 2,
    });
    // a late node event of a settled group changes nothing
    p.apply(event('task_completed', { group_id: 1 }));
    expect(
      p.apply(event('group_completed', { group_id: 7, completed_nodes: 0, failed_nodes: 0 })),
    ).toBeUndefined();
    expect(p.apply(event('progress_update', {}))).toBeUndefined();
    expect(p.apply(event('session_completed', { status: 'cancelled' }))).toBe('task');
    expect(p.totals).toEqual({ total: 7, completed: 1, failed: 1, skipped: 2 });
    p.reconcile({
      status: 'cancelled',
      groups: [
        { group_id: 2, completed_nodes: 1, failed_nodes: 1, skipped_nodes: 2 },
        { group_id: 5, completed_nodes: 1, failed_nodes: 1, skipped_nodes: 2 },
      ] as TaskStatusDto['groups'],
    });
    expect(p.totals).toEqual({ total: 7, completed: 2, failed: 1, skipped: 4 });
    expect(p.groups[1].closed).toBe(true);
    expect(p.finalStatus).toBe('cancelled');
  });
});

describe('BarsView', () => {
  afterEach(() => jest.useRealTimers());

  it('redraws in place at most once per interval, logs above the bars, and ends on the final counts', async () => {
    jest.useFakeTimers();
    const p = new BatchProgress(
      task([
        [1, 2],
        [2, 2],
      ]),
    );
    const t = terminal();
    const view = new BarsView(t.stream, p, { intervalMs: 100 });
    expect(view.frames).toBe(1);
    p.apply(event('task_completed', { group_id: 1 }));
    view.update();
    view.update();
    expect(view.frames).toBe(1);
    jest.advanceTimersByTime(100);
    expect(view.frames).toBe(2);
    jest.advanceTimersByTime(100);
    view.update();
    expect(view.frames).toBe(3);
    view.log('a note');
    expect(t.written()).toContain('\x1b[3A\r\x1b[Ja note\n');
    p.reconcile({
      status: 'cancelled',
      groups: [
        { group_id: 1, completed_nodes: 1, failed_nodes: 0, skipped_nodes: 1 },
        { group_id: 2, completed_nodes: 0, failed_nodes: 1, skipped_nodes: 1 },
      ] as TaskStatusDto['groups'],
    });
    view.stop();
    view.stop();
    // xterm parses on timers of its own
    jest.useRealTimers();
    expect(await screenOf(t.written())).toEqual([
      'a note',
      // 100 columns leave 39 cells for a bar
      ` 1 oral-explanation [${'█'.repeat(20)}${'░'.repeat(19)}] 1 completed, 0 failed, 1 skipped of 2`,
      ` 2 oral-explanation [${'▓'.repeat(20)}${'░'.repeat(19)}] 0 completed, 1 failed, 1 skipped of 2`,
      ` total              [${'█'.repeat(10)}${'▓'.repeat(10)}${'░'.repeat(19)}] 1 completed, 1 failed, 2 skipped of 4`,
    ]);
    expect(t.written().endsWith('\x1b[?25h')).toBe(true);
    view.log('after the end');
    expect(t.written().endsWith('after the end\n')).toBe(true);
  });

  it('draws nothing while a question is open, holds the notes meanwhile, then replaces the question', async () => {
    jest.useFakeTimers();
    const p = new BatchProgress(task([[1, 4]]));
    const t = terminal();
    const view = new BarsView(t.stream, p, { intervalMs: 0 });
    view.update();
    const question = 'Cancel batch t? [y/N] ';
    view.pause(question);
    view.pause('ignored while one is open');
    expect(view.paused).toBe(true);
    const mark = t.written().length;
    const frames = view.frames;
    for (let i = 0; i < 3; i++) {
      p.apply(event('task_completed', { group_id: 1 }));
      view.update();
      jest.advanceTimersByTime(1000);
    }
    view.log('held note');
    expect(t.written().slice(mark)).toBe('');
    expect(view.frames).toBe(frames);
    jest.useRealTimers();
    const asked = await screenOf(t.written());
    expect(asked).toEqual([
      expect.stringMatching(/^ 1 oral-explanation \[·+\] 0 completed/),
      expect.stringMatching(/^ total +\[·+\] 0 completed/),
      question.trimEnd(),
    ]);

    view.resume(`${question}no: continuing`);
    view.resume('nothing to resume');
    const after = t.written().slice(mark);
    // back over the question's line and the two bars, then the answer, the held note, the bars
    expect(after.startsWith('\r\x1b[2A\x1b[J')).toBe(true);
    expect(after).toContain(`${question}no: continuing\nheld note\n`);
    expect(await screenOf(t.written())).toEqual([
      `${question}no: continuing`,
      'held note',
      expect.stringMatching(/^ 1 oral-explanation \[█{29}·{10}\] 3 completed, 0 failed, 0 skipped of 4$/),
      expect.stringMatching(/^ total +\[█{29}·{10}\] 3 completed/),
    ]);
  });

  it('stops cleanly with a question still open, and keeps the total only on a short terminal', async () => {
    const p = new BatchProgress(
      task([
        [1, 1],
        [2, 1],
        [3, 1],
      ]),
    );
    const t = terminal(40, 5);
    const view = new BarsView(t.stream, p);
    view.pause('Cancel? [y/N] ');
    view.stop();
    view.pause('after the end');
    const rows = await screenOf(t.written(), 40, 5);
    expect(rows).toEqual(['Cancel? [y/N]', expect.stringMatching(/^ total \[·+\] 0 completed, 0 fa/)]);
    // never wider than the terminal: a wrapped bar would break the redraw
    expect(rows[1].length).toBeLessThan(40);
  });
});

describe('LinesView', () => {
  it('prints a line per settled group and per tenth, and the final counts once', () => {
    const p = new BatchProgress(
      task([
        [1, 2],
        [2, 18],
      ]),
    );
    const t = terminal();
    const view = new LinesView(t.stream, p);
    view.update(p, p.apply(event('progress_update', {})));
    view.update(p, p.apply(event('task_completed', { group_id: 1 })));
    view.update(p, p.apply(event('task_completed', { group_id: 1 })));
    view.update(p, p.apply(event('group_completed', { group_id: 1, completed_nodes: 2, failed_nodes: 0 })));
    view.update(p, p.apply(event('group_completed', { group_id: 2, completed_nodes: 0, failed_nodes: 1 })));
    view.log('a note');
    view.stop();
    expect(t.written()).toBe(
      [
        'progress: 0 completed, 0 failed, 0 skipped of 20',
        'progress: 2 completed, 0 failed, 0 skipped of 20',
        'group 1 oral-explanation: 2 completed, 0 failed, 0 skipped of 2',
        'group 2 oral-explanation: 0 completed, 1 failed, 17 skipped of 18',
        'progress: 2 completed, 1 failed, 17 skipped of 20',
        'a note',
        '',
      ].join('\n'),
    );
  });
});
