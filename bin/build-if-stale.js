#!/usr/bin/env node
// Builds dist/ (`nest build`) only when it is missing or older than its sources: a file under src/, nest-cli.json or
// a tsconfig*.json changed since dist/main.js was written. `npm start` runs it first (a start without changes takes
// no build), and so does `npm install` (`prepare`). `--force` builds anyway.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const entry = path.join(root, 'dist', 'main.js');

/** Newest modification time (ms) of the files under `dir`, and the file that has it. */
function newestUnder(dir, newest) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) newestUnder(file, newest);
    else if (entry.isFile()) {
      const mtime = fs.statSync(file).mtimeMs;
      if (mtime > newest.mtime) Object.assign(newest, { mtime, file });
    }
  }
  return newest;
}

/** Why dist/ must be built, or undefined when it is up to date. */
function staleness() {
  if (process.argv.includes('--force')) return 'asked for (--force)';
  if (!fs.existsSync(entry)) return 'dist/main.js does not exist yet';
  const built = fs.statSync(entry).mtimeMs;
  const newest = newestUnder(path.join(root, 'src'), { mtime: 0, file: '' });
  for (const name of fs.readdirSync(root)) {
    if (name === 'nest-cli.json' || /^tsconfig.*\.json$/.test(name)) {
      const mtime = fs.statSync(path.join(root, name)).mtimeMs;
      if (mtime > newest.mtime) Object.assign(newest, { mtime, file: path.join(root, name) });
    }
  }
  return newest.mtime > built
    ? `${path.relative(root, newest.file)} changed since the last build`
    : undefined;
}

/** The Nest CLI's script, or undefined when it is not installed (an install without dev dependencies). */
function nestCli() {
  try {
    const pkg = require.resolve('@nestjs/cli/package.json', { paths: [root] });
    return path.join(path.dirname(pkg), require(pkg).bin.nest);
  } catch {
    return undefined;
  }
}

const reason = staleness();
if (reason === undefined) process.exit(0);
const cli = nestCli();
if (cli === undefined) {
  if (fs.existsSync(entry)) {
    process.stderr.write(`canvas-batch: not rebuilding (${reason}): @nestjs/cli is not installed\n`);
    process.exit(0);
  }
  process.stderr.write(
    'canvas-batch: dist/ is missing and @nestjs/cli (a dev dependency) is not installed: run `npm install`, then ' +
      '`npm run build`\n',
  );
  process.exit(1);
}
process.stderr.write(`canvas-batch: building dist/ (${reason})…\n`);
const started = Date.now();
const build = spawnSync(process.execPath, [cli, 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  process.stderr.write('canvas-batch: the build failed (see above)\n');
  process.exit(build.status ?? 1);
}
process.stderr.write(`canvas-batch: built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
