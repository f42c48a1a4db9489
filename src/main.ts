import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { bootstrap } from './bootstrap';
import { StartupError } from './config';
import { reportStartupFailure, startupFailureText } from './common';

/** A failed start-up: one log line (the service's format), exit 1. */
function failedToStart(err: unknown): never {
  try {
    reportStartupFailure(err, process.env);
  } catch {
    process.stderr.write(`canvas-batch failed to start: ${startupFailureText(err)}\n`);
  }
  process.exit(1);
}

try {
  if (existsSync('.env')) process.loadEnvFile('.env');
} catch (err) {
  failedToStart(
    new StartupError(`.env in ${process.cwd()} cannot be read (${(err as Error).message}): fix or remove it`),
  );
}

// A stray rejection must not take every running batch down with the process: report it and keep serving.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(
    `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`,
  );
});

bootstrap().catch(failedToStart);
