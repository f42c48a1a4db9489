#!/usr/bin/env node
// The `canvas-batch` command. Runs the built CLI (dist/, from `npm run build`); in a source checkout without a build,
// or with CANVAS_BATCH_FROM_SOURCE=1, runs the TypeScript source through @swc-node/register (a dev dependency).
'use strict';
const path = require('node:path');
const fs = require('node:fs');

const built = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (process.env.CANVAS_BATCH_FROM_SOURCE !== '1' && fs.existsSync(built)) {
  require(built);
} else {
  require('@swc-node/register');
  require(path.join(__dirname, '..', 'src', 'cli', 'main.ts'));
}
