// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const pureCore = ['lab/labfile/**', 'lab/plan/**', 'lab/render/**'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The pure core never does I/O: no files, processes, sockets, terminals or clocks.
    files: pureCore,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            'node:fs',
            'node:fs/promises',
            'fs',
            'execa',
            'ssh2',
            'ink',
            'node:child_process',
            'node:net',
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'pure core: pass time in' },
        { object: 'Math', property: 'random', message: 'pure core: derive from inputs' },
      ],
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
