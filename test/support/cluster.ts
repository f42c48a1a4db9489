import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUNDLED_VAULT } from '../../src/config/example-vault';
import type { FakeLlmServer, Wire } from './fake-llm-server';
import { llmEnv } from './llm-harness';
import { deletePrefix, uniquePrefix } from './redis';
import { freePort, type ServiceProcess, SOURCE_ENTRY, startService } from './service-process';

/**
 * N real service processes as one service, for the multi-process e2e tests: one vault, one Redis (`REDIS_URL` and
 * `REDIS_PREFIX`) and, per process, its own name (`INSTANCE_ID`: A, B, C…), port and `DATA_DIR`. Without
 * `redisUrl` every process runs the embedded engine on its own data (independent services on one vault).
 *
 * Which code runs: `node dist/main.js` (what production runs, as issue 20 asks) when the build is current, i.e.
 * `dist/main.js` is newer than every file under `src/` (.ci/run builds before the tests); the TypeScript source
 * through @swc-node/register otherwise, so a test never runs a stale build while the source is being edited.
 * `entry` or the environment variable `CLUSTER_ENTRY` (`dist` | `source`) forces one.
 */
export type ClusterEntry = 'auto' | 'dist' | 'source';

export interface ClusterOptions {
  /** How many processes (1–26), named A, B, C… */
  size: number;
  /** The Redis every process uses; undefined: the embedded engine in each (no Redis settings passed). */
  redisUrl?: string;
  /** Their key prefix (`REDIS_PREFIX`); default: a fresh `uniquePrefix('cluster')`. Deleted by `stop()`. */
  prefix?: string;
  /** The vault every process serves (`VAULT_ROOT`); default: a temp copy of the example vault, removed by `stop()`. */
  vault?: string;
  /** Prepares the default temp vault before the processes start (e.g. writes a canvas). */
  setupVault?: (vault: string) => void;
  /** Settings of every process (after the cluster's own, so they can override e.g. `LOG_LEVEL`). */
  env?: Record<string, string>;
  /** Settings of one process, after `env`. */
  envOf?: (name: string) => Record<string, string>;
  /**
   * The fake provider every process calls, each with its own key (`processKey(name)`): the fake's `processKeys`
   * is set to this cluster's keys, so its log names the process of every call.
   */
  llm?: { fake: FakeLlmServer; wire: Wire };
  entry?: ClusterEntry;
  /** Start the processes one after the other instead of all at once. */
  sequential?: boolean;
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export interface ClusterNode {
  /** `A`, `B`, … (its `INSTANCE_ID`). */
  readonly name: string;
  /** `http://127.0.0.1:<port>`: the same across restarts. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** The settings it was started with last (without the inherited environment). */
  readonly env: Record<string, string>;
  /** The running process; undefined once killed (until `restart`). */
  readonly service: ServiceProcess | undefined;
  readonly running: boolean;
  /** Everything it wrote to stdout and stderr, over all its runs (each run headed by a `--- A run n ---` line). */
  readonly output: string;
  /** Signals the process (default SIGKILL) and resolves with its exit; resolves at once when it is not running. */
  kill(signal?: NodeJS.Signals): Promise<Exit | undefined>;
  /**
   * Starts it again on the same port and `DATA_DIR` (SIGKILL first when it still runs), with `env` added to its
   * settings for this run only; resolves once it listens.
   */
  restart(env?: Record<string, string>): Promise<void>;
}

export interface Cluster {
  nodes: ClusterNode[];
  /** The node named `name`; throws for an unknown name. */
  node(name: string): ClusterNode;
  vault: string;
  redisUrl: string | undefined;
  /** `REDIS_PREFIX` of the processes (undefined without Redis). */
  prefix: string | undefined;
  /** Node's arguments the processes run with (`['dist/main.js']` or the source entry). */
  entry: string[];
  /**
   * Kills every process (default SIGKILL; SIGTERM to let them shut down gracefully, SIGKILL after `graceMs`),
   * removes the temp folders and deletes the Redis prefix. Safe to call twice.
   */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<void>;
}

const repo = path.resolve(__dirname, '..', '..');

/** The key process `name` sends to the fake provider. */
export function processKey(name: string): string {
  return `key-${name}`;
}

/** The names of a cluster of `size` processes: A, B, C… */
export function nodeNames(size: number): string[] {
  if (!Number.isInteger(size) || size < 1 || size > 26) throw new Error(`cluster size ${size}: 1 to 26`);
  return Array.from({ length: size }, (_, i) => String.fromCharCode(65 + i));
}

/** The newest modification time of any file under `dir` (ms). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Node's arguments for `entry` (see `ClusterEntry`). */
export function resolveEntry(entry: ClusterEntry = 'auto'): string[] {
  const chosen =
    entry === 'auto' ? ((process.env.CLUSTER_ENTRY as ClusterEntry | undefined) ?? 'auto') : entry;
  const dist = path.join(repo, 'dist', 'main.js');
  if (chosen === 'source') return SOURCE_ENTRY;
  if (chosen === 'dist') {
    if (!existsSync(dist)) throw new Error('dist/main.js is missing: run `npm run build` first');
    return ['dist/main.js'];
  }
  const current = existsSync(dist) && statSync(dist).mtimeMs > newestMtime(path.join(repo, 'src'));
  return current ? ['dist/main.js'] : SOURCE_ENTRY;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const names = nodeNames(options.size);
  const entry = resolveEntry(options.entry);
  const root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-cluster-'));
  let vault = options.vault;
  if (vault === undefined) {
    vault = path.join(root, 'vault');
    cpSync(BUNDLED_VAULT, vault, { recursive: true });
    options.setupVault?.(vault);
  }
  const redisUrl = options.redisUrl;
  const prefix = redisUrl === undefined ? undefined : (options.prefix ?? uniquePrefix('cluster'));
  options.llm?.fake.configure({ processKeys: Object.fromEntries(names.map((n) => [processKey(n), n])) });

  const nodes = await Promise.all(
    names.map(async (name) => {
      const port = await freePort();
      const dataDir = path.join(root, `data-${name}`);
      const env: Record<string, string> = {
        PORT: String(port),
        HOST: '127.0.0.1',
        VAULT_ROOT: vault,
        DATA_DIR: dataDir,
        INSTANCE_ID: name,
        ...(redisUrl !== undefined && prefix !== undefined
          ? { REDIS_URL: redisUrl, REDIS_PREFIX: prefix }
          : {}),
        ...(options.llm
          ? llmEnv(options.llm.fake, options.llm.wire, { AGENT_API_KEY: processKey(name) })
          : {}),
        ...options.env,
        ...options.envOf?.(name),
      };
      return new Node(name, port, dataDir, env, entry);
    }),
  );

  let stopped = false;
  const stop = async ({
    signal = 'SIGKILL',
    graceMs = 10_000,
  }: { signal?: NodeJS.Signals; graceMs?: number } = {}) => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((n) => n.stop(signal, graceMs)));
    rmSync(root, { recursive: true, force: true });
    if (redisUrl !== undefined && prefix !== undefined) await deletePrefix(redisUrl, prefix);
  };

  try {
    if (options.sequential) for (const n of nodes) await n.restart();
    else await Promise.all(nodes.map((n) => n.restart()));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes,
    node(name) {
      const found = nodes.find((n) => n.name === name);
      if (!found) throw new Error(`no node ${name} in a cluster of ${nodes.map((n) => n.name).join(', ')}`);
      return found;
    },
    vault,
    redisUrl,
    prefix,
    entry,
    stop,
  };
}

class Node implements ClusterNode {
  service: ServiceProcess | undefined;
  env: Record<string, string>;
  private readonly runs: string[][] = [];

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dataDir: string,
    private readonly baseEnv: Record<string, string>,
    private readonly entry: string[],
  ) {
    this.env = baseEnv;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    const child = this.service?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  get output(): string {
    return this.runs.map((run, i) => `--- ${this.name} run ${i + 1} ---\n${run.join('')}`).join('\n');
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit | undefined> {
    const service = this.service;
    if (!service) return undefined;
    const exit = await service.kill(signal);
    if (this.service === service) this.service = undefined;
    return exit;
  }

  async restart(env: Record<string, string> = {}): Promise<void> {
    await this.kill('SIGKILL');
    this.env = { ...this.baseEnv, ...env };
    // startService rejects with the output when the process exits before listening; keep it in `output` too
    const run: string[] = [];
    this.runs.push(run);
    try {
      this.service = await startService(this.env, {}, this.entry);
    } catch (err) {
      run.push((err as Error).message);
      throw new Error(`node ${this.name}: ${(err as Error).message}`, { cause: err });
    }
    // the service's own array keeps growing while it runs: share it
    this.runs[this.runs.length - 1] = this.service.output;
  }

  /** For `Cluster.stop`: `signal`, then SIGKILL after `graceMs` if it is still running. */
  async stop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const service = this.service;
    if (!service) return;
    let timer: NodeJS.Timeout | undefined;
    if (signal !== 'SIGKILL') timer = setTimeout(() => service.child.kill('SIGKILL'), graceMs);
    await this.kill(signal);
    clearTimeout(timer);
  }
}
