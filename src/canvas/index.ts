export { CanvasModule } from './canvas.module';
export { CanvasService, type ResultToWrite, type WrittenResult } from './canvas.service';
export { CANVAS_COLOR, scoreBandColor } from './result-nodes';
export type { ResolvedCanvasPath } from './vault.service';
export { CanvasWriteError, NodeContentMissingError, NodeNotFoundError } from './canvas.errors';
export { parseCanvas, type CanvasDocument, type CanvasNode, type CanvasEdge } from './json-canvas';
