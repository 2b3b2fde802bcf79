// Lint rules for every TypeScript file (sources, tests, benches) and the CLI launcher. Type-aware
// where it matters: a promise nobody awaits or handles is an error (a rejection would end the
// process, an un-awaited step would race), and so is passing an async function where a callback's
// result is ignored. The status page's browser scripts (agent/status-page/) are plain files served
// as they are and checked in chromium by test/agent/status-page.test.ts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'agent/status-page/', 'coverage/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['bin/*.js', 'eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-duplicate-imports': ['error', { includeExports: true }],
      // greenlight escapes control characters from remote text on purpose: the patterns name them.
      'no-control-regex': 'off',
      // A variable set once, later than a closure that reads it (a listener's address, known once bound).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // The CLI launcher is plain JavaScript for Node.
    files: ['bin/*.js'],
    languageOptions: { globals: { process: 'readonly' } },
  },
  {
    // Tests read wire formats (JSON bodies of fakes and simulators) loosely on purpose.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
