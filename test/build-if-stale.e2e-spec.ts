import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/**
 * `npm start` runs bin/build-if-stale.js first (`prestart`, and `prepare` on install): it builds only when dist/ is
 * missing or older than its sources. Run for real on a copy of the script in a project of its own, whose
 * `@nestjs/cli` is a stand-in that records each build and writes dist/main.js as `nest build` would.
 */
describe('bin/build-if-stale.js (npm start builds only when the sources changed)', () => {
  let root: string;
  const builds = (): number =>
    existsSync(path.join(root, 'builds.log'))
      ? readFileSync(path.join(root, 'builds.log'), 'utf8').length
      : 0;
  const run = (...args: string[]): { status: number | null; stderr: string } => {
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'build-if-stale.js'), ...args], {
      cwd: root,
      encoding: 'utf8',
    });
    return { status: r.status, stderr: r.stderr };
  };
  /** Sets a file's modification time `seconds` from now (the build writes dist/main.js "now"). */
  const age = (file: string, seconds: number): void => {
    const when = new Date(Date.now() + seconds * 1000);
    utimesSync(path.join(root, file), when, when);
  };

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'build-if-stale-'));
    mkdirSync(path.join(root, 'bin'));
    copyFileSync(
      path.join(__dirname, '..', 'bin', 'build-if-stale.js'),
      path.join(root, 'bin', 'build-if-stale.js'),
    );
    mkdirSync(path.join(root, 'src', 'deep'), { recursive: true });
    writeFileSync(path.join(root, 'src', 'deep', 'main.ts'), 'export {};\n');
    writeFileSync(path.join(root, 'tsconfig.json'), '{}\n');
    writeFileSync(path.join(root, 'nest-cli.json'), '{}\n');
    const cli = path.join(root, 'node_modules', '@nestjs', 'cli');
    mkdirSync(path.join(cli, 'bin'), { recursive: true });
    writeFileSync(
      path.join(cli, 'package.json'),
      JSON.stringify({ name: '@nestjs/cli', bin: { nest: 'bin/nest.js' } }),
    );
    writeFileSync(
      path.join(cli, 'bin', 'nest.js'),
      `const fs = require('node:fs');
       if (process.argv[2] !== 'build') process.exit(2);
       fs.appendFileSync('builds.log', 'b');
       fs.mkdirSync('dist', { recursive: true });
       fs.writeFileSync('dist/main.js', '');`,
    );
    // sources written a minute ago: what a checkout looks like before its first build
    for (const f of ['src/deep/main.ts', 'tsconfig.json', 'nest-cli.json']) age(f, -60);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('builds when dist/ is missing, then not again until a source changes', () => {
    expect(run()).toMatchObject({
      status: 0,
      stderr: expect.stringContaining('dist/main.js does not exist yet'),
    });
    expect(builds()).toBe(1);
    expect(run()).toEqual({ status: 0, stderr: '' });
    expect(builds()).toBe(1);
    age('dist/main.js', -30);
    age('src/deep/main.ts', 0);
    expect(run()).toMatchObject({ status: 0, stderr: expect.stringContaining('src/deep/main.ts changed') });
    expect(builds()).toBe(2);
  });

  it('a changed tsconfig or nest-cli.json rebuilds too; --force always builds', () => {
    run();
    age('dist/main.js', -30);
    age('tsconfig.json', 0);
    expect(run().stderr).toContain('tsconfig.json changed');
    age('dist/main.js', -30);
    age('nest-cli.json', 0);
    expect(run().stderr).toContain('nest-cli.json changed');
    expect(run('--force').stderr).toContain('--force');
    expect(builds()).toBe(4);
  });

  it('without the Nest CLI (an install without dev dependencies): keeps an existing build, fails without one', () => {
    rmSync(path.join(root, 'node_modules'), { recursive: true });
    expect(run()).toMatchObject({ status: 1, stderr: expect.stringContaining('dist/ is missing') });
    mkdirSync(path.join(root, 'dist'));
    writeFileSync(path.join(root, 'dist', 'main.js'), '');
    age('dist/main.js', -90);
    expect(run()).toMatchObject({ status: 0, stderr: expect.stringContaining('not rebuilding') });
  });

  it('a failing build fails with its status', () => {
    writeFileSync(path.join(root, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js'), 'process.exit(3);');
    expect(run()).toMatchObject({ status: 3, stderr: expect.stringContaining('the build failed') });
  });
});
