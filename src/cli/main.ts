import { readDotEnv, runCli } from './cli';

/**
 * The `canvas-batch` command: wires the process's streams, environment (with `.env` of the working directory, as the
 * service reads it) and Ctrl-C to `runCli`. Ctrl-C before a batch is followed ends the process at once (exit 130).
 */
let interrupt: (() => void) | undefined;
process.on('SIGINT', () => {
  if (interrupt) interrupt();
  else process.exit(130);
});

runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: { ...readDotEnv(process.cwd(), (line) => void process.stderr.write(`${line}\n`)), ...process.env },
  onInterrupt(handler) {
    interrupt = handler;
    return () => {
      if (interrupt === handler) interrupt = undefined;
    };
  },
}).then(
  (code) => {
    process.exitCode = code;
    // stdin may hold the process open after a prompt
    process.stdin.destroy();
  },
  (err: unknown) => {
    process.stderr.write(`canvas-batch: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
