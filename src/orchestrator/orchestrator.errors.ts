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

/**
 * Two groups of one request with the same `group_id`, and nothing else wrong: 422 like unknown node ids, since no
 * JSON Schema can say it (`uniqueItems` compares whole groups), so a schema-valid request can have it.
 */
export class DuplicateGroupIdsError extends DomainError {
  readonly code: DomainErrorCode = 'duplicate-group-ids';
  constructor(errors: ProblemFieldError[]) {
    super(
      `group_id must be unique within a request: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`,
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

/** `budget_usd` without a price to hold it to (`AGENT_PRICE_PER_MTOK` unset for an LLM provider or a host's runner). */
export class BudgetWithoutPriceError extends DomainError {
  readonly code: DomainErrorCode = 'budget-without-price';
  constructor() {
    super(
      'budget_usd cannot be enforced: the price per token is unknown (set AGENT_PRICE_PER_MTOK="INPUT,OUTPUT" in USD per million tokens, or leave budget_usd out)',
      [{ field: 'budget_usd', message: 'no price is configured (AGENT_PRICE_PER_MTOK)' }],
    );
  }
}
