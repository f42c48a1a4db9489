import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { bootstrap } from './bootstrap';

if (existsSync('.env')) process.loadEnvFile('.env');

// A stray rejection must not take every running batch down with the process: report it and keep serving.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(
    `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`,
  );
});

bootstrap().catch((err: unknown) => {
  process.stderr.write(`canvas-batch failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
