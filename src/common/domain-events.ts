import { OnEvent } from '@nestjs/event-emitter';

/** Emitted when an agent finished a node successfully. */
export interface AgentCompletedEvent {
  taskId: string;
  canvasPath: string;
  groupId: string | number;
  groupIndex: number;
  nodeId: string;
  agentType: string;
  /** Short description of what the node is about (its heading or first line). */
  concept: string;
  filePath: string;
  durationMs: number;
  completedAt: string;
}

/** Emitted when a batch starts running over a canvas. */
export interface BatchStartedEvent {
  taskId: string;
  canvasPath: string;
  totalNodes: number;
  startedAt: string;
}

/**
 * Emitted when a process resumes a batch a previous process left running. Memory hands every completed node of it
 * to the outbox again (ids are deterministic, so nothing is doubled): a crash between a node's stored outcome and
 * its detached `agent.completed` hand-off loses no learning event.
 */
export interface BatchResumedEvent {
  taskId: string;
  canvasPath: string;
  /** The nodes completed before the restart, as `agent.completed` had them (concept read again by memory). */
  completed: Array<Omit<AgentCompletedEvent, 'taskId' | 'canvasPath' | 'concept'>>;
}

/** Every in-process domain event by name: names and payloads are checked by the compiler. */
export interface DomainEventMap {
  'agent.completed': AgentCompletedEvent;
  'batch.started': BatchStartedEvent;
  'batch.resumed': BatchResumedEvent;
}

export type DomainEventName = keyof DomainEventMap;

/** Subscribes a method to a domain event, detached from the emitter (`async: true`): it never blocks a batch. */
export const OnDomainEvent = (name: DomainEventName): MethodDecorator =>
  OnEvent(name, { async: true, promisify: true });
