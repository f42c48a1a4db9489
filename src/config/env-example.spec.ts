import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '..', '..');
const read = (rel: string): string => readFileSync(path.join(repo, rel), 'utf8');

/** The variables of docs/configuration.md's table: each row's first cell names one or more (`A`, `B`). */
function documented(): Set<string> {
  const names = new Set<string>();
  for (const row of read('docs/configuration.md').split('\n')) {
    const first = /^\|([^|]+)\|/.exec(row)?.[1] ?? '';
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1]);
  }
  return names;
}

/** The variables `.env.example` lists (`NAME=`, commented out or not). */
function listed(): Set<string> {
  return new Set([...read('.env.example').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
}

describe('.env.example', () => {
  it('lists every variable docs/configuration.md documents, and no other', () => {
    const docs = documented();
    const env = listed();
    expect(docs.size).toBeGreaterThan(30);
    expect({
      missing: [...docs].filter((v) => !env.has(v)),
      undocumented: [...env].filter((v) => !docs.has(v)),
    }).toEqual({ missing: [], undocumented: [] });
  });
});
