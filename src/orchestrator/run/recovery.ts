import { Injectable, Logger } from '@nestjs/common';
import { type BatchResumedEvent, taskLog } from '../../common';
import { type NodeResultRecord, TaskStore, type TaskRecord } from '../../session';
import { TaskLeases } from '../ownership/task-leases';
import { BatchRunner } from './batch-runner';
import { OutcomeRecorder } from './outcome-recorder';

/**
 * Recovery: picks up what a previous process left. `running` tasks continue (nodes with a stored outcome are not
 * run again, the deadline stays where it was, a `resumed` event continues the log, and `batch.resumed` hands the
 * nodes completed before to memory again); `pending` tasks start.
 */
@Injectable()
export class Recovery {
  private readonly logger = new Logger('BatchOrchestrator');

  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: TaskStore,
    private readonly recorder: OutcomeRecorder,
    private readonly batches: BatchRunner,
    private readonly leases: TaskLeases,
  ) {}

  /**
   * Picks up what is left now; with other processes (the distributed engine), also every half lease from now on:
   * a batch whose owner died (its lease expired) is taken over by whichever process gets its lease first.
   */
  async start(): Promise<void> {
    await this.resumeAll();
    if (!this.leases.shared || this.stopped) return;
    this.timer = setInterval(
      () => {
        this.round ??= this.resumeAll().finally(() => (this.round = undefined));
      },
      Math.max(100, Math.floor(this.leases.ttlMs / 2)),
    );
    this.timer.unref();
  }

  /** No more take-overs (shutdown); waits for a round in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.round;
  }

  /**
   * Resumes every unfinished task this process can own: all of them in one process; with others, those whose lease
   * it gets (a pending task only once it is older than a lease: its creator starts it in the meantime).
   */
  async resumeAll(): Promise<void> {
    for (const task of await this.store.unfinishedTasks()) {
      if (this.stopped) return;
      if (this.batches.get(task.taskId)) continue;
      if (this.leases.shared) {
        const young =
          task.status === 'pending' && Date.now() - Date.parse(task.createdAt) < this.leases.ttlMs;
        if (young || !(await this.leases.acquire(task.taskId))) continue;
      }
      try {
        if (task.status === 'pending') await this.batches.startBatchSession(task.taskId);
        else await this.resume(task);
      } catch (err) {
        await this.leases.release(task.taskId).catch(() => undefined);
        this.logger.error(
          taskLog(task.taskId, `task ${task.taskId} could not be resumed: ${(err as Error).message}`),
        );
      }
    }
  }

  private async resume(listed: TaskRecord): Promise<void> {
    // read again under the lease: the previous owner may have finished it since the list was read
    const task = await this.store.findTask(listed.taskId);
    if (!task || task.status !== 'running') return;
    const results = await this.store.nodeResults(task.taskId);
    await this.recorder.recordResumed(task, results);
    this.logger.log(
      taskLog(
        task.taskId,
        `resuming task ${task.taskId}: ${task.totalNodes - results.length} of ${task.totalNodes} node(s) left`,
      ),
    );
    this.batches.launch(task, { results, event: resumedEvent(task, results) });
  }
}

/**
 * `batch.resumed`: a process killed between storing a node's result and its detached memory hand-off would lose
 * that learning event, so every completed node is handed over again (memory's outbox ids are deterministic).
 */
function resumedEvent(task: TaskRecord, results: readonly NodeResultRecord[]): BatchResumedEvent {
  return {
    taskId: task.taskId,
    canvasPath: task.canvasPath,
    completed: results
      .filter((r) => r.outcome === 'completed')
      .map((r) => ({
        groupId: task.groups[r.groupIndex].groupId,
        groupIndex: r.groupIndex,
        nodeId: r.nodeId,
        agentType: task.groups[r.groupIndex].agentType,
        filePath: r.filePath ?? '',
        durationMs: r.durationMs ?? 0,
        completedAt: r.finishedAt,
      })),
  };
}
