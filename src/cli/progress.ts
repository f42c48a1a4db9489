import type { TaskStatusDto } from '../orchestrator';
import type { TaskEvent } from './api-client';

/** How a task's (or a group's) nodes stand: each node counts once, in one of the three outcomes or still pending. */
export interface Counts {
  total: number;
  completed: number;
  failed: number;
  /** Never started: a cancel or the batch deadline stopped them. */
  skipped: number;
}

export interface GroupCounts extends Counts {
  key: string;
  agent: string;
  /** Every node of the group settled (`group_completed`, or the task ended). */
  closed: boolean;
}

/** A task's progress rebuilt from its event log (replayed from the first event), group by group. */
export class BatchProgress {
  readonly groups: GroupCounts[];
  finalStatus: string | undefined;

  constructor(readonly task: Pick<TaskStatusDto, 'task_id' | 'groups' | 'total_nodes'>) {
    this.groups = task.groups.map((g) => ({
      key: String(g.group_id),
      agent: g.agent_type,
      total: g.total_nodes,
      completed: 0,
      failed: 0,
      skipped: 0,
      closed: false,
    }));
  }

  /** The whole task's counts: the sum of its groups'. */
  get totals(): Counts {
    const sum = (k: 'completed' | 'failed' | 'skipped'): number => this.groups.reduce((n, g) => n + g[k], 0);
    return {
      total: this.task.total_nodes,
      completed: sum('completed'),
      failed: sum('failed'),
      skipped: sum('skipped'),
    };
  }

  /** Applies one event; returns the group it changed, `'task'` for the task's end, or undefined. */
  apply(e: TaskEvent): GroupCounts | 'task' | undefined {
    switch (e.type) {
      case 'task_completed': {
        const group = this.group(e.data.group_id);
        if (group && !group.closed) group.completed++;
        return group;
      }
      case 'task_failed': {
        const group = this.group(e.data.group_id);
        if (group && !group.closed) group.failed++;
        return group;
      }
      case 'group_completed': {
        const group = this.group(e.data.group_id);
        if (!group) return undefined;
        group.completed = e.data.completed_nodes;
        group.failed = e.data.failed_nodes;
        // the event carries no skipped count: a settled group's other nodes never started
        group.skipped = Math.max(0, group.total - group.completed - group.failed);
        group.closed = true;
        return group;
      }
      case 'session_completed':
        this.finalStatus = e.data.status;
        return 'task';
      default:
        return undefined;
    }
  }

  /**
   * Takes the counts of the task's final status, so the last bars say what the summary says (events alone do not
   * tell how many nodes a cancel skipped in a group that had not reported yet).
   */
  reconcile(final: Pick<TaskStatusDto, 'status' | 'groups'>): void {
    this.finalStatus = final.status;
    for (const g of final.groups) {
      const group = this.group(g.group_id);
      if (!group) continue;
      group.completed = g.completed_nodes;
      group.failed = g.failed_nodes;
      group.skipped = g.skipped_nodes;
      group.closed = group.completed + group.failed + group.skipped >= group.total;
    }
  }

  private group(groupId: string | number): GroupCounts | undefined {
    return this.groups.find((g) => g.key === String(groupId));
  }
}

/** `19 completed, 2 failed, 21 skipped of 42`: the same words as the end-of-batch summary. */
export function countsText(c: Counts, pad = 0): string {
  const n = (v: number): string => String(v).padStart(pad);
  return `${n(c.completed)} completed, ${n(c.failed)} failed, ${n(c.skipped)} skipped of ${c.total}`;
}

/** The characters of a segmented bar: distinct shapes, so the bar reads without colour too. */
export const BAR_CHARS = { completed: '█', failed: '▓', skipped: '░', pending: '·' } as const;
const SGR = { completed: '\x1b[32m', failed: '\x1b[31m', skipped: '\x1b[90m', pending: '\x1b[2m' } as const;
const RESET = '\x1b[0m';
type Segment = keyof typeof BAR_CHARS;
const SEGMENTS: readonly Segment[] = ['completed', 'failed', 'skipped', 'pending'];

/**
 * Splits `width` cells between completed, failed, skipped and pending nodes. Every outcome that happened gets at
 * least one cell, and the completed part fills the bar only when every node completed: a cancelled or partly failed
 * batch never looks done.
 */
export function segmentWidths(c: Counts, width: number): Record<Segment, number> {
  const pending = Math.max(0, c.total - c.completed - c.failed - c.skipped);
  const counts: Record<Segment, number> = { ...c, pending };
  const sum = SEGMENTS.reduce((n, s) => n + counts[s], 0);
  const cells: Record<Segment, number> = { completed: 0, failed: 0, skipped: 0, pending: 0 };
  if (sum === 0 || width <= 0) return { ...cells, pending: Math.max(0, width) };
  for (const s of SEGMENTS) {
    cells[s] = Math.floor((width * counts[s]) / sum);
    if (counts[s] > 0 && cells[s] === 0) cells[s] = 1;
  }
  let used = SEGMENTS.reduce((n, s) => n + cells[s], 0);
  // minimum cells may overshoot: take them back from the widest part
  while (used > width) {
    const widest = SEGMENTS.reduce((a, b) => (cells[b] > cells[a] ? b : a));
    cells[widest]--;
    used--;
  }
  // cells left over by rounding go to the parts that lost most to it; `completed` cannot fill the bar by this, as
  // every other part that happened holds a cell already
  while (used < width) {
    const candidates = SEGMENTS.filter((s) => counts[s] > 0);
    const pick = candidates.reduce((a, b) =>
      (width * counts[b]) / sum - cells[b] > (width * counts[a]) / sum - cells[a] ? b : a,
    );
    cells[pick]++;
    used++;
  }
  return cells;
}

/** A segmented bar `[███▓░░··]`, coloured (completed green, failed red, skipped grey) when `color`. */
export function renderBar(c: Counts, width: number, color = false): string {
  const cells = segmentWidths(c, width);
  const body = SEGMENTS.map((s) => {
    const part = BAR_CHARS[s].repeat(cells[s]);
    return color && part ? `${SGR[s]}${part}${RESET}` : part;
  }).join('');
  return `[${body}]`;
}

/** Where live progress goes: bars on a terminal, plain lines otherwise. */
export interface ProgressView {
  update(progress: BatchProgress, changed: GroupCounts | 'task' | undefined): void;
  log(line: string): void;
  /** Draws (or prints) the final state once and stops. */
  stop(): void;
}

/** A terminal stream: its width and height when known. */
export type TerminalStream = NodeJS.WritableStream & { columns?: number; rows?: number };

export interface BarsViewOptions {
  /** Colour the bars (a terminal without NO_COLOR). Default false. */
  color?: boolean;
  /** At most one redraw per this many ms. Default 100. */
  intervalMs?: number;
  /**
   * Lines drawn under the bars (the focused node's text), given the terminal's columns and the rows left for them;
   * each line must fit in `columns - 1` cells.
   */
  panel?: (columns: number, rows: number) => string[];
}

/** Rows the panel under the bars may take at most, however tall the terminal. */
const PANEL_ROWS = 12;

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

/**
 * Per-group segmented bars and a total, redrawn in place under the lines logged so far. `pause` freezes them and puts
 * a question on its own line below; nothing is drawn until `resume`, which replaces the question with the answer.
 */
export class BarsView implements ProgressView {
  /** Frames drawn so far (each one rewrites every bar). */
  frames = 0;
  private lines = 0;
  private question: string | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastDraw = 0;
  private readonly held: string[] = [];

  constructor(
    private readonly stream: TerminalStream,
    private readonly progress: BatchProgress,
    private readonly options: BarsViewOptions = {},
  ) {
    this.stream.write(HIDE_CURSOR + this.frame());
  }

  get paused(): boolean {
    return this.question !== undefined;
  }

  update(): void {
    if (this.stopped || this.paused || this.timer) return;
    const wait = (this.options.intervalMs ?? 100) - (Date.now() - this.lastDraw);
    if (wait <= 0) return void this.stream.write(this.frame());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped && !this.paused) this.stream.write(this.frame());
    }, wait);
  }

  /** A line above the bars; while a question is open it waits for `resume`, so the question stays the last line. */
  log(line: string): void {
    if (this.stopped) return void this.stream.write(`${line}\n`);
    if (this.paused) return void this.held.push(line);
    this.stream.write(`${this.erase()}${line}\n${this.frame()}`);
  }

  /** Freezes the bars as they are and writes `question` on its own line under them, cursor shown after it. */
  pause(question: string): void {
    this.clearTimer();
    if (this.stopped || this.paused) return;
    this.question = question;
    // from column 0 of a cleared line: a terminal not in raw mode echoed `^C` there
    this.stream.write(`\r\x1b[2K${SHOW_CURSOR}${question}`);
  }

  /** Replaces the question (and the frozen bars) with `record`, the lines held meanwhile, then live bars again. */
  resume(record: string): void {
    if (this.question === undefined) return;
    const rows = Math.max(1, Math.ceil(this.question.length / this.columns()));
    this.question = undefined;
    // from the question's line back to the first bar, then everything below goes
    const up = this.lines + rows - 1;
    const lines = [record, ...this.held.splice(0)].map((l) => `${l}\n`).join('');
    this.lines = 0;
    this.stream.write(`\r${up > 0 ? `\x1b[${up}A` : ''}\x1b[J${lines}${HIDE_CURSOR}${this.frame()}`);
  }

  stop(): void {
    if (this.stopped) return;
    this.clearTimer();
    if (this.paused) this.resume(this.question ?? '');
    this.stream.write(`${this.erase()}${this.frame()}${SHOW_CURSOR}`);
    this.stopped = true;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private columns(): number {
    return Math.max(20, this.stream.columns ?? 80);
  }

  /** Moves the cursor back to the first bar and clears from there (the bars are the screen's last lines). */
  private erase(): string {
    const up = this.lines;
    this.lines = 0;
    return up > 0 ? `\x1b[${up}A\r\x1b[J` : '';
  }

  /** Every bar, each on its own line (replacing what was there), then the panel; the cursor ends under the last one. */
  private frame(): string {
    const bars = this.rowsOfBars();
    const room = Math.min(PANEL_ROWS, (this.stream.rows ?? 24) - bars.length - 2);
    const rows =
      this.options.panel && room > 0 ? [...bars, ...this.options.panel(this.columns(), room)] : bars;
    const up = this.lines;
    this.lines = rows.length;
    this.frames++;
    this.lastDraw = Date.now();
    return `${up > 0 ? `\x1b[${up}A\r` : ''}${rows.map((r) => `\x1b[2K${r}\n`).join('')}\x1b[J`;
  }

  private rowsOfBars(): string[] {
    const { groups } = this.progress;
    const total = this.progress.totals;
    // a terminal too short for every group keeps the total only, so the cursor can always reach the first bar
    const shown = groups.length + 3 <= (this.stream.rows ?? 24) ? groups : [];
    const labels = [...shown.map((g) => `${g.key} ${g.agent}`), 'total'];
    const width = Math.max(...labels.map((l) => l.length));
    const pad = String(total.total).length;
    const all = [...shown, total];
    const texts = all.map((c) => countsText(c, pad));
    const columns = this.columns();
    const barWidth = Math.max(5, Math.min(40, columns - 6 - width - Math.max(...texts.map((t) => t.length))));
    return all.map((c, i) => {
      const head = ` ${labels[i].padEnd(width)} `;
      // the bar is 2 + barWidth cells; the text is cut rather than wrapped, which would break the redraw
      const room = columns - 1 - head.length - barWidth - 3;
      return `${head}${renderBar(c, barWidth, this.options.color)} ${texts[i].slice(0, Math.max(0, room))}`;
    });
  }
}

/**
 * One line per finished group and per tenth of the nodes settled, and a last line with the final counts: readable
 * in logs and CI output.
 */
export class LinesView implements ProgressView {
  private lastDecile = -1;
  private lastLine = '';
  private readonly announced = new Set<string>();

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly progress: BatchProgress,
  ) {}

  update(progress: BatchProgress, changed: GroupCounts | 'task' | undefined): void {
    if (changed && changed !== 'task' && changed.closed && !this.announced.has(changed.key)) {
      this.announced.add(changed.key);
      this.log(`group ${changed.key} ${changed.agent}: ${countsText(changed)}`);
    }
    const t = progress.totals;
    const settled = t.completed + t.failed + t.skipped;
    const decile = t.total === 0 ? 10 : Math.floor((settled / t.total) * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.progressLine();
    }
  }

  log(line: string): void {
    this.stream.write(`${line}\n`);
  }

  stop(): void {
    this.progressLine();
  }

  private progressLine(): void {
    const line = `progress: ${countsText(this.progress.totals)}`;
    if (line === this.lastLine) return;
    this.lastLine = line;
    this.log(line);
  }
}
