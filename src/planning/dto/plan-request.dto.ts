import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsInt,
  IsNotEmpty,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import { IsAbsentOrSet, IsCanvasPath } from '../../common';

export class PlanRequestDto {
  /** Vault-relative path of a `.canvas` file; must stay inside the vault. */
  @IsCanvasPath()
  canvas_path!: string;

  /** Only these nodes (default: every node of the canvas); ids not in the canvas are left out as `not_found`. */
  @IsAbsentOrSet()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20_000)
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  @MaxLength(200, { each: true })
  node_ids?: string[];

  /** Only nodes of this JSON Canvas colour: a preset `1`..`6` or `#rrggbb`. */
  @IsAbsentOrSet()
  @IsString()
  @Matches(/^([1-6]|#[0-9a-fA-F]{6})$/, {
    message: 'colour must be a preset "1".."6" or a hex colour #rrggbb',
  })
  colour?: string;

  /** Most groups to suggest (K is chosen up to it; default range 3–10). */
  @IsAbsentOrSet()
  @IsInt()
  @Min(1)
  @Max(20)
  max_groups?: number;
}

export type LeftOutReason =
  | 'generated'
  | 'empty'
  | 'group'
  | 'link'
  | 'not_found'
  | 'colour'
  | 'not_markdown'
  | 'unreadable'
  | 'unsupported';

export class PlannedGroupDto {
  group_id!: string;
  /** Readable: the group's top TF-IDF terms. */
  name!: string;
  node_ids!: string[];
  /** A runnable agent (canonical name). */
  agent_type!: string;
  /** 0–1: ≥ 0.85 high, < 0.70 low. */
  confidence!: number;
  reason!: string;
  routed_by!: 'rules' | 'model';
  priority!: 'high' | 'normal' | 'low';
  priority_reason?: string;
}

export class PlanClusteringDto {
  k!: number;
  /** Mean silhouette (cosine distance, −1..1) of the chosen K; null when there was no choice of K. */
  silhouette!: number | null;
  warning?: string;
}

export class LeftOutNodeDto {
  node_id!: string;
  reason!: LeftOutReason;
}

export class PlanExecuteGroupDto {
  group_id!: string;
  agent_type!: string;
  node_ids!: string[];
}

export class PlanResponseDto {
  canvas_path!: string;
  groups!: PlannedGroupDto[];
  clustering!: PlanClusteringDto;
  left_out!: LeftOutNodeDto[];
  /** A ready body for `POST /parallel/execute`. */
  execute!: { canvas_path: string; groups: PlanExecuteGroupDto[] };
}
