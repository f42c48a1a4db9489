import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { DomainError, type DomainErrorCode, type ProblemFieldError } from './domain-error';

export class RequestValidationError extends DomainError {
  readonly code: DomainErrorCode = 'validation-failed';
  constructor(errors: ProblemFieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; '), errors);
  }
}

/** Nested class-validator errors as `{ field: 'groups[0].node_ids', message }` entries. */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): ProblemFieldError[] {
  return errors.flatMap((e) => {
    const field = /^\d+$/.test(e.property)
      ? `${prefix}[${e.property}]`
      : prefix
        ? `${prefix}.${e.property}`
        : e.property;
    const own = Object.values(e.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flattenValidationErrors(e.children ?? [], field)];
  });
}

/** The strict global pipe: unknown fields refused, payloads transformed into DTO instances. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    stopAtFirstError: false,
    exceptionFactory: (errors) => new RequestValidationError(flattenValidationErrors(errors)),
  });
}
