import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadApiContract } from './api-docs';

describe('the API contract served at /docs', () => {
  it("carries the package's version (what Swagger UI shows)", () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(loadApiContract().info.version).toBe(pkg.version);
  });
});
