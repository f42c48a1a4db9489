import type {
  GroupSpec,
  NodeErrorType,
  NodeRouting,
  PerformanceMetrics,
  TaskEventRecord,
  TerminalStatus,
} from './task.types';

/*
 * The task events of the API, one vocabulary for producers and consumers: each event's name selects its payload,
 * and the compiler checks both. These types are the wire contract (specs/api/parallel-api.openapi.yml, `x-sse-events`;
 * specs/data/parallel-task.schema.json, `TaskEvent`), member for member: snake_case as on the wire.
 * task-events.spec.ts checks that these are the spec's names and members, and that events built here validate.
 *
 * The payloads are type aliases, not interfaces, so that an event is also a plain JSON record to the store
 * (`EventDraft`, `TaskEventRecord`), which keeps payloads opaque.
 */

/** `data` of `progress_update`: sent when the task starts and every 500 ms while it runs. */
export type ProgressUpdateData = {
  progress_percent: number;
  completed_nodes: number;
  failed_nodes: number;
  total_nodes: number;
  running_nodes: number;
  /** The process-wide concurrency limit in force now. */
  concurrency_limit: number;
  status: 'running';
  /** Tokens billed so far by the nodes with an outcome; `cost_usd` when a price is configured. */
  usage?: { input_tokens: number; output_tokens: number; cost_usd?: number };
  /** A budgeted batch's money (`budget_usd`): limit, spent, reserved by running nodes, remaining. */
  budget?: { limit_usd: number; spent_usd: number; reserved_usd: number; remaining_usd: number };
};

/**
 * What the size caps left out of a node's run, as on the wire: each member only when not 0 (the HTTP layer's
 * `TruncationDto` has the same members).
 */
export type TruncationData = {
  /** Of the node's content, beyond `AGENT_MAX_INPUT_CHARS`: the agent was given only the start. */
  input_chars?: number;
  /** Of the agent's output, beyond `RESULT_MAX_BYTES`: the result file ends with a truncation note. */
  result_chars?: number;
  /** Of the agent's structured output, left off the canvas cards (each cut card ends with a note). */
  canvas_chars?: number;
};

/** `data` of `task_completed`: a node completed and its result was written. */
export type TaskCompletedData = {
  node_id: string;
  group_id: GroupSpec['groupId'];
  agent_type: string;
  file_path: string;
  file_size: number;
  duration_ms: number;
  /** Present when the size caps cut something of the node. */
  truncated?: TruncationData;
  /** Present (`true`) when the output came from the result cache: no provider call, no tokens. */
  cached?: true;
  /** A node of an `auto` group: how it was routed (`agent_type` is the agent chosen). */
  routing?: RoutingData;
};

/** How a node of an `auto` group was routed. */
export type RoutingData = { confidence: number; routed_by: 'rules' | 'model' };

/** `routing` as events and the status say it (`agent_type` goes beside it, as the node's agent). */
export function routingData(routing: NodeRouting): RoutingData {
  return { confidence: routing.confidence, routed_by: routing.routedBy };
}

/** `data` of `task_failed`: a node failed (its siblings go on). */
export type TaskFailedData = {
  node_id: string;
  group_id: GroupSpec['groupId'];
  agent_type: string;
  error_message: string;
  error_type: NodeErrorType;
  routing?: RoutingData;
};

/** `data` of `group_completed`: every node of a group settled. */
export type GroupCompletedData = {
  group_id: GroupSpec['groupId'];
  agent_type: string;
  status: TerminalStatus;
  completed_nodes: number;
  failed_nodes: number;
};

/** `data` of `cancelled`: the task ended cancelled (sent just before `session_completed`). */
export type CancelledData = {
  status: 'cancelled';
  completed_before_cancel: number;
};

/** `data` of `error`: a task-level error, the deadline passed (`TIMEOUT`) or the batch could not run. */
export type ErrorData = {
  error_type: 'TIMEOUT' | 'EXECUTION_ERROR';
  message: string;
  recoverable: boolean;
};

/** `data` of `resumed`: a restarted service picked the task up again. */
export type ResumedData = {
  resume_count: number;
  completed_nodes: number;
  failed_nodes: number;
  remaining_nodes: number;
};

/** `data` of `session_completed`: always the last event of a task. */
export type SessionCompletedData = {
  status: TerminalStatus;
  /** Seconds. */
  total_duration: number;
  success_count: number;
  failure_count: number;
  performance_metrics: PerformanceMetrics;
};

/** Every task event by name (the SSE `event:` name and the `type` of its data) → its payload. */
export type TaskEventPayloads = {
  progress_update: ProgressUpdateData;
  task_completed: TaskCompletedData;
  task_failed: TaskFailedData;
  group_completed: GroupCompletedData;
  cancelled: CancelledData;
  error: ErrorData;
  resumed: ResumedData;
  session_completed: SessionCompletedData;
};

export type TaskEventType = keyof TaskEventPayloads;

/** An event as its producer builds it, before the log gives it a task and an id. */
export type TaskEventDraft<K extends TaskEventType = TaskEventType> = {
  [T in K]: { type: T; timestamp: string; data: TaskEventPayloads[T] };
}[K];

/** An event as stored in the task's log and published: `id` is its per-task sequence number (the SSE `id:`). */
export type TaskEvent<K extends TaskEventType = TaskEventType> = {
  [T in K]: { id: number; taskId: string; type: T; timestamp: string; data: TaskEventPayloads[T] };
}[K];

/** The JSON of an SSE `data:` line: `{ type, task_id, timestamp, data }` (the spec's `TaskEvent`). */
export type WireTaskEvent<K extends TaskEventType = TaskEventType> = {
  [T in K]: { type: T; task_id: string; timestamp: string; data: TaskEventPayloads[T] };
}[K];

/** Each name once, checked by the compiler against `TaskEventPayloads` (a missing or an extra name does not compile). */
const NAMES: { readonly [K in TaskEventType]: K } = {
  progress_update: 'progress_update',
  task_completed: 'task_completed',
  task_failed: 'task_failed',
  group_completed: 'group_completed',
  cancelled: 'cancelled',
  error: 'error',
  resumed: 'resumed',
  session_completed: 'session_completed',
};

/** Every task event name, in the spec's order. */
export const TASK_EVENT_TYPES: readonly TaskEventType[] = Object.values(NAMES);

export function isTaskEventType(type: string): type is TaskEventType {
  return Object.hasOwn(NAMES, type);
}

/**
 * The one way to build a task event: the name selects the payload type, so a misspelt name, a missing or an extra
 * member, or a member of the wrong type does not compile.
 */
export function taskEvent<K extends TaskEventType>(
  type: K,
  timestamp: string,
  data: TaskEventPayloads[K],
): { type: K; timestamp: string; data: TaskEventPayloads[K] } {
  return { type, timestamp, data };
}

/**
 * A record of the log as the typed event it was built as (the boundary where stored events become typed ones).
 * Events are built only through `taskEvent`, so the name decides the payload; a name outside the vocabulary is a
 * programming error and throws.
 */
export function asTaskEvent(record: TaskEventRecord): TaskEvent {
  if (!isTaskEventType(record.type)) throw new TypeError(`"${record.type}" is not a task event type`);
  return record as TaskEvent;
}

/** Throws a `TypeError` when a draft's name is outside the vocabulary: the log refuses it before storing anything. */
export function assertTaskEventTypes(drafts: readonly { type: string }[]): void {
  for (const d of drafts) {
    if (!isTaskEventType(d.type)) throw new TypeError(`"${d.type}" is not a task event type`);
  }
}
