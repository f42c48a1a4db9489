import { DomainError, type DomainErrorCode, type ProblemFieldError } from '../common';

export class CanvasPathOutsideVaultError extends DomainError {
  readonly code: DomainErrorCode = 'canvas-path-outside-vault';
  constructor(canvasPath: string, reason: string) {
    super(`canvas_path "${canvasPath}" is refused: ${reason}`, [{ field: 'canvas_path', message: reason }]);
  }
}

export class CanvasNotFoundError extends DomainError {
  readonly code: DomainErrorCode = 'canvas-not-found';
  constructor(canvasPath: string) {
    super(`No canvas file at "${canvasPath}" in the vault`);
  }
}

export class InvalidCanvasError extends DomainError {
  readonly code: DomainErrorCode = 'invalid-canvas';
  constructor(canvasPath: string, errors: ProblemFieldError[]) {
    super(`"${canvasPath}" is not a valid JSON Canvas file (${errors.length} problem(s))`, errors);
  }
}

/** Most unknown node ids listed one by one in `errors[]`; the message counts them all. */
export const MAX_LISTED_UNKNOWN_IDS = 1000;

export class UnknownNodeIdsError extends DomainError {
  readonly code: DomainErrorCode = 'unknown-node-ids';
  /** `errors`: one per unknown id (only the first `MAX_LISTED_UNKNOWN_IDS` are kept); `total`: how many there are. */
  constructor(canvasPath: string, errors: ProblemFieldError[], total = errors.length) {
    const listed = errors.slice(0, MAX_LISTED_UNKNOWN_IDS);
    super(
      `${total} node id(s) are not in "${canvasPath}"` +
        (total > listed.length ? ` (the first ${listed.length} are listed in errors)` : '') +
        `: use ids of nodes in this canvas (GET /canvases/nodes?path=${canvasPath} lists them)`,
      listed,
    );
  }
}

/** A node's content could not be had; the node fails with `error_type` NODE_NOT_FOUND. */
export class NodeNotFoundError extends Error {
  readonly errorType = 'NODE_NOT_FOUND';
  constructor(message: string) {
    super(message);
    this.name = 'NodeNotFoundError';
  }
}

/**
 * A file node's file cannot be read: it is missing, outside the vault, a directory (or another non-regular file), or
 * its subpath names a heading or block the file does not have. The node fails with `error_type`
 * NODE_CONTENT_MISSING.
 */
export class NodeContentMissingError extends Error {
  readonly errorType = 'NODE_CONTENT_MISSING';
  constructor(message: string) {
    super(message);
    this.name = 'NodeContentMissingError';
  }
}

/** Writing a result file or the canvas failed; the node fails with `error_type` CANVAS_WRITE_FAILED. */
export class CanvasWriteError extends Error {
  readonly errorType = 'CANVAS_WRITE_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CanvasWriteError';
  }
}
