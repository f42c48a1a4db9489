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
