import { ApiProperty } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsDefined,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  NotContains,
  registerDecorator,
  ValidateNested,
} from 'class-validator';
import { RUNNABLE_AGENT_NAMES } from '../../agent';

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
  @ApiProperty({
    oneOf: [{ type: 'string', minLength: 1, maxLength: 200 }, { type: 'integer' }],
    example: 'g1',
  })
  @IsDefined()
  @IsGroupId()
  group_id!: string | number;

  /** An agent from `GET /agents` (runnable ones; aliases accepted). */
  @ApiProperty({ enum: RUNNABLE_AGENT_NAMES, example: 'oral-explanation' })
  @IsString()
  agent_type!: string;

  /** Ids of nodes of the canvas, unique within the group. */
  @ApiProperty({ type: [String], minItems: 1, maxItems: 10_000, example: ['b10c0ffee0000001'] })
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
  @ApiProperty({ maxLength: 500, example: 'Biology/cells.canvas' })
  @IsString()
  @MaxLength(500)
  @NotContains('\0', { message: 'canvas_path must not contain NUL' })
  @Matches(/\.canvas$/, { message: 'canvas_path must end in .canvas' })
  canvas_path!: string;

  @ApiProperty({ type: [NodeGroupDto], minItems: 1, maxItems: 100 })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => NodeGroupDto)
  groups!: NodeGroupDto[];

  /** This batch's own cap (the process-wide `GLOBAL_MAX_CONCURRENT` still applies). */
  @ApiProperty({ required: false, minimum: 1, maximum: 50, default: 12 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(50)
  max_concurrent?: number;

  /** The whole batch's deadline in seconds. */
  @ApiProperty({ required: false, minimum: 60, maximum: 3600, default: 600 })
  @IsOptional()
  @IsInt()
  @Min(60)
  @Max(3600)
  timeout?: number;
}
