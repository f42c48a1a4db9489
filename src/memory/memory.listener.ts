import { Injectable, Logger } from '@nestjs/common';
import { findAgent } from '../agent';
import { type AgentCompletedEvent, type BatchStartedEvent, OnDomainEvent } from '../common';
import { MemoryDeliveryService } from './memory-delivery.service';
import { type MemoryEventDraft, memoryEventId, MemoryOutbox } from './memory-outbox';

/**
 * Detached listener: turns finished agents into learning-memory events in the durable outbox, then returns. It runs
 * outside the batch (`async: true`) and never rejects: a failure is logged and the batch is untouched.
 */
@Injectable()
export class MemoryListener {
  private readonly logger = new Logger(MemoryListener.name);

  constructor(
    private readonly outbox: MemoryOutbox,
    private readonly delivery: MemoryDeliveryService,
  ) {}

  @OnDomainEvent('agent.completed')
  onAgentCompleted(e: AgentCompletedEvent): Promise<void> {
    return this.append(`agent.completed ${e.taskId}/${e.nodeId}`, () => {
      const agent = findAgent(e.agentType);
      if (!agent) throw new Error(`agent "${e.agentType}" is not in the catalogue`);
      return {
        eventId: memoryEventId(e.taskId, e.groupIndex, e.nodeId, agent.name),
        taskId: e.taskId,
        canvasPath: e.canvasPath,
        nodeId: e.nodeId,
        agentType: agent.name,
        memoryType: agent.memoryEventType,
        concept: e.concept,
        createdAt: e.completedAt,
        payload: { group_id: e.groupId, file_path: e.filePath, duration_ms: e.durationMs },
      };
    });
  }

  @OnDomainEvent('batch.started')
  onBatchStarted(e: BatchStartedEvent): Promise<void> {
    return this.append(`batch.started ${e.taskId}`, () => {
      const agent = findAgent('canvas-orchestrator');
      return {
        eventId: memoryEventId(e.taskId, 'canvas_opened'),
        taskId: e.taskId,
        canvasPath: e.canvasPath,
        nodeId: null,
        agentType: 'canvas-orchestrator',
        memoryType: agent?.memoryEventType ?? 'canvas_opened',
        concept: e.canvasPath,
        createdAt: e.startedAt,
        payload: { total_nodes: e.totalNodes },
      };
    });
  }

  /**
   * Appends the event `draft` builds to the outbox and, for a new event, tells the drain loop (which only wakes if
   * idle). A throw of `draft` or a rejected append is logged, never passed on.
   */
  private async append(what: string, draft: () => MemoryEventDraft): Promise<void> {
    try {
      if (await this.outbox.append(draft())) this.delivery.notify();
    } catch (err) {
      this.logger.error(`memory event for ${what} not recorded: ${(err as Error).message}`);
    }
  }
}
