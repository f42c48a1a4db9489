import { Injectable } from '@nestjs/common';
import { DomainError, type DomainErrorCode } from '../common';
import { resolveMemoryDelivery } from '../config';
import { type MemoryEvent, MemoryOutbox } from './memory-outbox';
import { InjectMemoryOptions, type MemoryModuleOptions } from './memory.module-definition';
import { MemoryStore, type RecalledMemoryEvent, safeString } from './memory-store';

/** The longest a read of the outbox or of the store may take before the route answers without it. */
export const MAX_RECALL_MS = 5_000;
export const DEFAULT_CONCEPTS_LIMIT = 100;
export const MAX_CONCEPTS_LIMIT = 1_000;

/**
 * The outbox's word on an event: the store confirmed it (`delivered`), it waits for its first attempt (`pending`), or
 * attempts failed and it waits for the next one (`failing`).
 */
export type MemoryDeliveryOfEvent = 'delivered' | 'pending' | 'failing';

/** One learning event of a task as `GET /parallel/status/{task_id}/memory` shows it. */
export interface TaskMemoryEventView {
  event_id: string;
  /** The memory event type (`explanation_generated`, `canvas_opened`, …). */
  type: string;
  agent_type: string;
  /** When it happened (the agent finished, the batch started). */
  at: string;
  group_id: string | number | null;
  /** The result note it is about, when there is one. */
  file_path: string | null;
  delivery: MemoryDeliveryOfEvent;
  /** Delivery attempts so far, the successful one included; 0 for an event only the store knows. */
  attempts: number;
  /** Whether the store holds it: read back from the store, or `null` when the store could not be read. */
  in_store: boolean | null;
}

/** A node of the batch and what was learnt about it: its concept and its learning events, oldest first. */
export interface TaskMemoryConceptView {
  node_id: string;
  /** The node's concept (its heading or first line), as the events name it. */
  name: string;
  events: TaskMemoryEventView[];
}

/** How the store's side of an answer went. */
export type StoreReadOutcome = 'ok' | 'unavailable' | 'unsupported';

/** The body of `GET /parallel/status/{task_id}/memory`. */
export interface TaskMemoryView {
  task_id: string;
  /** `neo4j`, `embedded`, or a host store's kind. */
  store: string;
  /** Where events go (no credentials). */
  target: string;
  /** `ok`; `unavailable` (down, failing or slower than 5 s: see `store_error`); `unsupported` (no read side). */
  store_read: StoreReadOutcome;
  store_error: string | null;
  /** The task's learning events in the outbox, by delivery state (whole task, not only this page). */
  events: number;
  delivered: number;
  pending: number;
  failing: number;
  /** The task's events about no node (`canvas_opened`). */
  session_events: TaskMemoryEventView[];
  /** One entry per node, in the order their first event happened; paged. */
  concepts: TaskMemoryConceptView[];
  page: { offset: number; limit: number; total: number; next_offset: number | null };
}

export interface ConceptsPage {
  offset?: number;
  limit?: number;
}

/** What the store answered for a page: its events, or why there are none. */
export type StoreRead =
  | { outcome: 'ok'; events: readonly RecalledMemoryEvent[] }
  | { outcome: 'unavailable'; error: string }
  | { outcome: 'unsupported' };

/** The outbox (Redis, or SQLite beside a stuck disk) did not answer: nothing can be said about the task's memory. */
export class MemoryUnavailableError extends DomainError {
  readonly code: DomainErrorCode = 'memory-unavailable';
  constructor(reason: string) {
    super(`The learning-memory outbox cannot be read right now (${reason}); retry shortly`);
  }
}

/** The node ids of a task's events, each once, in the order of their first event. */
export function conceptOrder(events: readonly MemoryEvent[]): string[] {
  const seen = new Set<string>();
  for (const e of events) if (e.nodeId !== null) seen.add(e.nodeId);
  return [...seen];
}

/**
 * Builds the answer from the outbox's events of the task (every one, in delivery order) and what the store read back
 * for the page's nodes. Pure: the paging, the grouping and the delivery states are unit-tested here.
 */
export function taskMemoryView(
  head: { taskId: string; store: string; target: string },
  outbox: readonly MemoryEvent[],
  store: StoreRead,
  page: ConceptsPage = {},
): TaskMemoryView {
  const offset = page.offset ?? 0;
  const limit = page.limit ?? DEFAULT_CONCEPTS_LIMIT;
  const order = conceptOrder(outbox);
  const onPage = order.slice(offset, offset + limit);
  const wanted = new Set(onPage);
  const held = new Map(store.outcome === 'ok' ? store.events.map((e) => [e.eventId, e]) : []);
  const inStore = (id: string): boolean | null => (store.outcome === 'ok' ? held.has(id) : null);

  const counts = { delivered: 0, pending: 0, failing: 0 };
  const session: TaskMemoryEventView[] = [];
  const byNode = new Map<string, TaskMemoryConceptView>(
    onPage.map((nodeId) => [nodeId, { node_id: nodeId, name: '', events: [] }]),
  );
  const listed = new Set<string>();
  for (const e of outbox) {
    const delivery = deliveryOf(e);
    counts[delivery]++;
    if (e.nodeId !== null && !wanted.has(e.nodeId)) continue;
    const view = eventView(e, e.memoryType, delivery, e.attempts, inStore(e.eventId));
    listed.add(e.eventId);
    if (e.nodeId === null) session.push(view);
    else addTo(byNode.get(e.nodeId)!, e.concept, view);
  }
  // what the store holds and the outbox does not know (another outbox, or one that was reset): shown as delivered
  for (const e of held.values()) {
    if (listed.has(e.eventId)) continue;
    const view = eventView(e, e.type, 'delivered', 0, true);
    if (e.nodeId === null) session.push(view);
    else if (byNode.has(e.nodeId)) addTo(byNode.get(e.nodeId)!, e.concept, view);
  }
  const next = offset + onPage.length;
  return {
    task_id: head.taskId,
    store: head.store,
    target: head.target,
    store_read: store.outcome,
    store_error: store.outcome === 'unavailable' ? store.error : null,
    events: outbox.length,
    ...counts,
    session_events: session.sort(byTime),
    concepts: [...byNode.values()].map((c) => ({ ...c, events: c.events.sort(byTime) })),
    page: { offset, limit, total: order.length, next_offset: next < order.length ? next : null },
  };
}

function deliveryOf(e: MemoryEvent): MemoryDeliveryOfEvent {
  if (e.deliveredAt !== null) return 'delivered';
  return e.attempts > 0 ? 'failing' : 'pending';
}

function eventView(
  e: Pick<MemoryEvent, 'eventId' | 'agentType' | 'createdAt' | 'payload'>,
  type: string,
  delivery: MemoryDeliveryOfEvent,
  attempts: number,
  inStore: boolean | null,
): TaskMemoryEventView {
  const group = e.payload.group_id;
  const file = e.payload.file_path;
  return {
    event_id: e.eventId,
    type,
    agent_type: e.agentType,
    at: e.createdAt,
    group_id: typeof group === 'string' || typeof group === 'number' ? group : null,
    file_path: typeof file === 'string' ? file : null,
    delivery,
    attempts,
    in_store: inStore,
  };
}

function addTo(concept: TaskMemoryConceptView, name: string, view: TaskMemoryEventView): void {
  if (!concept.name) concept.name = name;
  concept.events.push(view);
}

/** Delivery order: time, then id (compared as the outbox and the stores do, by code unit). */
function byTime(a: TaskMemoryEventView, b: TaskMemoryEventView): number {
  return compare(a.at, b.at) || compare(a.event_id, b.event_id);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The read side of learning memory for one task: what the outbox recorded (and how far its delivery got) and what
 * the store holds of it. Each read is bounded (`MEMORY_ATTEMPT_TIMEOUT_MS`, at most 5 s): an outbox that cannot be read
 * is a `MemoryUnavailableError` (503); a store that cannot be read gives a partial answer from the outbox, saying so.
 */
@Injectable()
export class MemoryRecallService {
  private readonly boundMs: number;
  private readonly secrets: string[];

  constructor(
    private readonly outbox: MemoryOutbox,
    private readonly store: MemoryStore,
    @InjectMemoryOptions() options: MemoryModuleOptions,
  ) {
    this.boundMs = Math.min(MAX_RECALL_MS, resolveMemoryDelivery(options.memoryDelivery).attemptTimeoutMs);
    this.secrets = [options.neo4j?.password ?? ''].filter((s) => s.length >= 4);
  }

  /** The task's learning memory, a page of its concepts. The caller checked that the task exists. */
  async forTask(taskId: string, page: ConceptsPage = {}): Promise<TaskMemoryView> {
    let outbox: MemoryEvent[];
    try {
      outbox = await this.bounded('the outbox', () => this.outbox.forTask(taskId));
    } catch (err) {
      throw new MemoryUnavailableError(this.message(err));
    }
    const offset = page.offset ?? 0;
    const limit = page.limit ?? DEFAULT_CONCEPTS_LIMIT;
    const nodeIds = conceptOrder(outbox).slice(offset, offset + limit);
    const store = await this.readStore(taskId, nodeIds);
    const kind = safeString(() => this.store.kind, 'custom');
    return taskMemoryView(
      { taskId, store: kind, target: safeString(() => this.store.target, kind) },
      outbox,
      store,
      { offset, limit },
    );
  }

  private async readStore(taskId: string, nodeIds: string[]): Promise<StoreRead> {
    const store = this.store;
    if (typeof store.recall !== 'function') return { outcome: 'unsupported' };
    try {
      const events = await this.bounded('the store', (signal) => store.recall!({ taskId, nodeIds }, signal));
      if (!Array.isArray(events))
        throw new Error('the store answered something that is not a list of events');
      return { outcome: 'ok', events };
    } catch (err) {
      return { outcome: 'unavailable', error: this.message(err) };
    }
  }

  /** Runs a read with the bound; a read that does not settle in time is aborted and its late outcome dropped. */
  private bounded<T>(what: string, read: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const reason = new Error(`${what} did not answer within ${this.boundMs} ms`);
        controller.abort(reason);
        reject(reason);
      }, this.boundMs);
      let result: Promise<T>;
      try {
        result = Promise.resolve(read(controller.signal));
      } catch (err) {
        result = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      result.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** An error's message on one line, credentials redacted, at most 500 characters. */
  private message(err: unknown): string {
    const raw = err instanceof Error ? err.message || err.name : String(err);
    const redacted = this.secrets.reduce((t, s) => t.split(s).join('[redacted]'), raw);
    return redacted.replace(/\s+/g, ' ').trim().slice(0, 500);
  }
}
