// @ts-check
import path from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const pureCore = ['lab/labfile/**', 'lab/plan/**', 'lab/render/**'];

// The intended directions between the layers (data flows labfile -> plan -> render ->
// providers/guest -> apply -> ui -> cmd). Each zone: files under `target` may not import
// anything under `from` (paths from the repository root; `except` is relative to `from`).
// Zones do not overlap, so one wrong import is one report.
const core = ['lab/labfile', 'lab/plan', 'lab/render'];
const directions = [
  { target: 'lab', from: 'cmd', message: 'Nothing in lab/ imports cmd/: the CLI sits on top.' },
  {
    target: core,
    from: ['lab/providers', 'lab/guest', 'lab/apply', 'lab/ui', 'lab/store', 'lab/runtime', 'lab/spec'],
    message: 'The pure core (labfile, plan, render) imports no layer above it.',
  },
  {
    target: core,
    from: 'lab/templates/load.ts',
    message: "The pure core may use templates' schema and parser, not the loader: it reads files.",
  },
  {
    target: 'lab/runtime',
    from: 'lab',
    except: ['./errors.ts', './runtime'],
    message: 'lab/runtime imports only lab/errors.ts and node built-ins.',
  },
  {
    target: 'lab/store',
    from: ['lab/providers', 'lab/guest', 'lab/apply', 'lab/ui'],
    message: 'lab/store (lab folder, state file, locks) sits below providers, guest, apply and ui.',
  },
  {
    target: 'lab/spec',
    from: ['lab/providers', 'lab/guest', 'lab/apply', 'lab/ui', 'lab/store'],
    message: 'lab/spec (Labfile -> LabSpec) imports neither providers, guest, apply, ui nor store.',
  },
  {
    target: 'lab/providers',
    from: ['lab/apply', 'lab/guest', 'lab/ui'],
    message: 'lab/providers imports neither apply, guest nor ui.',
  },
  { target: 'lab/guest', from: ['lab/apply', 'lab/ui'], message: 'lab/guest imports neither apply nor ui.' },
  { target: 'lab/ui', from: 'lab/providers', message: 'lab/ui never imports lab/providers.' },
  { target: 'lab/apply', from: 'lab/ui', message: 'lab/apply never imports lab/ui: ui reads apply.' },
];

// The import directions and the cycle check (test/unit/architecture/directions.test.ts plants
// a wrong import for each and shows it fire).
const architecture = {
  files: ['lab/**/*.{ts,tsx}', 'cmd/**/*.{ts,tsx}'],
  plugins: { 'import-x': importX },
  settings: {
    'import-x/extensions': ['.ts', '.tsx', '.js'],
    'import-x/external-module-folders': ['node_modules', 'node_modules/@types'],
    'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
    // Resolves NodeNext's './x.js' to './x.ts'. An import that does not resolve is reported by
    // no-unresolved, since no-restricted-paths and no-cycle silently skip it.
    'import-x/resolver-next': [
      createTypeScriptImportResolver({ project: path.join(import.meta.dirname, 'tsconfig.json') }),
    ],
  },
  rules: {
    'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: directions }],
    // Counts value imports, static and dynamic; an `import type` edge is erased at run time and
    // not counted (lab/guest/probes/*.ts take their types from the index that imports them).
    'import-x/no-cycle': ['error', { ignoreExternal: true }],
    'import-x/no-unresolved': 'error',
  },
};

export default tseslint.config(
  // test/fixtures/architecture/ holds deliberately wrong imports (a cycle) for the architecture test.
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/fixtures/architecture/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // One process wrapper: every program lab starts goes through lab/runtime/exec.ts
    // (argv only, LC_ALL=C, seen by --debug). The pure core's rule below is stricter still.
    files: ['lab/**/*.{ts,tsx}', 'cmd/**/*.{ts,tsx}'],
    ignores: ['lab/runtime/exec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['execa', 'node:child_process', 'child_process'].map((name) => ({
            name,
            message: 'start programs through lab/runtime/exec.ts (run, spawnProgram)',
          })),
        },
      ],
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
  architecture,
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
