import { runCli } from './cli';

/** The `canvas-batch` command: wires the process's streams, environment and Ctrl-C to `runCli`. */
let interrupt: (() => void) | undefined;
process.on('SIGINT', () => {
  if (interrupt) interrupt();
  else process.exit(130);
});

runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
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
