import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * The published contract, loaded once per test file: specs/api/parallel-api.openapi.yml (OpenAPI 3.1) and
 * specs/data/parallel-task.schema.json (JSON Schema 2020-12), both registered in one Ajv so `$ref`s between them
 * resolve.
 */
export type Json = Record<string, any>;

export const REPO_ROOT = path.join(__dirname, '..', '..');
export const OPENAPI_ID = 'https://canvas-batch.dev/specs/api/parallel-api.openapi.yml';

export const openapi = parseYaml(
  readFileSync(path.join(REPO_ROOT, 'specs/api/parallel-api.openapi.yml'), 'utf8'),
) as Json;
export const taskSchema = JSON.parse(
  readFileSync(path.join(REPO_ROOT, 'specs/data/parallel-task.schema.json'), 'utf8'),
) as Json;

export const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
addFormats(ajv);
// OpenAPI's `discriminator` is an annotation here: the `const` of each `oneOf` branch already decides.
ajv.addKeyword({ keyword: 'discriminator', schemaType: 'object' });
// Only `components` of the OpenAPI document is loaded, so `#/components/schemas/X` refs resolve inside it.
ajv.addKeyword('components');
ajv.addSchema(taskSchema);
ajv.addSchema({ $id: OPENAPI_ID, components: openapi.components });

/** The compiled schema at `ref` (an `$id` with its JSON pointer). */
export function validator(ref: string): ValidateFunction {
  const v = ajv.getSchema(ref);
  if (!v) throw new Error(`no schema ${ref}`);
  return v;
}
