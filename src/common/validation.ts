import { type ArgumentMetadata, applyDecorators, ValidationPipe, type ValidationError } from '@nestjs/common';
import { getMetadataStorage, IsString, Matches, MaxLength, NotContains, ValidateIf } from 'class-validator';
import { DomainError, type DomainErrorCode, type ProblemFieldError } from './domain-error';

/** Optional, but never `null` (class-validator's `@IsOptional` would let `null` through as absent). */
export function IsAbsentOrSet(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined);
}

/**
 * A request's `canvas_path`: a string of at most 500 characters, no NUL, ending in `.canvas`. Where it points (inside
 * the vault, symlinks included) is checked when it is used.
 */
export function IsCanvasPath(): PropertyDecorator {
  // applied in this order, as the same decorators stacked above a property (bottom first): the same messages, in the
  // same order
  return applyDecorators(
    Matches(/\.canvas$/, { message: 'canvas_path must end in .canvas' }),
    NotContains('\0', { message: 'canvas_path must not contain NUL' }),
    MaxLength(500),
    IsString(),
  );
}

export class RequestValidationError extends DomainError {
  readonly code: DomainErrorCode = 'validation-failed';
  constructor(errors: ProblemFieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; '), errors);
  }
}

/** What a request without a JSON body is told (no body, or one sent as another media type, is not parsed). */
export const JSON_BODY_REQUIRED = 'the body must be JSON (Content-Type: application/json)';

/** No JSON object as the body of a route that takes one: one problem, instead of one per missing field. */
export class JsonBodyRequiredError extends DomainError {
  readonly code: DomainErrorCode = 'validation-failed';
  constructor(fields: readonly string[], array = false) {
    const listed = fields.map((f) => `\`${f}\``).join(', ');
    super(
      array
        ? `the body must be a JSON object, not an array${listed ? `, with the fields ${listed}` : ''}`
        : `${JSON_BODY_REQUIRED}${listed ? `: an object with the fields ${listed}` : ''}`,
    );
  }
}

/** The fields a DTO class declares (its validated properties), in declaration order. */
export function declaredFields(dto: unknown): string[] {
  if (typeof dto !== 'function') return [];
  const metadata = getMetadataStorage().getTargetValidationMetadatas(dto, '', true, false);
  return [...new Set(metadata.map((m) => m.propertyName))];
}

/** A field name without case, `_` or `-`: `canvasPath`, `CanvasPath`, `canvas-path` all read `canvaspath`. */
function spellingKey(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '');
}

/** Levenshtein distance, stopping early once above `max` (names are short). */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    if (Math.min(...row) > max) return max + 1;
    prev = row;
  }
  return prev[b.length];
}

/**
 * The declared field an unknown one is most likely a slip for: the same name in another case convention
 * (`canvasPath` → `canvas_path`), else a near spelling (at most 2 edits, 1 for short names); undefined if none.
 */
export function didYouMean(unknown: string, fields: readonly string[]): string | undefined {
  const key = spellingKey(unknown);
  const same = fields.find((f) => spellingKey(f) === key);
  if (same !== undefined) return same;
  const max = key.length <= 5 ? 1 : 2;
  let best: { field: string; distance: number } | undefined;
  for (const field of fields) {
    const distance = editDistance(key, spellingKey(field), max);
    if (distance <= max && (!best || distance < best.distance)) best = { field, distance };
  }
  return best?.field;
}

/** Constraints that say what type a value must have: when one fails, the others (length, range…) are noise. */
const TYPE_CONSTRAINTS = new Set([
  'isString',
  'isArray',
  'isInt',
  'isNumber',
  'isBoolean',
  'isObject',
  'isDefined',
  'isGroupId',
]);

/** A class-validator error for a property the object did not have at all (not one whose value is wrong). */
function isMissing(e: ValidationError): boolean {
  return Object.prototype.hasOwnProperty.call(e, 'value') && e.value === undefined && !isUnknown(e);
}

/** A class-validator error for a property the DTO does not declare (`forbidNonWhitelisted`). */
function isUnknown(e: ValidationError): boolean {
  return e.constraints?.whitelistValidation !== undefined;
}

/**
 * The messages for one property, the slips people make said plainly: a missing field is "`x` is required" (not its
 * type and range checks), a field of the wrong type gets its type check only, an unknown field says which declared
 * field it looks like ("did you mean `canvas_path`?") or lists the declared ones.
 */
function messagesOf(e: ValidationError, siblings: readonly ValidationError[]): string[] {
  if (isUnknown(e)) {
    const fields = declaredFields(e.target?.constructor);
    const guess = didYouMean(e.property, fields);
    if (guess !== undefined) return [`unknown field \`${e.property}\`: did you mean \`${guess}\`?`];
    return [
      `unknown field \`${e.property}\`` +
        (fields.length ? ` (the fields are ${fields.map((f) => `\`${f}\``).join(', ')})` : ''),
    ];
  }
  if (isMissing(e)) {
    // `canvasPath` sent for `canvas_path`: its own did-you-mean says it all
    const fields = [e.property];
    const misspelt = siblings.some((s) => isUnknown(s) && didYouMean(s.property, fields) !== undefined);
    return misspelt ? [] : [`\`${e.property}\` is required`];
  }
  const constraints = Object.entries(e.constraints ?? {});
  const typeChecks = constraints.filter(([name]) => TYPE_CONSTRAINTS.has(name));
  return (typeChecks.length ? typeChecks : constraints).map(([, message]) => message);
}

/** Nested class-validator errors as `{ field: 'groups[0].node_ids', message }` entries. */
export function flattenValidationErrors(errors: ValidationError[], prefix = ''): ProblemFieldError[] {
  return errors.flatMap((e) => {
    const field = /^\d+$/.test(e.property)
      ? `${prefix}[${e.property}]`
      : prefix
        ? `${prefix}.${e.property}`
        : e.property;
    const own = messagesOf(e, errors).map((message) => ({ field, message }));
    return [...own, ...flattenValidationErrors(e.children ?? [], field)];
  });
}

/** Built-in types Nest hands a pipe for `@Body() x: string` and the like: not a DTO with fields. */
const NOT_DTOS: readonly unknown[] = [String, Boolean, Number, Array, Object];

/**
 * The strict global pipe (unknown fields refused, payloads transformed into DTO instances), with one problem for a
 * DTO body that is missing or not a JSON object, instead of a "required" for each of its fields.
 */
class RequestValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const dto = metadata.metatype;
    if (metadata.type === 'body' && dto !== undefined && !NOT_DTOS.includes(dto)) {
      if (value === undefined || value === null) throw new JsonBodyRequiredError(declaredFields(dto));
      if (Array.isArray(value)) throw new JsonBodyRequiredError(declaredFields(dto), true);
    }
    return super.transform(value, metadata) as Promise<unknown>;
  }
}

/** The strict global pipe: unknown fields refused, payloads transformed into DTO instances. */
export function createValidationPipe(): ValidationPipe {
  return new RequestValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    stopAtFirstError: false,
    // the object an unknown field was found in: its class's fields are what "did you mean" compares with
    validationError: { target: true },
    exceptionFactory: (errors) => new RequestValidationError(flattenValidationErrors(errors)),
  });
}
