import { Injectable, Logger } from '@nestjs/common';
import { type BatchResumedEvent, taskLog } from '../../common';
import { type NodeResultRecord, TaskStore, type TaskRecord } from '../../session';
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

  constructor(
    private readonly store: TaskStore,
    private readonly recorder: OutcomeRecorder,
    private readonly batches: BatchRunner,
  ) {}

  async resumeAll(): Promise<void> {
    for (const task of await this.store.unfinishedTasks()) {
      try {
        if (task.status === 'pending') await this.batches.startBatchSession(task.taskId);
        else await this.resume(task);
      } catch (err) {
        this.logger.error(
          taskLog(task.taskId, `task ${task.taskId} could not be resumed: ${(err as Error).message}`),
        );
      }
    }
  }

  private async resume(task: TaskRecord): Promise<void> {
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
