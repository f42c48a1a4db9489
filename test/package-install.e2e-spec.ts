import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { writeDemoCanvas } from './support/demo-canvas';
import { describeWithService } from './support/neo4j';

/**
 * The package as another Nest service gets it (issue 21 item 2): `npm pack` of a copy of this checkout (prepack
 * builds dist/), the tarball's
 * file list, then a fresh host project outside this repository that installs the tarball and its own Nest packages
 * from the registry, compiles the README's host code ("Using it from another Nest service") with its own `tsc` in
 * strict mode, runs it with `node` over a temporary vault, and runs the installed `canvas-batch` command. Nothing in
 * the host points into this repository's src/.
 *
 * Needs the npm registry (better-sqlite3 compiles from source on install: minutes); without it the suite skips with
 * a message, under REQUIRE_SERVICES=1 it fails.
 */

const REPO = path.resolve(__dirname, '..');
/** Left out of the copy that is packed: build output, caches, git, local secrets (none of it is packed or built from). */
const NOT_COPIED = new Set([
  'node_modules',
  'dist',
  'coverage',
  'artifacts',
  'data',
  '.git',
  '.cache',
  '.env',
  path.join('test', 'neo4j-launcher', 'target'),
]);
const MINUTES = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** npm's environment for the child processes: no `npm test` lifecycle variables of this repository leak into them. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package|lifecycle)_/i.test(key) || /^npm_config_(local_prefix|prefix|global)$/i.test(key))
      continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function run(
  command: string,
  args: string[],
  cwd: string,
  env = childEnv(),
  timeoutMs = 10 * MINUTES,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Fails with the command's output when it did not exit 0. */
function ok(what: string, r: Run): Run {
  if (r.code !== 0)
    throw new Error(`${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

/** Why the suite cannot run here (the registry does not answer), or undefined when it can. */
function registryMissing(): string | undefined {
  const ping = spawnSync('npm', ['ping', '--fetch-retries=0', '--fetch-timeout=15000'], {
    env: childEnv(),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (ping.status === 0) return undefined;
  // npm's own one-line reason ("request to … failed, reason: …"), else its error code
  const lines = (ping.stderr ?? '').split('\n');
  const why =
    lines.find((l) => /FetchError|request to/.test(l))?.replace(/^npm error\s*/, '') ??
    lines.find((l) => /^npm error code/.test(l))?.replace(/^npm error\s*/, '') ??
    ping.error?.message;
  return `the npm registry is unreachable (npm ping: ${why || `exit ${ping.status}`}); the host project installs from it`;
}

/** A node of the example vault's Biology/cells.canvas. */
const CELL_THEORY = 'b10c0ffee0000001';

/** Starts the installed package's server (`dist/main.js`) on a free port; resolves once it says it listens. */
async function startInstalledServer(
  host: string,
  env: Record<string, string>,
): Promise<{ url: string; stop: () => Promise<unknown> }> {
  const server = spawn(process.execPath, [path.join('node_modules', 'canvas-batch', 'dist', 'main.js')], {
    cwd: host,
    env: { ...env, PORT: '0', HOST: '127.0.0.1', LOG_PRETTY: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
  const stop = (): Promise<unknown> => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
    return exited;
  };
  let output = '';
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        output += d.toString();
        const m = /listening on (http:\/\/[^\s"]+)/.exec(output);
        if (m) resolve(m[1]);
      };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
      void exited.then((code) => reject(new Error(`the server exited ${code}:\n${output}`)));
      setTimeout(() => reject(new Error(`no "listening" line in 2 min:\n${output}`)), 2 * MINUTES).unref();
    });
    return { url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The README section's `npm install` line (registry form) and its host code block, read as a user reads them. */
function readmeHost(): { packages: string[]; code: string } {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  // its heading level is the README's layout, not part of what a user copies
  const start = readme.search(/^#{2,3} Using it from another Nest service$/m);
  if (start < 0) throw new Error('README has no "Using it from another Nest service" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const install = /^npm install canvas-batch (.+)$/m.exec(section);
  const code = /```ts\n([\s\S]*?)```/.exec(section);
  if (!install || !code)
    throw new Error('the README section lacks its `npm install canvas-batch …` line or ts block');
  return { packages: install[1].trim().split(/\s+/), code: code[1] };
}

/** A test-only file of the host: compile-time proof that the declarations are real types, not `any`. */
const TYPE_CHECKS = `import { AgentRunner, type CanvasBatchOptions, OrchestratorModule } from 'canvas-batch';
import type { AgentRunResult } from 'canvas-batch/agent';
import { CanvasService } from 'canvas-batch/canvas';
import { MemoryStore } from 'canvas-batch/memory';
import { BatchOrchestrator } from 'canvas-batch/orchestrator';
import { TaskStore, type TaskStatus } from 'canvas-batch/session';
// @ts-expect-error internal folders are not exported
import type { DomainError } from 'canvas-batch/dist/common';

// @ts-expect-error vaultRoot is required
export const noVault: CanvasBatchOptions = { dataDir: '/data' };
// @ts-expect-error a result carries its token usage
export const noUsage: AgentRunResult = { markdown: 'x' };
// @ts-expect-error not a task status
export const notAStatus: TaskStatus = 'finished';
export const done: TaskStatus = 'completed';
export const tokens = [AgentRunner, OrchestratorModule, BatchOrchestrator, CanvasService, MemoryStore, TaskStore];
export type Unused = DomainError;
`;

const HOST_TSCONFIG = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'ES2023',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    // as `nest new` sets it: the `ai` SDK's declarations need DOM types otherwise
    skipLibCheck: true,
    outDir: 'dist',
    rootDir: 'src',
  },
  include: ['src/**/*.ts'],
};

describeWithService(
  'canvas-batch packed, installed into a fresh Nest host, compiled and run',
  registryMissing(),
  () => {
    // made in beforeAll, so a skipped suite leaves nothing behind
    let root = '';
    let host = '';
    let started = 0;
    let tarball = '';
    let entries: string[] = [];

    afterAll(() => {
      if (root) rmSync(root, { recursive: true, force: true });
      const seconds = Math.round((Date.now() - started) / 1000);
      process.stderr.write(`[package-install] pack, install, compile and run took ${seconds} s\n`);
    });

    beforeAll(async () => {
      started = Date.now();
      root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-package-'));
      host = path.join(root, 'host');
      const packDir = path.join(root, 'pack');
      mkdirSync(packDir);
      // A copy of the checkout (tests, bench and CI scripts included, so the file list below means something) is
      // packed: prepack's `nest build` (deleteOutDir) then rebuilds the copy's dist/ from its src/, never the dist/
      // that other suites run meanwhile. node_modules is this checkout's, linked.
      const source = path.join(root, 'source');
      cpSync(REPO, source, {
        recursive: true,
        filter: (from) => !NOT_COPIED.has(path.relative(REPO, from)) && !from.endsWith('.tsbuildinfo'),
      });
      symlinkSync(path.join(REPO, 'node_modules'), path.join(source, 'node_modules'), 'dir');
      ok('npm pack', await run('npm', ['pack', '--pack-destination', packDir, '--silent'], source));
      const files = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
      expect(files).toHaveLength(1);
      tarball = path.join(packDir, files[0]);
      entries = ok('tar -tzf', await run('tar', ['-tzf', tarball], root))
        .stdout.split('\n')
        .filter(Boolean)
        .map((e) => e.replace(/^package\//, ''));
    }, 10 * MINUTES);

    it('ships dist/ with its entry points and declarations, the bin and the example vault; no tests, bench or CI', () => {
      const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
        main: string;
        types: string;
        bin: Record<string, string>;
        exports: Record<string, string | Record<string, string>>;
      };
      const has = new Set(entries);
      expect(
        entries.filter((e) => /^(src|test|bench|\.ci|coverage|artifacts|docs|eslint-rules)\//.test(e)),
      ).toEqual([]);
      expect(
        entries.filter((e) => /\.spec\.|\.e2e-spec\.|\.contract\.|\.map$|\.tsbuildinfo$/.test(e)),
      ).toEqual([]);
      // besides dist/, bin/ and the example vault (copied to DATA_DIR/vault when VAULT_ROOT is unset): the contract
      // the standalone server serves at /docs (src/common/api-docs.ts)
      expect(entries.filter((e) => !/^(dist|bin|examples\/vault)\//.test(e)).sort()).toEqual([
        'LICENSE',
        'README.md',
        'package.json',
        'specs/api/parallel-api.openapi.yml',
      ]);
      // every exports target, main, types and bin is in the tarball
      const targets = Object.values(pkg.exports).flatMap((t) =>
        typeof t === 'string' ? [t] : Object.values(t),
      );
      for (const file of [...targets, pkg.main, pkg.types, ...Object.values(pkg.bin)]) {
        expect({ file, shipped: has.has(path.posix.normalize(file)) }).toEqual({ file, shipped: true });
      }
      for (const entry of [
        'index',
        'orchestrator/index',
        'agent/index',
        'session/index',
        'memory/index',
        'canvas/index',
      ]) {
        expect(has.has(`dist/${entry}.js`) && has.has(`dist/${entry}.d.ts`)).toBe(true);
      }
      // what the installed service and CLI read at run time
      expect(has.has('dist/main.js') && has.has('dist/cli/main.js')).toBe(true);
      expect(has.has('examples/vault/Biology/cells.canvas')).toBe(true);
      expect(entries.some((e) => e.startsWith('dist/agent/llm/prompts/') && e.endsWith('.md'))).toBe(true);
    });

    describe('a fresh host project', () => {
      const { packages, code } = readmeHost();

      beforeAll(async () => {
        const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
          peerDependencies: Record<string, string>;
          devDependencies: Record<string, string>;
        };
        mkdirSync(path.join(host, 'src'), { recursive: true });
        writeFileSync(
          path.join(host, 'package.json'),
          JSON.stringify(
            { name: 'host-service', version: '1.0.0', private: true, type: 'commonjs' },
            null,
            2,
          ),
        );
        writeFileSync(path.join(host, 'tsconfig.json'), JSON.stringify(HOST_TSCONFIG, null, 2));
        writeFileSync(path.join(host, 'src', 'main.ts'), code);
        writeFileSync(path.join(host, 'src', 'type-checks.ts'), TYPE_CHECKS);
        // the README's packages at the versions this repository is tested with, plus the host's own compiler
        const versioned = [...packages, 'typescript', '@types/node'].map(
          (name) => `${name}@${pkg.peerDependencies[name] ?? pkg.devDependencies[name]}`,
        );
        // better-sqlite3 compiles from source here: node-gyp needs Node's headers (as .ci/run does)
        const nodedir = spawnSync('npm', ['config', 'get', 'nodedir'], {
          env: childEnv(),
          encoding: 'utf8',
        }).stdout.trim();
        const env = childEnv(
          (!nodedir || nodedir === 'undefined') && existsSync('/usr/include/node')
            ? { npm_config_nodedir: '/usr' }
            : {},
        );
        ok(
          'npm install',
          await run(
            'npm',
            ['install', tarball, ...versioned, '--prefer-offline', '--no-audit', '--no-fund'],
            host,
            env,
          ),
        );
        ok(
          'tsc',
          await run(
            process.execPath,
            [path.join(host, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'],
            host,
          ),
        );
      }, 20 * MINUTES);

      it('the README names the packages a host brings itself: the peer dependencies', () => {
        const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
          peerDependencies: Record<string, string>;
          peerDependenciesMeta: Record<string, { optional?: boolean }>;
        };
        const required = Object.keys(pkg.peerDependencies).filter(
          (n) => !pkg.peerDependenciesMeta[n]?.optional,
        );
        expect([...packages].sort()).toEqual(required.sort());
      });

      it('installed a copy of the tarball (not a link into this repository), with one copy of the Nest packages', () => {
        const installed = realpathSync(path.join(host, 'node_modules', 'canvas-batch'));
        expect(installed).toBe(path.join(realpathSync(host), 'node_modules', 'canvas-batch'));
        expect(existsSync(path.join(installed, 'src'))).toBe(false);
        expect(existsSync(path.join(installed, 'node_modules', '@nestjs', 'core'))).toBe(false);
        expect(existsSync(path.join(installed, 'node_modules', '@nestjs', 'common'))).toBe(false);
        const hostCode = readFileSync(path.join(host, 'src', 'main.ts'), 'utf8') + TYPE_CHECKS;
        expect(
          [...hostCode.matchAll(/from '([^']+)'/g)].map((m) => m[1]).filter((s) => s.startsWith('.')),
        ).toEqual([]);
      });

      it(
        'runs a batch to completion with the host runner, writing result files into the vault',
        async () => {
          const vault = path.join(root, 'vault');
          const canvas = writeDemoCanvas(vault, 'Demo/host.canvas', { '4': 3 });
          const nodeIds = canvas.byColor['4'];
          const r = ok(
            'host service',
            await run(
              process.execPath,
              ['dist/main.js', 'Demo/host.canvas', ...nodeIds],
              host,
              childEnv({ VAULT_ROOT: vault, DATA_DIR: path.join(root, 'data') }),
              5 * MINUTES,
            ),
          );
          const lines = r.stdout.trim().split('\n');
          const status = JSON.parse(lines[lines.length - 1]) as {
            status: string;
            completed_nodes: number;
            failed_nodes: number;
            usage: { input_tokens: number; output_tokens: number };
            groups: { agent_type: string; results: { node_id: string; file_path: string }[] }[];
          };
          expect(status).toMatchObject({ status: 'completed', completed_nodes: 3, failed_nodes: 0 });
          expect(status.usage.output_tokens).toBe(3);
          expect(status.groups[0].agent_type).toBe('oral-explanation');
          const results = status.groups[0].results;
          expect(results.map((x) => x.node_id).sort()).toEqual([...nodeIds].sort());
          const placed = (
            JSON.parse(readFileSync(path.join(vault, 'Demo/host.canvas'), 'utf8')) as {
              nodes: { type: string; file?: string }[];
            }
          ).nodes.flatMap((n) => (n.type === 'file' && n.file ? [n.file] : []));
          for (const result of results) {
            const file = readFileSync(path.join(vault, result.file_path), 'utf8');
            expect(file).toMatch(/SHOUTED: # CONCEPT 4\.\d\nHOW TOPIC \d OF COLOUR 4 WORKS/);
            expect(placed).toContain(result.file_path);
          }
        },
        10 * MINUTES,
      );

      it('refuses deep imports of internal folders at run time', async () => {
        const r = await run(process.execPath, ['-e', "require('canvas-batch/dist/common')"], host);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
      });

      it('installs the canvas-batch command, which runs from the installed package', async () => {
        const bin = path.join(host, 'node_modules', '.bin', 'canvas-batch');
        const help = ok('canvas-batch --help', await run(bin, ['--help'], host));
        expect(help.stdout).toMatch(/^Usage: canvas-batch /m);
        expect(help.stdout).toMatch(/^\s+run \[options\] <canvas>/m);
        const version = ok('canvas-batch --version', await run(bin, ['--version'], host));
        const { version: expected } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
          version: string;
        };
        expect(version.stdout.trim()).toBe(expected);
      });

      it(
        'runs the bundled server from the package once the host adds @nestjs/platform-express',
        async () => {
          const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
            peerDependencies: Record<string, string>;
          };
          const platform = `@nestjs/platform-express@${pkg.peerDependencies['@nestjs/platform-express']}`;
          const flags = ['--prefer-offline', '--no-audit', '--no-fund'];
          ok('npm install (platform)', await run('npm', ['install', platform, ...flags], host));
          // Only the settings named here (not REDIS_URL, API_TOKEN, … that .ci/run may export): the embedded engine, no
          // token, and no VAULT_ROOT, so the server copies the package's example vault into DATA_DIR/vault.
          const bare = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
          const dataDir = path.join(root, 'server-data');
          const server = await startInstalledServer(host, { ...bare, DATA_DIR: dataDir });
          try {
            expect((await fetch(`${server.url}/health`)).status).toBe(200);
            const contract = (await (await fetch(`${server.url}/docs/openapi.json`)).json()) as {
              openapi?: string;
            };
            expect(contract.openapi).toMatch(/^3\./);
            // the installed command drives it
            const args = [
              'run',
              'Biology/cells.canvas',
              '--agent',
              'oral-explanation',
              '--nodes',
              CELL_THEORY,
              '--wait',
            ];
            const env = { ...bare, CANVAS_BATCH_URL: server.url };
            const batch = await run(path.join(host, 'node_modules', '.bin', 'canvas-batch'), args, host, env);
            expect({ code: batch.code, stdout: batch.stdout }).toEqual({
              code: 0,
              stdout: expect.stringMatching(
                /^task [0-9a-f-]{36} completed: 1 completed, 0 failed/m,
              ) as string,
            });
            const file = new RegExp(`^${CELL_THEORY}\\s+(Biology/.+\\.md)$`, 'm').exec(batch.stdout);
            expect(file && existsSync(path.join(dataDir, 'vault', file[1]))).toBe(true);
          } finally {
            await server.stop();
          }
        },
        10 * MINUTES,
      );
    });
  },
);
