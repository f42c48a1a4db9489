import 'reflect-metadata';
import { bootstrap } from './bootstrap';

bootstrap().catch((err: unknown) => {
  process.stderr.write(`canvas-batch failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
