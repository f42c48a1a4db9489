// Jest 30 on Node 20 cannot load the ESM-only Nest 12 packages by itself: @swc/jest transforms them
// (and our TypeScript) to CommonJS.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
  },
];
const esmOnly = [
  '@nestjs',
  '@ai-sdk',
  'ai',
  'zod',
  '@standard-schema',
  '@workflow',
  '@vercel',
  'file-type',
  'p-limit',
  'yocto-queue',
  'eventsource',
  'eventsource-parser',
  'uid',
  'load-esm',
  '@mdit',
  // ml-kmeans and the ml-* packages it uses (and theirs)
  'ml-[a-z-]+',
  'is-any-array',
];
const shared = {
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j|mj)s$': swc },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...shared,
      displayName: 'unit',
      rootDir: '.',
      testMatch: ['<rootDir>/src/**/*.spec.ts'],
      setupFiles: ['<rootDir>/test/support/fast-check-setup.ts'],
    },
    { ...shared, displayName: 'e2e', rootDir: '.', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
  // the two process entry points (server and CLI) only wire the process; their code runs in child processes
  collectCoverageFrom: ['src/**/*.ts', '!src/**/*.spec.ts', '!src/main.ts', '!src/cli/main.ts', '!src/**/*.d.ts'],
  coverageReporters: ['text-summary', 'text', 'lcov'],
  coverageThreshold: { global: { lines: 90, branches: 90, statements: 90, functions: 90 } },
  testTimeout: 30000,
};
