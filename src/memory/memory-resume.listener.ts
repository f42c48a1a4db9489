import { Injectable } from '@nestjs/common';
import { capNodeInput, conceptOf } from '../agent';
import { CanvasService, type ResolvedCanvasPath } from '../canvas';
import { type BatchResumedEvent, OnDomainEvent } from '../common';
import { OPTION_DEFAULTS } from '../config';
import { InjectMemoryOptions, type MemoryModuleOptions } from './memory.module-definition';
import { MemoryListener } from './memory.listener';

/**
 * Detached listener for `batch.resumed`. A process killed between storing a node's result and its detached
 * `agent.completed` hand-off would lose that learning event; so when a batch resumes, every node it completed before
 * is handed to `MemoryListener` again, its concept read from the canvas as it is now (the node id when it cannot
 * be read). The outbox ids are deterministic, so events already stored are not doubled. Never rejects.
 */
@Injectable()
export class MemoryResumeListener {
  private readonly maxInputChars: number;

  constructor(
    private readonly canvas: CanvasService,
    private readonly listener: MemoryListener,
    @InjectMemoryOptions() options: MemoryModuleOptions,
  ) {
    this.maxInputChars = options.maxInputChars ?? OPTION_DEFAULTS.maxInputChars;
  }

  @OnDomainEvent('batch.resumed')
  async onBatchResumed(e: BatchResumedEvent): Promise<void> {
    const canvas = await this.canvas.resolve(e.canvasPath).catch(() => undefined);
    for (const node of e.completed) {
      const concept = canvas ? await this.conceptOf(canvas, node.nodeId) : '';
      await this.listener.onAgentCompleted({
        ...node,
        taskId: e.taskId,
        canvasPath: e.canvasPath,
        concept: concept || node.nodeId,
      });
    }
  }

  /** What the node is about, as `agent.completed` had it; '' when the node cannot be read any more. */
  private conceptOf(canvas: ResolvedCanvasPath, nodeId: string): Promise<string> {
    return this.canvas
      .nodeContent(canvas, nodeId)
      .then((input) => conceptOf(capNodeInput(input, this.maxInputChars).input.content))
      .catch(() => '');
  }
}
