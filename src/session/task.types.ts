export const TASK_STATUSES = [
  'pending',
  'running',
  'completed',
  'partial_failure',
  'failed',
  'cancelled',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export type TerminalStatus = Exclude<TaskStatus, 'pending' | 'running'>;

export function isTerminal(status: TaskStatus): status is TerminalStatus {
  return status !== 'pending' && status !== 'running';
}

const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string has the shape of a task id (a UUID); anything else is refused before any lookup. */
export function isTaskId(id: string): boolean {
  return TASK_ID.test(id);
}

/** Per-node error types (the `error_type` of `errors[]` and `task_failed`). */
export const NODE_ERROR_TYPES = [
  'NODE_NOT_FOUND',
  'NODE_CONTENT_MISSING',
  'AGENT_ERROR',
  'AGENT_TIMEOUT',
  'RATE_LIMITED',
  'AGENT_PROVIDER_ERROR',
  'AGENT_AUTH_FAILED',
  'AGENT_BAD_REQUEST',
  'AGENT_INVALID_OUTPUT',
  'CANVAS_WRITE_FAILED',
  'CANCELLED',
  'TIMEOUT',
  'BUDGET_EXCEEDED',
] as const;
export type NodeErrorType = (typeof NODE_ERROR_TYPES)[number];

/** One group of a task as submitted. `groupId` is echoed back exactly as given (string or integer). */
export interface GroupSpec {
  groupId: string | number;
  agentType: string;
  nodeIds: string[];
}

export interface PerformanceMetrics {
  total_duration_seconds: number;
  average_duration_per_node: number;
  parallel_efficiency: number;
  peak_concurrent: number;
}

export interface TokenTotals {
  input_tokens: number;
  output_tokens: number;
}

export interface TaskRecord {
  taskId: string;
  canvasPath: string;
  status: TaskStatus;
  maxConcurrent: number;
  /** The whole batch's deadline, from start. */
  timeoutMs: number;
  groups: GroupSpec[];
  totalNodes: number;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  deadlineAt: string | null;
  errorMessage: string | null;
  metrics: PerformanceMetrics | null;
  lastEventId: number;
  idempotencyKey: string | null;
  /** How many times a restart resumed this task. */
  resumeCount: number;
  /** Most agents of this task seen running at once so far (kept across restarts). */
  peakConcurrent: number;
  /** Set once a cancel was requested (`graceful` or `abort`), so a restart does not run the rest. */
  cancelRequested: 'graceful' | 'abort' | null;
  /** `false`: the batch opted out of the result cache (`cache: false`); absent: it uses it. */
  cache?: boolean;
  /** The batch's spending limit in USD (`budget_usd`); null without one. */
  budgetUsd: number | null;
}

export type NodeOutcome = 'completed' | 'failed' | 'skipped';

export interface NodeResultRecord {
  groupIndex: number;
  nodeId: string;
  outcome: NodeOutcome;
  filePath?: string;
  fileSize?: number;
  durationMs?: number;
  errorMessage?: string;
  errorType?: NodeErrorType;
  inputTokens: number;
  outputTokens: number;
  /** Provider calls made for the node (retries included); 0 for a node that never called its agent. */
  attempts?: number;
  /** What the size caps left out of a completed node's run; absent when nothing was cut. */
  truncated?: NodeTruncation;
  /** `true`: a completed node whose output came from the result cache (no provider call); absent otherwise. */
  cached?: boolean;
  /** The agent a node of an `auto` group was routed to (absent for other nodes, and before it was routed). */
  routing?: NodeRouting;
  startedAt?: string;
  finishedAt: string;
}

/** How a node of an `auto` group was routed when it ran. */
export interface NodeRouting {
  agentType: string;
  /** 0–1 (≥ 0.85 high, < 0.70 low). */
  confidence: number;
  routedBy: 'rules' | 'model';
}

/** Characters the size caps left out of one node's run (each member only when not 0). */
export interface NodeTruncation {
  /** Of the node's content, beyond the input cap (`AGENT_MAX_INPUT_CHARS`): the agent saw only the start. */
  inputChars?: number;
  /** Of the agent's output, beyond the result file's cap (`RESULT_MAX_BYTES`). */
  resultChars?: number;
  /** Of the agent's structured output, left off the canvas cards (they point to the result file). */
  canvasChars?: number;
}

/** One stored event of a task's log; `id` is the per-task sequence number (1, 2, 3 …) SSE uses. */
export interface TaskEventRecord {
  id: number;
  taskId: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

export interface NewTask {
  taskId: string;
  canvasPath: string;
  maxConcurrent: number;
  timeoutMs: number;
  groups: GroupSpec[];
  createdAt: string;
  /** `false`: the batch opted out of the result cache. Default true. */
  cache?: boolean;
  /** The batch's spending limit in USD; absent: none. */
  budgetUsd?: number;
}

/** Fields set together with a state transition. */
export interface TransitionPatch {
  startedAt?: string;
  completedAt?: string;
  deadlineAt?: string;
  errorMessage?: string | null;
  metrics?: PerformanceMetrics;
  expiresAt?: string;
}
