import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

export class VaultPathQueryDto {
  /** Vault-relative path, e.g. `Biology/cells.canvas`. */
  @ApiProperty({ example: 'Biology/cells.canvas' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(1024)
  path!: string;
}

export class CanvasEntryDto {
  /** Vault-relative path with `/` separators. */
  path!: string;
  /** Size in bytes. */
  size!: number;
  modified_at!: string;
}

export class CanvasListDto {
  canvases!: CanvasEntryDto[];
  /** True when the vault holds more canvases than were listed. */
  truncated!: boolean;
}

export class CanvasNodeDto {
  id!: string;
  /** `text`, `file`, `link`, `group` (or a plugin's own type). */
  type!: string;
  /** Canvas colour: a preset `1`..`6` or a hex colour like `#ff0000`. */
  @ApiPropertyOptional()
  color?: string;
  @ApiPropertyOptional()
  text?: string;
  @ApiPropertyOptional()
  file?: string;
  @ApiPropertyOptional()
  url?: string;
  @ApiPropertyOptional()
  label?: string;
  x!: number;
  y!: number;
  width!: number;
  height!: number;
  /** A result file node an earlier batch added (its file is in the canvas's `<name>-explanations/` folder). */
  result!: boolean;
}

export class CanvasNodesDto {
  canvas_path!: string;
  nodes!: CanvasNodeDto[];
}
