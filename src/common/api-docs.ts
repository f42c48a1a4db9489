import type { INestApplication } from '@nestjs/common';
import { type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

/**
 * The public contract: the OpenAPI document the server implements, kept in the repository and shipped in the
 * package (`dist/common` and `src/common` are both two levels below the package root).
 */
export const API_CONTRACT_FILE = path.resolve(
  __dirname,
  '..',
  '..',
  'specs',
  'api',
  'parallel-api.openapi.yml',
);

/** The contract as an object (the YAML file parsed; nothing added or generated). */
export function loadApiContract(file: string = API_CONTRACT_FILE): OpenAPIObject {
  return parse(readFileSync(file, 'utf8')) as OpenAPIObject;
}

/**
 * `/docs`: Swagger UI over the contract file, and `/docs/openapi.json`: the same document as JSON. There is one
 * document: what clients read, what the UI shows and what the tests check the server against.
 */
export function mountApiDocs(app: INestApplication, document: OpenAPIObject = loadApiContract()): void {
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs/openapi.json',
    raw: ['json'],
    customSiteTitle: 'canvas-batch API',
  });
}
