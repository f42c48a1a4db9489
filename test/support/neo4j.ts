import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import neo4j, { type Driver } from 'neo4j-driver';

/**
 * A real Neo4j for the tests: test/neo4j-launcher (embedded Neo4j 5.26 Community, Bolt on 127.0.0.1) built with
 * Maven and run as a child process, stoppable and restartable on the same data folder and port.
 */

const REPO = path.resolve(__dirname, '..', '..');
export const LAUNCHER_DIR = path.join(REPO, 'test', 'neo4j-launcher');
/** The Maven repository lives inside the checkout (ignored by git), so CI can cache it with the clone. */
export const MAVEN_REPO = path.join(REPO, '.cache', 'm2');
const CLASSES = path.join(LAUNCHER_DIR, 'target', 'classes');
const CLASSPATH_FILE = path.join(LAUNCHER_DIR, 'target', 'classpath.txt');
const SOURCE = path.join(LAUNCHER_DIR, 'src', 'main', 'java', 'canvasbatch', 'Neo4jLauncher.java');
const CLASS_FILE = path.join(CLASSES, 'canvasbatch', 'Neo4jLauncher.class');
/** Written after a successful build: Maven leaves up-to-date outputs untouched, so their times say nothing. */
const STAMP = path.join(LAUNCHER_DIR, 'target', 'built.stamp');
export const DEFAULT_PASSWORD = 'canvas-batch-test';

/** Built, and not older than its source or pom. */
export function launcherBuilt(): boolean {
  if (!existsSync(CLASS_FILE) || !existsSync(CLASSPATH_FILE) || !existsSync(STAMP)) return false;
  const built = statSync(STAMP).mtimeMs;
  return [SOURCE, path.join(LAUNCHER_DIR, 'pom.xml')].every((f) => statSync(f).mtimeMs <= built);
}

/** `mvn compile` (dependencies from Maven Central into .cache/m2); throws with Maven's output when it fails. */
export function buildLauncher(options: { offline?: boolean } = {}): void {
  const args = ['-B', '-q', '-f', path.join(LAUNCHER_DIR, 'pom.xml'), `-Dmaven.repo.local=${MAVEN_REPO}`];
  if (options.offline) args.push('-o');
  const r = spawnSync('mvn', [...args, 'compile'], { encoding: 'utf8', stdio: 'pipe' });
  if (r.error) throw new Error(`cannot run mvn: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`mvn compile failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}

export interface Neo4jStartOptions {
  /** Bolt port on 127.0.0.1; default a free one. */
  port?: number;
  /** Data folder, kept on stop (restart continues on it); default a fresh temp folder removed by `dispose()`. */
  dataDir?: string;
  password?: string;
  /** Start-up bound (first start of a store creates it). Default 180 s. */
  timeoutMs?: number;
}

/** One launcher process. `stop()` then `start()` again keeps the data and the port. */
export class Neo4jServer {
  readonly user = 'neo4j';
  readonly password: string;
  readonly dataDir: string;
  port: number;
  startupMs = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private readonly ownsDataDir: boolean;
  readonly output: string[] = [];

  private constructor(options: Neo4jStartOptions) {
    this.password = options.password ?? DEFAULT_PASSWORD;
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'canvas-batch-neo4j-'));
    this.port = options.port ?? 0;
  }

  static async start(options: Neo4jStartOptions = {}): Promise<Neo4jServer> {
    if (!launcherBuilt()) throw new Error(`the Neo4j launcher is not built: ${buildHint()}`);
    const server = new Neo4jServer(options);
    await server.start(options.timeoutMs);
    return server;
  }

  get uri(): string {
    return `bolt://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts (again) on the same data folder and port; resolves on the READY line. */
  async start(timeoutMs = 180_000): Promise<void> {
    if (this.child) return;
    const classpath = `${CLASSES}${path.delimiter}${readFileSync(CLASSPATH_FILE, 'utf8').trim()}`;
    const args = [
      '-Xms256m',
      '-Xmx1g',
      '-XX:+UseSerialGC',
      '-cp',
      classpath,
      'canvasbatch.Neo4jLauncher',
      '--data',
      this.dataDir,
      '--password',
      this.password,
      ...(this.port ? ['--port', String(this.port)] : []),
    ];
    // stdin stays a pipe: if this process dies, the launcher sees end of input and stops by itself
    const child = spawn('java', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr.on('data', (c: Buffer) => this.remember(c));
    await new Promise<void>((resolve, reject) => {
      let buffer = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`Neo4j did not start within ${timeoutMs} ms:\n${this.output.join('')}`));
      }, timeoutMs);
      const onData = (c: Buffer): void => {
        this.remember(c);
        buffer += c.toString();
        const m = /READY bolt:\/\/127\.0\.0\.1:(\d+) .*startup_ms=(\d+)/.exec(buffer);
        if (m) {
          clearTimeout(timer);
          this.port = Number(m[1]);
          this.startupMs = Number(m[2]);
          child.stdout.off('data', onData);
          child.stdout.on('data', (d: Buffer) => this.remember(d));
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        this.child = undefined;
        reject(new Error(`Neo4j exited (${code ?? signal}) before it was ready:\n${this.output.join('')}`));
      });
    });
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
  }

  /** Graceful stop (SIGTERM: the database shuts down cleanly); SIGKILL after `timeoutMs`. Data and port are kept. */
  async stop(timeoutMs = 60_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  /** Abrupt loss (SIGKILL): the next `start()` recovers the store from its transaction log. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  /** Stops and removes the data folder if it was a temp one made here. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  driver(): Driver {
    return neo4j.driver(this.uri, neo4j.auth.basic(this.user, this.password), {
      disableLosslessIntegers: true,
    });
  }

  private remember(c: Buffer): void {
    this.output.push(c.toString());
    if (this.output.length > 500) this.output.splice(0, this.output.length - 500);
  }
}

export function buildHint(): string {
  return (
    'build it with `node -r @swc-node/register test/support/neo4j-cli.ts build` ' +
    '(Java 17 and Maven; dependencies come from Maven Central into .cache/m2)'
  );
}

/** NEO4J_URI/USER/PASSWORD from the environment (as .ci/run exports them), or `undefined`. */
export function neo4jFromEnv(): { uri: string; user: string; password: string } | undefined {
  const uri = process.env.NEO4J_URI?.trim();
  if (!uri) return undefined;
  return { uri, user: process.env.NEO4J_USER?.trim() || 'neo4j', password: process.env.NEO4J_PASSWORD ?? '' };
}

/**
 * Whether a TCP connection to the URI's host and port succeeds within 3 s, checked synchronously (Jest decides
 * `describe` vs `describe.skip` while collecting tests).
 */
export function reachableSync(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  const script =
    "const s=require('node:net').connect({host:process.argv[1],port:+process.argv[2]});" +
    "s.setTimeout(3000,()=>process.exit(1));s.on('connect',()=>{s.end();process.exit(0)});s.on('error',()=>process.exit(1));";
  const r = spawnSync(process.execPath, ['-e', script, url.hostname, url.port || '7687'], { timeout: 5000 });
  return r.status === 0;
}

export function javaAvailable(): boolean {
  return spawnSync('java', ['-version'], { stdio: 'ignore' }).status === 0;
}

/**
 * `describe` for a suite that needs an external service, or a skip with a clear reason when it is absent; with
 * REQUIRE_SERVICES=1 an absent service is a failing test instead.
 */
export function describeWithService(name: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) {
    describe(name, body);
  } else if (process.env.REQUIRE_SERVICES === '1') {
    describe(name, () => {
      it('has its service (REQUIRE_SERVICES=1)', () => {
        throw new Error(`REQUIRE_SERVICES=1 but ${missing}`);
      });
    });
  } else {
    process.stderr.write(`[skip] ${name}: ${missing}\n`);
    describe.skip(`${name} — SKIPPED: ${missing}`, body);
  }
}
