import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '..', '..');

/**
 * The test process's environment without the service settings a suite must choose itself: a child service only
 * talks to the Neo4j of NEO4J_URI (which .ci/run exports for the memory suites) when its suite passes it explicitly,
 * so crash tests never write into, or SIGKILL a service in the middle of creating, another suite's graph.
 */
function baseEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NEO4J_|MEMORY_)/.test(k)));
}

/** The real service (`src/main.ts`) as a child process, on a fixed port so clients can reconnect across restarts. */
export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Spawns the service and resolves once it logs that it listens (or rejects with its output if it exits first). */
export function startService(env: Record<string, string>): Promise<ServiceProcess> {
  const output: string[] = [];
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
    cwd: repo,
    env: { ...baseEnv(), LOG_PRETTY: 'false', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output.push(chunk.toString());
      const m = /listening on (http:\/\/[^\s"]+)/.exec(output.join(''));
      if (m) {
        child.stdout.off('data', onData);
        child.stdout.on('data', (c: Buffer) => output.push(c.toString()));
        resolve({
          child,
          url: m[1],
          output,
          exited,
          kill: (signal = 'SIGKILL') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c: Buffer) => output.push(c.toString()));
    void exited.then(({ code, signal }) =>
      reject(new Error(`service exited (${code ?? signal}) before listening:\n${output.join('')}`)),
    );
  });
}

/** Runs the service to completion of its start-up only, for start-up failures: resolves with exit code and output. */
export async function runToExit(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const output: string[] = [];
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
    cwd: repo,
    env: { ...baseEnv(), LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr.on('data', (c: Buffer) => output.push(c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output: output.join('') };
}
