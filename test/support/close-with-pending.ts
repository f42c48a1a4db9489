/**
 * Child process of test/memory-clean-exit.e2e-spec.ts: starts the service from the environment, runs one batch whose
 * memory events cannot be delivered, calls `app.close()`, and then simply returns. It never calls `process.exit`:
 * the process ends only if nothing (timer, socket, promise chain) is left behind.
 */
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/bootstrap';
import { loadAppConfig } from '../../src/config/app.config';

process.on('unhandledRejection', (reason) => {
  process.stdout.write(`UNHANDLED ${reason instanceof Error ? reason.message : String(reason)}\n`);
});

async function main(): Promise<void> {
  const config = loadAppConfig(process.env);
  const app = await createApp(config);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const post = await fetch(`${url}/parallel/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: process.env.BATCH_REQUEST,
  });
  const { task_id: taskId } = (await post.json()) as { task_id: string };
  for (let i = 0; i < 2400; i++) {
    const status = (await (await fetch(`${url}/parallel/status/${taskId}`)).json()) as { status: string };
    if (!['pending', 'running'].includes(status.status)) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  let memory: { pending: number; failed_attempts: number } = { pending: 0, failed_attempts: 0 };
  for (let i = 0; i < 2400; i++) {
    memory = (await (await fetch(`${url}/memory/status`)).json()) as typeof memory;
    if (memory.failed_attempts >= 1) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  process.stdout.write(`STATUS ${JSON.stringify(memory)}\n`);
  await app.close();
  process.stdout.write('CLOSED\n');
}

main().catch((err: unknown) => {
  process.stdout.write(`FAILED ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
