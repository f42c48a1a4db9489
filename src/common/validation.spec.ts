import type { ArgumentMetadata } from '@nestjs/common';
import { Type } from 'class-transformer';
import {
  ArrayNotEmpty,
  IsArray,
  IsInt,
  IsString,
  Min,
  ValidateNested,
  ValidationError,
} from 'class-validator';
import {
  createValidationPipe,
  declaredFields,
  didYouMean,
  flattenValidationErrors,
  JsonBodyRequiredError,
  RequestValidationError,
} from './validation';

const error = (
  property: string,
  constraints?: Record<string, string>,
  children: ValidationError[] = [],
): ValidationError => Object.assign(new ValidationError(), { property, constraints, children });

class GroupDto {
  @IsString()
  agent_type!: string;

  @IsArray()
  @ArrayNotEmpty()
  @IsString({ each: true })
  node_ids!: string[];
}

class RequestDto {
  @IsString()
  canvas_path!: string;

  @IsInt()
  @Min(1)
  max_concurrent!: number;

  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => GroupDto)
  groups!: GroupDto[];
}

describe('flattenValidationErrors', () => {
  it('gives top-level errors their property as field, one entry per constraint', () => {
    expect(
      flattenValidationErrors([
        error('canvas_path', { matches: 'must end in .canvas', maxLength: 'too long' }),
      ]),
    ).toEqual([
      { field: 'canvas_path', message: 'must end in .canvas' },
      { field: 'canvas_path', message: 'too long' },
    ]);
  });

  it('keeps only the type check when one failed', () => {
    expect(
      flattenValidationErrors([error('canvas_path', { isString: 'must be a string', isNotEmpty: 'empty' })]),
    ).toEqual([{ field: 'canvas_path', message: 'must be a string' }]);
  });

  it('renders nested array items and properties as groups[0].node_ids', () => {
    const nested = error('groups', undefined, [
      error('0', undefined, [error('node_ids', { arrayNotEmpty: 'node_ids should not be empty' })]),
      error('2', undefined, [error('agent_type', { isString: 'agent_type must be a string' })]),
    ]);
    expect(flattenValidationErrors([nested])).toEqual([
      { field: 'groups[0].node_ids', message: 'node_ids should not be empty' },
      { field: 'groups[2].agent_type', message: 'agent_type must be a string' },
    ]);
  });

  it('renders nested array indexes inside arrays as node_ids[3]', () => {
    const nested = error('groups', undefined, [
      error('1', undefined, [error('node_ids', undefined, [error('3', { isString: 'must be a string' })])]),
    ]);
    expect(flattenValidationErrors([nested])).toEqual([
      { field: 'groups[1].node_ids[3]', message: 'must be a string' },
    ]);
  });

  it('keeps a parent constraint and its children', () => {
    const nested = error('options', { isObject: 'must be an object' }, [
      error('depth', { isInt: 'must be an integer' }),
    ]);
    expect(flattenValidationErrors([nested])).toEqual([
      { field: 'options', message: 'must be an object' },
      { field: 'options.depth', message: 'must be an integer' },
    ]);
  });

  it('returns nothing for no errors', () => {
    expect(flattenValidationErrors([])).toEqual([]);
  });
});

describe('RequestValidationError', () => {
  it('is a validation-failed domain error listing every field in its message', () => {
    const err = new RequestValidationError([
      { field: 'a', message: 'bad' },
      { field: 'b.c', message: 'worse' },
    ]);
    expect(err.code).toBe('validation-failed');
    expect(err.message).toBe('a: bad; b.c: worse');
    expect(err.errors).toHaveLength(2);
    expect(err.name).toBe('RequestValidationError');
  });
});

describe('createValidationPipe', () => {
  const pipe = createValidationPipe();
  const meta: ArgumentMetadata = { type: 'body', metatype: RequestDto };
  const valid = {
    canvas_path: 'a.canvas',
    max_concurrent: 2,
    groups: [{ agent_type: 'oral-explanation', node_ids: ['n1'] }],
  };

  it('transforms a valid body into DTO instances', async () => {
    const out = (await pipe.transform(valid, meta)) as RequestDto;
    expect(out).toBeInstanceOf(RequestDto);
    expect(out.groups[0]).toBeInstanceOf(GroupDto);
    expect(out).toEqual(valid);
  });

  it('refuses with RequestValidationError naming nested fields', async () => {
    const body = {
      canvas_path: 5,
      max_concurrent: 0,
      groups: [{ agent_type: 'x', node_ids: [] }, { node_ids: ['a', 7] }],
    };
    const err = (await pipe.transform(body, meta).catch((e: unknown) => e)) as RequestValidationError;
    expect(err).toBeInstanceOf(RequestValidationError);
    expect(err.errors?.map((e) => e.field)).toEqual([
      'canvas_path',
      'max_concurrent',
      'groups[0].node_ids',
      'groups[1].agent_type',
      'groups[1].node_ids',
    ]);
  });

  it('refuses unknown fields, also nested ones, listing the fields there are', async () => {
    const body = { ...valid, extra: 1, groups: [{ ...valid.groups[0], sneaky: true }] };
    const err = (await pipe.transform(body, meta).catch((e: unknown) => e)) as RequestValidationError;
    expect(err.errors).toEqual([
      {
        field: 'extra',
        message: 'unknown field `extra` (the fields are `canvas_path`, `max_concurrent`, `groups`)',
      },
      {
        field: 'groups[0].sneaky',
        message: 'unknown field `sneaky` (the fields are `agent_type`, `node_ids`)',
      },
    ]);
  });

  it('says "did you mean" for another spelling of a field, and not also that the field is missing', async () => {
    const body = {
      canvasPath: 'a.canvas',
      'max-concurrent': 2,
      groups: [{ agentType: 'x', NodeIds: ['n1'] }],
    };
    const err = (await pipe.transform(body, meta).catch((e: unknown) => e)) as RequestValidationError;
    expect(err.errors).toEqual([
      { field: 'canvasPath', message: 'unknown field `canvasPath`: did you mean `canvas_path`?' },
      { field: 'max-concurrent', message: 'unknown field `max-concurrent`: did you mean `max_concurrent`?' },
      { field: 'groups[0].agentType', message: 'unknown field `agentType`: did you mean `agent_type`?' },
      { field: 'groups[0].NodeIds', message: 'unknown field `NodeIds`: did you mean `node_ids`?' },
    ]);
  });

  it('says a missing field is required, without its type and range checks', async () => {
    const err = (await pipe
      .transform({ groups: [{ node_ids: ['n1'] }] }, meta)
      .catch((e: unknown) => e)) as RequestValidationError;
    expect(err.errors).toEqual([
      { field: 'canvas_path', message: '`canvas_path` is required' },
      { field: 'max_concurrent', message: '`max_concurrent` is required' },
      { field: 'groups[0].agent_type', message: '`agent_type` is required' },
    ]);
  });

  it('gives a value of the wrong type its type check only', async () => {
    const err = (await pipe
      .transform({ ...valid, max_concurrent: 'two', groups: 'x' }, meta)
      .catch((e: unknown) => e)) as RequestValidationError;
    expect(err.errors).toEqual([
      { field: 'max_concurrent', message: 'max_concurrent must be an integer number' },
      { field: 'groups', message: 'groups must be an array' },
    ]);
  });

  it('refuses a missing body or an array with one problem saying the body must be a JSON object', async () => {
    for (const body of [undefined, null]) {
      const err = (await pipe.transform(body, meta).catch((e: unknown) => e)) as JsonBodyRequiredError;
      expect(err).toBeInstanceOf(JsonBodyRequiredError);
      expect(err.code).toBe('validation-failed');
      expect(err.message).toBe(
        'the body must be JSON (Content-Type: application/json): an object with the fields `canvas_path`, ' +
          '`max_concurrent`, `groups`',
      );
      expect(err.errors).toBeUndefined();
    }
    const array = (await pipe.transform([valid], meta).catch((e: unknown) => e)) as JsonBodyRequiredError;
    expect(array.message).toMatch(
      /^the body must be a JSON object, not an array, with the fields `canvas_path`/,
    );
    // a query or a plain body type is not a DTO body
    await expect(pipe.transform(undefined, { type: 'query', metatype: RequestDto })).rejects.toThrow(
      RequestValidationError,
    );
    await expect(pipe.transform(undefined, { type: 'body', metatype: String })).resolves.toBeUndefined();
  });

  it('does not convert types implicitly', async () => {
    const err = (await pipe
      .transform({ ...valid, max_concurrent: '2' }, meta)
      .catch((e: unknown) => e)) as RequestValidationError;
    expect(err.errors?.map((e) => e.field)).toEqual(['max_concurrent']);
  });
});

describe('didYouMean', () => {
  const fields = ['canvas_path', 'groups', 'max_concurrent', 'timeout', 'last_event_id', 'limit'];

  it('finds the field in another case convention', () => {
    for (const [slip, field] of [
      ['canvasPath', 'canvas_path'],
      ['CanvasPath', 'canvas_path'],
      ['canvas-path', 'canvas_path'],
      ['CANVAS_PATH', 'canvas_path'],
      ['maxConcurrent', 'max_concurrent'],
      ['lastEventId', 'last_event_id'],
    ])
      expect(didYouMean(slip, fields)).toBe(field);
  });

  it('finds near spellings, not far ones', () => {
    expect(didYouMean('timout', fields)).toBe('timeout');
    expect(didYouMean('group', fields)).toBe('groups');
    expect(didYouMean('limt', fields)).toBe('limit');
    expect(didYouMean('priority', fields)).toBeUndefined();
    expect(didYouMean('id', fields)).toBeUndefined();
    expect(didYouMean('x', [])).toBeUndefined();
  });
});

describe('declaredFields', () => {
  it("lists a DTO class's validated properties in declaration order", () => {
    expect(declaredFields(RequestDto)).toEqual(['canvas_path', 'max_concurrent', 'groups']);
    expect(declaredFields(undefined)).toEqual([]);
  });
});
