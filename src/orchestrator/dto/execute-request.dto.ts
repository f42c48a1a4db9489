import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsDefined,
  IsInt,
  IsNotEmpty,
  IsNumber,
  IsString,
  Max,
  MaxLength,
  Min,
  registerDecorator,
  ValidateNested,
} from 'class-validator';
import { IsAbsentOrSet, IsCanvasPath } from '../../common';

/** `group_id` may be a non-empty string (≤ 200 chars) or an integer; it is echoed back as given. */
function IsGroupId(): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'isGroupId',
      target: target.constructor,
      propertyName: String(propertyName),
      validator: {
        validate: (v: unknown) =>
          (typeof v === 'string' && v.length > 0 && v.length <= 200) ||
          (typeof v === 'number' && Number.isSafeInteger(v)),
        defaultMessage: () => 'group_id must be a non-empty string (at most 200 characters) or an integer',
      },
    });
}

export class NodeGroupDto {
  /** Echoed back exactly as given. */
  @IsDefined()
  @IsGroupId()
  group_id!: string | number;

  /** An agent from `GET /agents` (runnable ones; aliases accepted). */
  @IsString()
  agent_type!: string;

  /** Ids of nodes of the canvas, unique within the group. */
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(10_000)
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  @MaxLength(200, { each: true })
  node_ids!: string[];
}

export class ExecuteRequestDto {
  /** Vault-relative path of a `.canvas` file; must stay inside the vault (symlinks included). */
  @IsCanvasPath()
  canvas_path!: string;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => NodeGroupDto)
  groups!: NodeGroupDto[];

  /** This batch's own cap (the process-wide `GLOBAL_MAX_CONCURRENT` still applies). */
  @IsAbsentOrSet()
  @IsInt()
  @Min(1)
  @Max(50)
  max_concurrent?: number;

  /** The whole batch's deadline in seconds. */
  @IsAbsentOrSet()
  @IsInt()
  @Min(60)
  @Max(3600)
  timeout?: number;

  /** `false`: neither reuse cached outputs nor store new ones for this batch (the result cache). Default true. */
  @IsAbsentOrSet()
  @IsBoolean()
  cache?: boolean;
  /**
   * The batch's spending limit in USD: no node starts whose expected cost would take spent + reserved past it (those
   * fail with `BUDGET_EXCEEDED`). Needs a known price (`AGENT_PRICE_PER_MTOK`), else 422.
   */
  @IsAbsentOrSet()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(1_000_000)
  budget_usd?: number;
}
