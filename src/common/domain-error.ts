/** One entry of a problem's `errors[]`: which input is wrong and why. */
export interface ProblemFieldError {
  /** JSON pointer-like location of the offending input, e.g. `groups[0].node_ids[2]` or `canvas_path`. */
  field: string;
  message: string;
}

/**
 * Base of every error the service raises on purpose. Each subclass names a stable `code`; the problem+json filter
 * maps codes to HTTP statuses in one table (`problem-table.ts`), so domain code never mentions HTTP.
 */
export abstract class DomainError extends Error {
  abstract readonly code: DomainErrorCode;

  constructor(
    message: string,
    readonly errors?: readonly ProblemFieldError[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export type DomainErrorCode =
  | 'validation-failed'
  | 'canvas-path-outside-vault'
  | 'canvas-not-found'
  | 'invalid-canvas'
  | 'unknown-node-ids'
  | 'duplicate-group-ids'
  | 'task-not-found'
  | 'invalid-task-id'
  | 'invalid-state-transition'
  | 'task-already-finished'
  | 'idempotency-key-reused'
  | 'budget-without-price'
  | 'json-too-deep'
  | 'unsupported-charset'
  | 'unsupported-content-encoding'
  | 'invalid-content-encoding'
  | 'shutting-down'
  | 'memory-unavailable'
  | 'no-eligible-nodes'
  | 'canvas-too-large';
