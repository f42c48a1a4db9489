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
import { createValidationPipe, flattenValidationErrors, RequestValidationError } from './validation';

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
      flattenValidationErrors([error('canvas_path', { isString: 'must be a string', isNotEmpty: 'empty' })]),
    ).toEqual([
      { field: 'canvas_path', message: 'must be a string' },
      { field: 'canvas_path', message: 'empty' },
    ]);
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

  it('refuses unknown fields, also nested ones', async () => {
    const body = { ...valid, extra: 1, groups: [{ ...valid.groups[0], sneaky: true }] };
    const err = (await pipe.transform(body, meta).catch((e: unknown) => e)) as RequestValidationError;
    expect(err.errors).toEqual([
      { field: 'extra', message: 'property extra should not exist' },
      { field: 'groups[0].sneaky', message: 'property sneaky should not exist' },
    ]);
  });

  it('does not convert types implicitly', async () => {
    const err = (await pipe
      .transform({ ...valid, max_concurrent: '2' }, meta)
      .catch((e: unknown) => e)) as RequestValidationError;
    expect(err.errors?.map((e) => e.field)).toEqual(['max_concurrent', 'max_concurrent']);
  });
});
