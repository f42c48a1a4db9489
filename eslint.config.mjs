// @ts-check
import path from 'node:path';
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';
import { folderBoundaries } from './eslint-rules/folder-boundaries.mjs';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'coverage/**',
      'node_modules/**',
      'data/**',
      '.cache/**',
      'examples/**',
      'eslint.config.mjs',
      'jest.config.js',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-extraneous-class': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // folder boundaries (README "Architecture"): another folder imports one of src/ only through its index.ts, a
    // folder never through its own index.ts; rule in eslint-rules/folder-boundaries.mjs, cycles in
    // src/architecture.spec.ts. Spec files in src/ obey it too (they import their own folder's files directly).
    // test/ and bench/ are exempt: they are white-box tests and drive internals (fakes, timings) deliberately.
    files: ['src/**/*.ts'],
    plugins: { local: { rules: { 'folder-boundaries': folderBoundaries } } },
    rules: { 'local/folder-boundaries': ['error', { srcDir: path.join(import.meta.dirname, 'src') }] },
  },
  {
    // the dashboard's browser code: plain ES modules served as they are (no type information)
    files: ['src/dashboard/public/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'window',
          'document',
          'fetch',
          'EventSource',
          'setTimeout',
          'clearTimeout',
          'clearInterval',
          'setInterval',
          'URLSearchParams',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
  {
    // local ESLint rules: ES modules run by node
    files: ['eslint-rules/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // the CLI's launcher: a CommonJS script run by node
    files: ['bin/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'commonjs',
      globals: { require: 'readonly', __dirname: 'readonly', process: 'readonly' },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts', 'src/**/*.spec.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
