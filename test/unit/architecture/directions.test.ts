// The intended import directions between lab's layers (labfile -> plan -> render -> providers/guest
// -> apply -> ui -> cmd, beside them runtime, store, spec) as `npm run lint` checks them: the rules of
// eslint.config.js, run through ESLint's Node API on planted imports. Each forbidden direction
// gets one planted import that must draw exactly its rule, each allowed one an import that must
// draw nothing, so the test fails both when a zone is lost and when one is too wide. The
// planted files do not exist: they are parsed without the TypeScript project service (the
// import rules need no types), and their imports resolve against the real tree.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(fileURLToPath(import.meta.url), '../../../..');
const fixtures = 'test/fixtures/architecture';
const ZONE = 'import-x/no-restricted-paths';

let eslint: ESLint;

beforeAll(async () => {
  // The cycle fixtures are real files outside lab/ and cmd/, ignored by the normal run: lint
  // them with the no-cycle setup that the real config gives a file in lab/.
  const real = (await new ESLint({ cwd: root }).calculateConfigForFile('lab/planted.ts')) as Linter.Config;
  const cycleRule = real.rules?.['import-x/no-cycle'];
  expect(Array.isArray(cycleRule) && cycleRule[0]).toBe(2); // on, as an error, in lab/
  eslint = new ESLint({
    cwd: root,
    ignore: false,
    overrideConfig: [
      { languageOptions: { parserOptions: { projectService: false } } },
      {
        files: [`${fixtures}/**/*.ts`],
        plugins: { 'import-x': real.plugins!['import-x']! },
        settings: real.settings!,
        rules: { 'import-x/no-cycle': cycleRule!, 'import-x/no-unresolved': 'error' },
      },
    ],
    ruleFilter: ({ ruleId }) => ruleId.startsWith('import-x/') || ruleId === 'no-restricted-imports',
  });
  await lint('lab/planted.ts', "import { LabError } from './errors.js';\nexport { LabError };\n");
}, 30_000);

/** The rule ids reported, and a parse failure as its message, in order. */
async function lint(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, filePath) });
  return result!.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

/** A module that exists today in `target` (a folder: its first source file; else the file). */
function moduleIn(target: string): string {
  if (/\.tsx?$/.test(target) || (!target.startsWith('lab') && !target.startsWith('cmd'))) return target;
  const found = readdirSync(path.join(root, target), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.tsx?$/.test(f))
    .sort();
  if (found.length === 0) throw new Error(`no source file in ${target}/ to plant an import of`);
  return path.join(target, found[0]!);
}

/** The NodeNext specifier (`./x.js` for `./x.ts`) by which `from` imports `target`. */
function specifier(from: string, target: string): string {
  const file = moduleIn(target);
  if (!file.startsWith('lab') && !file.startsWith('cmd')) return file; // a package
  const rel = path.relative(path.dirname(from), file).replace(/\.tsx?$/, '.js');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

type Form = 'import' | 'import type' | 'import()' | 'export from';

function planted(from: string, target: string, form: Form = 'import'): string {
  const s = specifier(from, target);
  switch (form) {
    case 'import':
      return `import * as planted from '${s}';\nexport { planted };\n`;
    case 'import type':
      return `import type * as planted from '${s}';\nexport type Planted = typeof planted;\n`;
    case 'import()':
      return `export const planted = () => import('${s}');\n`;
    case 'export from':
      return `export * from '${s}';\n`;
  }
}

interface Row {
  from: string;
  to: string;
  form?: Form;
  rule?: string;
}

/** Fills in the defaults, so that each row's title names its form. */
const rows = (list: Row[]): Required<Row>[] => list.map((r) => ({ form: 'import', rule: ZONE, ...r }));

const forbidden: Row[] = [
  // The pure core: no layer above it, no template loader, no I/O.
  { from: 'lab/labfile/planted.ts', to: 'lab/providers' },
  { from: 'lab/plan/planted.ts', to: 'lab/guest' },
  { from: 'lab/render/planted.ts', to: 'lab/apply' },
  { from: 'lab/plan/planted.ts', to: 'lab/ui' },
  { from: 'lab/render/planted.ts', to: 'lab/store' },
  { from: 'lab/labfile/planted.ts', to: 'lab/runtime' },
  { from: 'lab/plan/planted.ts', to: 'lab/spec' },
  { from: 'lab/render/planted.ts', to: 'lab/templates/load.ts' },
  { from: 'lab/plan/planted.ts', to: 'node:fs', rule: 'no-restricted-imports' },
  { from: 'lab/render/planted.ts', to: 'execa', rule: 'no-restricted-imports' },
  // providers and guest sit below apply and ui, beside each other one way.
  { from: 'lab/providers/planted.ts', to: 'lab/apply' },
  { from: 'lab/providers/planted.ts', to: 'lab/guest' },
  { from: 'lab/providers/planted.ts', to: 'lab/ui' },
  { from: 'lab/guest/planted.ts', to: 'lab/apply' },
  { from: 'lab/guest/planted.ts', to: 'lab/ui' },
  // ui shows what apply reports, without reaching the host itself; apply does not know ui.
  { from: 'lab/ui/planted.ts', to: 'lab/providers' },
  { from: 'lab/apply/planted.ts', to: 'lab/ui' },
  { from: 'lab/apply/planted.ts', to: 'lab/ui', form: 'import type' },
  { from: 'lab/apply/planted.ts', to: 'lab/ui', form: 'import()' },
  { from: 'lab/apply/planted.ts', to: 'lab/ui', form: 'export from' },
  // runtime: only lab/errors.ts and node built-ins.
  { from: 'lab/runtime/planted.ts', to: 'lab/providers' },
  { from: 'lab/runtime/planted.ts', to: 'lab/guest' },
  { from: 'lab/runtime/planted.ts', to: 'lab/apply' },
  { from: 'lab/runtime/planted.ts', to: 'lab/ui' },
  { from: 'lab/runtime/planted.ts', to: 'lab/store' },
  { from: 'lab/runtime/planted.ts', to: 'lab/plan' },
  { from: 'lab/runtime/planted.ts', to: 'lab/events.ts' },
  // store: the lab folder, state file and locks.
  { from: 'lab/store/planted.ts', to: 'lab/providers' },
  { from: 'lab/store/planted.ts', to: 'lab/guest' },
  { from: 'lab/store/planted.ts', to: 'lab/apply' },
  { from: 'lab/store/planted.ts', to: 'lab/ui' },
  // spec: a Labfile into a LabSpec.
  { from: 'lab/spec/planted.ts', to: 'lab/providers' },
  { from: 'lab/spec/planted.ts', to: 'lab/guest' },
  { from: 'lab/spec/planted.ts', to: 'lab/apply' },
  { from: 'lab/spec/planted.ts', to: 'lab/ui' },
  { from: 'lab/spec/planted.ts', to: 'lab/store' },
  // Nothing in lab/ imports cmd/.
  { from: 'lab/planted.ts', to: 'cmd' },
  { from: 'lab/plan/planted.ts', to: 'cmd' },
  { from: 'lab/providers/planted.ts', to: 'cmd' },
  { from: 'lab/guest/planted.ts', to: 'cmd' },
  { from: 'lab/ui/planted.ts', to: 'cmd/output.ts' },
  { from: 'lab/apply/planted.ts', to: 'cmd' },
  { from: 'lab/runtime/planted.ts', to: 'cmd' },
  { from: 'lab/store/planted.ts', to: 'cmd' },
  { from: 'lab/spec/planted.ts', to: 'cmd' },
  // One process wrapper: only lab/runtime/exec.ts starts programs.
  { from: 'lab/providers/planted.ts', to: 'execa', rule: 'no-restricted-imports' },
  { from: 'lab/guest/planted.ts', to: 'node:child_process', rule: 'no-restricted-imports' },
  { from: 'lab/store/planted.ts', to: 'execa', rule: 'no-restricted-imports' },
  { from: 'cmd/commands/planted.ts', to: 'child_process', rule: 'no-restricted-imports' },
  { from: 'lab/runtime/planted.ts', to: 'execa', rule: 'no-restricted-imports' },
  // An import that does not resolve is an error, not a silent pass of the rules above.
  { from: 'lab/apply/planted.ts', to: 'lab/apply/no-such-module.ts', rule: 'import-x/no-unresolved' },
];

const allowed: Row[] = [
  { from: 'lab/plan/planted.ts', to: 'lab/labfile' },
  { from: 'lab/render/planted.ts', to: 'lab/plan' },
  { from: 'lab/plan/planted.ts', to: 'lab/templates/schema.ts' },
  { from: 'lab/labfile/planted.ts', to: 'lab/errors.ts' },
  { from: 'lab/render/planted.ts', to: 'lab/events.ts' },
  { from: 'lab/plan/planted.ts', to: 'node:path' },
  { from: 'lab/providers/planted.ts', to: 'lab/render/types.ts' },
  { from: 'lab/providers/planted.ts', to: 'lab/store' },
  { from: 'lab/providers/planted.ts', to: 'lab/runtime' },
  { from: 'lab/guest/planted.ts', to: 'lab/runtime' },
  { from: 'lab/apply/planted.ts', to: 'lab/providers' },
  { from: 'lab/apply/planted.ts', to: 'lab/guest' },
  { from: 'lab/apply/planted.ts', to: 'lab/store' },
  { from: 'lab/apply/planted.ts', to: 'lab/spec' },
  { from: 'lab/ui/planted.ts', to: 'lab/apply' },
  { from: 'lab/ui/planted.ts', to: 'lab/apply', form: 'import type' },
  { from: 'lab/runtime/planted.ts', to: 'lab/errors.ts' },
  { from: 'lab/runtime/planted.ts', to: 'lab/runtime' },
  { from: 'lab/store/planted.ts', to: 'lab/runtime' },
  { from: 'lab/store/planted.ts', to: 'lab/plan' },
  { from: 'lab/store/planted.ts', to: 'lab/render/types.ts' },
  { from: 'lab/spec/planted.ts', to: 'lab/labfile' },
  { from: 'lab/spec/planted.ts', to: 'lab/plan' },
  { from: 'lab/spec/planted.ts', to: 'lab/templates/load.ts' },
  { from: 'cmd/planted.ts', to: 'lab/ui', form: 'import()' },
  { from: 'cmd/commands/planted.ts', to: 'lab/providers' },
  { from: 'cmd/commands/planted.ts', to: 'cmd/output.ts' },
  { from: 'lab/runtime/exec.ts', to: 'execa' },
];

describe('import directions', () => {
  it.each(rows(forbidden))('$from may not import $to ($form): $rule', async ({ from, to, form, rule }) => {
    expect(await lint(from, planted(from, to, form))).toEqual([rule]);
  });

  it.each(rows(allowed))('$from may import $to ($form)', async ({ from, to, form }) => {
    expect(await lint(from, planted(from, to, form))).toEqual([]);
  });
});

describe('import cycles', () => {
  it.each([
    { file: 'cycle/a.ts', rules: ['import-x/no-cycle'] },
    { file: 'cycle/b.ts', rules: ['import-x/no-cycle'] },
    // A value import one way, only a type back: erased at run time, so not a cycle to no-cycle.
    { file: 'type-cycle/a.ts', rules: [] },
    { file: 'type-cycle/b.ts', rules: [] },
  ])('$file: $rules', async ({ file, rules }) => {
    const [result] = await eslint.lintFiles([path.join(root, fixtures, file)]);
    expect(result!.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`)).toEqual(rules);
  });
});
