import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { TaskStatusDto } from '../orchestrator';
import type { TaskEvent } from './api-client';

export interface GroupCounts {
  key: string;
  agent: string;
  total: number;
  completed: number;
  failed: number;
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
      closed: false,
    }));
  }

  get settled(): number {
    return this.groups.reduce((n, g) => n + (g.closed ? g.total : g.completed + g.failed), 0);
  }

  get percent(): number {
    const total = this.task.total_nodes;
    return total === 0 ? 100 : Math.floor((this.settled / total) * 100);
  }

  /** Applies one event; returns the group it changed, `'task'` for the task's end, or undefined. */
  apply(e: TaskEvent): GroupCounts | 'task' | undefined {
    switch (e.type) {
      case 'task_completed': {
        const group = this.group(e.data.group_id);
        if (group) group.completed++;
        return group;
      }
      case 'task_failed': {
        const group = this.group(e.data.group_id);
        if (group) group.failed++;
        return group;
      }
      case 'group_completed': {
        const group = this.group(e.data.group_id);
        if (!group) return undefined;
        group.completed = e.data.completed_nodes;
        group.failed = e.data.failed_nodes;
        group.closed = true;
        return group;
      }
      case 'session_completed':
        this.finalStatus = e.data.status;
        for (const g of this.groups) g.closed = true;
        return 'task';
      default:
        return undefined;
    }
  }

  private group(groupId: string | number): GroupCounts | undefined {
    return this.groups.find((g) => g.key === String(groupId));
  }
}

/** Where live progress goes: bars on a terminal, plain lines otherwise. */
export interface ProgressView {
  update(progress: BatchProgress, changed: GroupCounts | 'task' | undefined): void;
  log(line: string): void;
  stop(): void;
}

/** Per-group bars and a total bar (cli-progress), redrawn in place. */
export class BarsView implements ProgressView {
  private readonly multi: MultiBar;
  private readonly bars = new Map<string, SingleBar>();
  private readonly total: SingleBar;

  constructor(stream: NodeJS.WritableStream, progress: BatchProgress) {
    this.multi = new MultiBar(
      {
        stream,
        format: ' {label} {bar} {percentage}% | {value}/{total} | {failed} failed',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
        barsize: 30,
        fps: 10,
      },
      Presets.shades_classic,
    );
    const width = Math.max(5, ...progress.groups.map((g) => label(g).length));
    for (const g of progress.groups) {
      this.bars.set(g.key, this.multi.create(g.total, 0, { label: label(g).padEnd(width), failed: 0 }));
    }
    this.total = this.multi.create(progress.task.total_nodes, 0, {
      label: 'total'.padEnd(width),
      failed: 0,
    });
  }

  update(progress: BatchProgress): void {
    let failed = 0;
    for (const g of progress.groups) {
      failed += g.failed;
      this.bars.get(g.key)?.update(g.closed ? g.total : g.completed + g.failed, { failed: g.failed });
    }
    this.total.update(progress.settled, { failed });
  }

  log(line: string): void {
    this.multi.log(`${line}\n`);
  }

  stop(): void {
    this.multi.stop();
  }
}

/** One line per finished group and per 10 % of overall progress: readable in logs and CI output. */
export class LinesView implements ProgressView {
  private lastDecile = -1;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  update(progress: BatchProgress, changed: GroupCounts | 'task' | undefined): void {
    if (changed && changed !== 'task' && changed.closed && !this.announced.has(changed.key)) {
      this.announced.add(changed.key);
      this.log(
        `group ${label(changed)}: ${changed.completed}/${changed.total} completed, ${changed.failed} failed`,
      );
    }
    const decile = Math.floor(progress.percent / 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.log(`progress ${progress.percent}% (${progress.settled}/${progress.task.total_nodes})`);
    }
  }

  private readonly announced = new Set<string>();

  log(line: string): void {
    this.stream.write(`${line}\n`);
  }

  stop(): void {
    /* nothing to clear */
  }
}

function label(g: GroupCounts): string {
  return `${g.key} ${g.agent}`;
}
