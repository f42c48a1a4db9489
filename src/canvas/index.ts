export { CanvasModule } from './canvas.module';
export { CANVAS_OPTIONS, type CanvasModuleOptions } from './canvas.module-definition';
export {
  CanvasService,
  canvasReadError,
  resultCardIds,
  type ResultToWrite,
  type WrittenResult,
  type ResultFile,
  type ResultToPlace,
} from './canvas.service';
export { CANVAS_COLOR, capStructuredOutput, scoreBandColor } from './result-nodes';
export { IO_STALL_MS, VaultService, type ResolvedCanvasPath } from './vault.service';
export { VaultPathError } from './vault-fs';
export {
  CanvasPathOutsideVaultError,
  CanvasWriteError,
  InvalidCanvasError,
  NodeContentMissingError,
  NodeNotFoundError,
  UnknownNodeIdsError,
} from './canvas.errors';
export { parseCanvas, type CanvasDocument, type CanvasNode, type CanvasEdge } from './json-canvas';
export type { AdditionOutcome } from './canvas-writer';
