import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { TASK_STATUSES, type TaskStatus } from '../../session';

export class TaskListQueryDto {
  @IsOptional()
  @IsIn(TASK_STATUSES)
  status?: TaskStatus;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;
}

export class CancelQueryDto {
  /** `graceful` (default): running nodes finish; `abort`: running nodes are aborted too. */
  @IsOptional()
  @IsIn(['graceful', 'abort'])
  mode?: 'graceful' | 'abort';
}

export class EventsQueryDto {
  /** Replay starts after this event id (same as the `Last-Event-ID` header). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  last_event_id?: number;

  /** The API token, for clients that cannot set headers (EventSource). */
  @IsOptional()
  access_token?: string;

  /** `deltas`: the running nodes' partial text as `task_output_delta` events too (live only, never replayed). */
  @IsOptional()
  @IsIn(['deltas'])
  include?: 'deltas';
}

export class StatusQueryDto {
  /** `summary`: counts and totals only, no `results`/`errors` entries (the same as `results_limit=0`). */
  @IsOptional()
  @IsIn(['full', 'summary'])
  view?: 'full' | 'summary';

  /** Per group, skip this many results (and errors), in the order they finished. */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  results_offset?: number;

  /**
   * Per group, list at most this many results (and errors). Default: all for tasks up to 10,000 nodes, 1,000 for
   * larger ones.
   */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(10_000)
  results_limit?: number;
}

export class TaskMemoryQueryDto {
  /** Skip this many concepts (nodes), in the order their first learning event happened. */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  offset?: number;

  /** List at most this many concepts (default 100). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1_000)
  limit?: number;
}
