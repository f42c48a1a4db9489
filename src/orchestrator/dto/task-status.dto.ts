import type { NodeErrorType, NodeTruncation, TaskStatus } from '../../session';

export class UsageDto {
  input_tokens!: number;
  output_tokens!: number;
  /** Estimated cost in USD, from the configured price table (`AGENT_PRICE_PER_MTOK`); absent without one. */
  cost_usd?: number;
}

export class PerformanceMetricsDto {
  /** Wall time from start to end (or to now while running). */
  total_duration_seconds!: number;
  /** Mean duration of the nodes that ran, in seconds. */
  average_duration_per_node!: number;
  /** Sum of node durations / (wall time × min(max_concurrent, total_nodes)); 1.0 = every slot busy all the time. */
  parallel_efficiency!: number;
  /** Most nodes of this task running at once. */
  peak_concurrent!: number;
}

export class TaskPerformanceMetricsDto extends PerformanceMetricsDto {
  /**
   * The process-wide concurrency limit in force now: `GLOBAL_MAX_CONCURRENT`, lowered while the provider answers
   * 429 (adaptive concurrency).
   */
  concurrency_limit!: number;
}

/**
 * Characters the size caps left out of a node's run — each member only when not 0, the object only when something
 * was cut. The result file says so too.
 */
export class TruncationDto {
  /** Of the node's content, beyond `AGENT_MAX_INPUT_CHARS`: the agent was given only the start. */
  input_chars?: number;
  /** Of the agent's output, beyond `RESULT_MAX_BYTES`: the result file ends with a truncation note. */
  result_chars?: number;
  /** Of the agent's structured output, left off the canvas cards (each cut card ends with a note). */
  canvas_chars?: number;
}

/** The wire form of what the caps left out, or `undefined` when nothing was. */
export function truncationView(t: NodeTruncation | undefined): TruncationDto | undefined {
  if (!t) return undefined;
  const view: TruncationDto = {
    ...(t.inputChars && { input_chars: t.inputChars }),
    ...(t.resultChars && { result_chars: t.resultChars }),
    ...(t.canvasChars && { canvas_chars: t.canvasChars }),
  };
  return Object.keys(view).length ? view : undefined;
}

export class NodeResultDto {
  node_id!: string;
  /** Vault-relative; the file exists with exactly `file_size` bytes. */
  file_path!: string;
  file_size!: number;
  duration_ms!: number;
  usage!: UsageDto;
  /** Provider calls made for this node (1 without retries). */
  attempts!: number;
  /** Present when the size caps cut the node's input, its result file or its canvas cards. */
  truncated?: TruncationDto;
  /** Present (`true`) when the output came from the result cache: no provider call (`attempts` 0), no tokens. */
  cached?: true;
  /** A node of an `auto` group: the agent it was routed to when it ran. */
  agent_type?: string;
  routing?: RoutingDto;
}

/** How a node of an `auto` group was routed: the confidence (0–1) and whether the patterns or the model chose. */
export class RoutingDto {
  confidence!: number;
  routed_by!: 'rules' | 'model';
}

export class NodeErrorDto {
  node_id!: string;
  error_message!: string;
  error_type!: NodeErrorType;
  /** Provider calls made for this node before it failed (0 when the agent was never called). */
  attempts!: number;
  /** Tokens billed for the node's calls (e.g. answers rejected as invalid). */
  usage!: UsageDto;
  /** A node of an `auto` group routed before it failed: the agent chosen. */
  agent_type?: string;
  routing?: RoutingDto;
}

export class RunningNodeDto {
  node_id!: string;
  started_at!: string;
}

export class GroupStatusDto {
  group_id!: string | number;
  agent_type!: string;
  status!: TaskStatus;
  total_nodes!: number;
  completed_nodes!: number;
  failed_nodes!: number;
  /** Nodes never started because of a cancel or the batch deadline (not listed in `errors`). */
  skipped_nodes!: number;
  /** The group's node ids as submitted; only for tasks of at most 10,000 nodes, and not in a summary. */
  node_ids?: string[];
  /** While the task runs in this process: its nodes started and not settled yet, with when they started. */
  running?: RunningNodeDto[];
  results!: NodeResultDto[];
  errors!: NodeErrorDto[];
}

export class ResultsPageDto {
  offset!: number;
  limit!: number | null;
}

export class SchedulerStatusDto {
  /**
   * `fair`: round-robin between batches, longest expected first within one; `least-work`: the batch with the least
   * expected work not started yet first, longest expected first within one; `fifo`: first come, first served.
   */
  policy!: 'fair' | 'least-work' | 'fifo';
  /** This batch's nodes holding its own slot and waiting for a process-wide one. */
  waiting_for_slot!: number;
  /** The process-wide limit in force (at most `global_capacity`). */
  global_limit!: number;
  /** `GLOBAL_MAX_CONCURRENT`. */
  global_capacity!: number;
  global_in_use!: number;
  global_waiting!: number;
  /** Expected duration of one node per agent type, learned from completed nodes. */
  estimated_duration_ms!: Record<string, number>;
}

export class TaskStatusDto {
  task_id!: string;
  canvas_path!: string;
  status!: TaskStatus;
  /** floor((completed + failed + skipped) / total × 100); 100 only when terminal. */
  progress_percent!: number;
  total_groups!: number;
  total_nodes!: number;
  completed_nodes!: number;
  failed_nodes!: number;
  skipped_nodes!: number;
  max_concurrent!: number;
  /** The batch deadline in seconds. */
  timeout!: number;
  created_at!: string;
  started_at!: string | null;
  completed_at!: string | null;
  error_message!: string | null;
  groups!: GroupStatusDto[];
  performance_metrics!: TaskPerformanceMetricsDto;
  usage!: UsageDto;
  /**
   * Present when `results`/`errors` are a page, not the whole list: each group lists at most `limit` of each from
   * `offset` on (`limit` null: no limit). The group's counts give the totals.
   */
  results_page?: ResultsPageDto;
  /** While the task runs: the process-wide scheduler as it concerns this batch. */
  scheduler?: SchedulerStatusDto;
  /** A budgeted batch's money (`budget_usd`): limit, spent, reserved by running nodes, remaining. */
  budget?: BudgetDto;
}

export class BudgetDto {
  limit_usd!: number;
  /** What the nodes' provider calls cost so far. */
  spent_usd!: number;
  /** The expected cost of the nodes running now. */
  reserved_usd!: number;
  /** limit − spent − reserved, never below 0. */
  remaining_usd!: number;
}

export class TaskLinksDto {
  status!: string;
  events!: string;
  cancel!: string;
}

export class ExecuteAcceptedDto {
  task_id!: string;
  status!: TaskStatus;
  canvas_path!: string;
  total_groups!: number;
  total_nodes!: number;
  created_at!: string;
  links!: TaskLinksDto;
}

export class CancelResponseDto {
  success!: true;
  message!: string;
  status!: TaskStatus;
  completed_count!: number;
}

export class TaskSummaryDto {
  task_id!: string;
  canvas_path!: string;
  status!: TaskStatus;
  progress_percent!: number;
  total_groups!: number;
  total_nodes!: number;
  completed_nodes!: number;
  failed_nodes!: number;
  skipped_nodes!: number;
  created_at!: string;
  completed_at!: string | null;
}

export class TaskListDto {
  tasks!: TaskSummaryDto[];
}
