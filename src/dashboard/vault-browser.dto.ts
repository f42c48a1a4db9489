import { IsNotEmpty, IsString, Matches, MaxLength } from 'class-validator';

export class VaultPathQueryDto {
  /** Vault-relative path, e.g. `Biology/cells.canvas`. */
  @IsString()
  @IsNotEmpty()
  @MaxLength(1024)
  path!: string;
}

export class CanvasPathQueryDto extends VaultPathQueryDto {
  /** Only canvases, as `canvas_path` of a batch (another file would be refused later as an invalid canvas). */
  @Matches(/\.canvas$/, { message: 'path must end in .canvas' })
  declare path: string;
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
  color?: string;
  text?: string;
  file?: string;
  url?: string;
  label?: string;
  x!: number;
  y!: number;
  width!: number;
  height!: number;
  /**
   * A card the service added (a result file, question, score or hint card), as its store recorded when writing it;
   * also a file card linking into the canvas's `<name>-explanations/` folder (results of older versions).
   */
  result!: boolean;
}

export class CanvasNodesDto {
  canvas_path!: string;
  nodes!: CanvasNodeDto[];
}

/** A canvas as in its file, for the dashboard's canvas view. */
export class CanvasDocumentDto {
  canvas_path!: string;
  /** Every node with all its keys, in file order (the first is drawn at the bottom). */
  nodes!: Record<string, unknown>[];
  edges!: Record<string, unknown>[];
  /** Ids of the nodes the service added (result file, question, score and hint cards). */
  generated!: string[];
}
