import { DomainError, type DomainErrorCode, type ProblemFieldError } from '../common';

export class BatchValidationError extends DomainError {
  readonly code: DomainErrorCode = 'validation-failed';
  constructor(errors: ProblemFieldError[]) {
    super(
      `The request has ${errors.length} problem(s): ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`,
      errors,
    );
  }
}

export class ShuttingDownError extends DomainError {
  readonly code: DomainErrorCode = 'shutting-down';
  constructor() {
    super('The service is shutting down and accepts no new batches; retry shortly');
  }
}

/** Another process of the service holds the batch's lease (it runs the batch): this one does not start it. */
export class TaskOwnedElsewhereError extends DomainError {
  readonly code: DomainErrorCode = 'invalid-state-transition';
  constructor(readonly taskId: string) {
    super(`Task ${taskId} is run by another process of the service`);
  }
}
