// S9: no shell and no argument injection.
// (a) A gate over lab/ and cmd/ sources, on the TypeScript syntax tree (not on text, so
//     comments, strings and regexes' `.exec(` do not count): no `shell:` option, no
//     execaCommand or execa's `$`/template form, no child_process exec/execSync, no command
//     given as one string, no interpolated `sh -c` script. Each rule is shown to fire on a
//     planted snippet and to stay quiet on its near misses, so an empty result means something.
// (b) virsh and qemu-img replaced by recording fakes first on PATH; the Virsh verbs driven
//     with hostile names: each value is one whole argv element after a named option, after
//     `-q -c URI` and the command, and no shell ever runs it.
import { execa } from 'execa';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOverlay, imageInfo } from '../../../lab/providers/qemu-img.js';
import { Virsh } from '../../../lab/providers/virsh.js';
import {
  createSnapshot,
  deleteSnapshot,
  revertSnapshot,
  setGuestTime,
  snapshotNames,
  suspend,
} from '../../../lab/providers/snapshots.js';
import { escapeXml } from '../../../lab/render/xml.js';

const ROOT = path.join(import.meta.dirname, '../../..');

// ---------------------------------------------------------------------------------------
// (a) the gate

interface Finding {
  file: string;
  line: number;
  rule: string;
  text: string;
}

/** Functions that start a program (lab's run, as imported or renamed `exec`, and execa/node's). */
const PROCESS_FNS = new Set([
  'run',
  'exec',
  'execa',
  'execaSync',
  'execaNode',
  'spawn',
  'spawnSync',
  'execFile',
  'execFileSync',
  'fork',
]);
/** The same, as methods: `cp.spawn(…)`. Not `.exec`: RegExp#exec and the guest's exec are not processes. */
const PROCESS_METHODS = new Set([
  'execa',
  'execaSync',
  'execaNode',
  'spawn',
  'spawnSync',
  'execFile',
  'execFileSync',
]);
const CHILD_PROCESS = new Set(['child_process', 'node:child_process']);
const SHELL_FLAGS = new Set(['-c', '-lc', '-ec', '-ic']);

function calleeName(call: ts.CallExpression): { name: string; method: boolean } | undefined {
  const e = call.expression;
  if (ts.isIdentifier(e)) return { name: e.text, method: false };
  if (ts.isPropertyAccessExpression(e)) return { name: e.name.text, method: true };
  return undefined;
}
const isProcessCall = (call: ts.CallExpression) => {
  const c = calleeName(call);
  return c !== undefined && (c.method ? PROCESS_METHODS.has(c.name) : PROCESS_FNS.has(c.name));
};
const propName = (p: ts.ObjectLiteralElementLike) =>
  p.name && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) ? p.name.text : undefined;
/** A string built at run time, or a literal with a space in it: a command line, not a program. */
const isCommandString = (e: ts.Expression) =>
  ts.isTemplateExpression(e) ||
  ts.isNoSubstitutionTemplateLiteral(e) ||
  (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.PlusToken) ||
  (ts.isStringLiteral(e) && /\s/.test(e.text));
const isBuiltString = (e: ts.Expression) =>
  ts.isTemplateExpression(e) ||
  (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.PlusToken);

/** Every violation of S9's rules in one source file. Pure. */
function scanSource(file: string, source: string): Finding[] {
  const sf = ts.createSourceFile(
    file,
    source,
    ts.ScriptTarget.Latest,
    true,
    file.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS,
  );
  const out: Finding[] = [];
  const flag = (node: ts.Node, rule: string) =>
    out.push({
      file,
      line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1,
      rule,
      text: node.getText(sf).split('\n')[0]!.slice(0, 120),
    });
  /** Names this file gives node:child_process as a whole (`import * as cp`, `import cp`). */
  const cpNamespaces = new Set<string>();

  const visit = (node: ts.Node): void => {
    // Imports from child_process and execa.
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const from = node.moduleSpecifier.text;
      const clause = node.importClause;
      const named =
        clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : [];
      if (CHILD_PROCESS.has(from)) {
        if (clause?.name) cpNamespaces.add(clause.name.text);
        if (clause?.namedBindings && ts.isNamespaceImport(clause.namedBindings))
          cpNamespaces.add(clause.namedBindings.name.text);
        for (const el of named)
          if (['exec', 'execSync'].includes((el.propertyName ?? el.name).text))
            flag(el, 'child_process exec');
      }
      if (from === 'execa')
        for (const el of named) if ((el.propertyName ?? el.name).text === '$') flag(el, 'execa script ($)');
    }
    // execaCommand, execSync: forbidden whatever they are called on.
    if (ts.isIdentifier(node) && ['execaCommand', 'execaCommandSync'].includes(node.text))
      flag(node, 'execaCommand');
    if (ts.isIdentifier(node) && node.text === 'execSync' && !ts.isImportSpecifier(node.parent))
      flag(node, 'child_process exec');
    // cp.exec(…), require('child_process').exec
    if (ts.isPropertyAccessExpression(node) && ['exec', 'execSync'].includes(node.name.text)) {
      const obj = node.expression;
      const isCp =
        (ts.isIdentifier(obj) && cpNamespaces.has(obj.text)) ||
        (ts.isCallExpression(obj) &&
          obj.arguments.some((a) => ts.isStringLiteral(a) && CHILD_PROCESS.has(a.text)));
      if (isCp) flag(node, 'child_process exec');
    }
    // execa`…`, $`…`, execa({…})`…`: a command parsed from one string.
    if (ts.isTaggedTemplateExpression(node)) {
      let tag: ts.Expression = node.tag;
      if (ts.isCallExpression(tag)) tag = tag.expression;
      if (
        ts.isPropertyAccessExpression(tag) &&
        ts.isIdentifier(tag.expression) &&
        tag.expression.text === '$'
      )
        tag = tag.expression;
      if (ts.isIdentifier(tag) && ['$', 'execa', 'execaSync', 'execaNode'].includes(tag.text))
        flag(node, 'execa script ($)');
    }
    // `shell: true` anywhere (no user's login shell is `true`).
    if (
      ts.isPropertyAssignment(node) &&
      propName(node) === 'shell' &&
      node.initializer.kind === ts.SyntaxKind.TrueKeyword
    )
      flag(node, 'shell option');
    if (ts.isCallExpression(node) && isProcessCall(node)) {
      const [first] = node.arguments;
      // The options of a process call: any `shell` but `false` (`true` is flagged above).
      for (const arg of node.arguments)
        if (ts.isObjectLiteralExpression(arg))
          for (const p of arg.properties) {
            const value = ts.isPropertyAssignment(p) ? p.initializer.kind : undefined;
            if (
              propName(p) === 'shell' &&
              value !== ts.SyntaxKind.FalseKeyword &&
              value !== ts.SyntaxKind.TrueKeyword
            )
              flag(p, 'shell option');
          }
      if (first && isCommandString(first)) flag(node, 'command as one string');
      const c = calleeName(node)!;
      if (['spawn', 'spawnSync'].includes(c.name) && node.arguments.length < 2)
        flag(node, 'command as one string');
    }
    // ['sh', '-c', `… ${x}`]: a shell script with data pasted in.
    if (ts.isArrayLiteralExpression(node))
      node.elements.forEach((el, i) => {
        const next = node.elements[i + 1];
        if (ts.isStringLiteral(el) && SHELL_FLAGS.has(el.text) && next && isBuiltString(next))
          flag(next, 'interpolated sh -c');
      });
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function sources(dir: string): string[] {
  return (readdirSync(path.join(ROOT, dir), { recursive: true }) as string[])
    .filter((f) => /\.tsx?$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f))
    .sort();
}

/** [rule, bad snippet] — each must be found. */
const PLANTED: [string, string][] = [
  ['shell option', `await execa('ls', [], { shell: true });`],
  ['shell option', `const o = { shell: true };\nawait execa('ls', [], o);`],
  ['shell option', `spawn('ls', ['-l'], { shell: '/bin/bash' });`],
  ['shell option', `await run('ls', [], { timeoutMs: 1, shell });`],
  ['execaCommand', `import { execaCommand } from 'execa';`],
  ['execaCommand', `await execa.execaCommand('virsh list');`],
  ['execa script ($)', `import { $ } from 'execa';`],
  ['execa script ($)', 'await $`virsh start ${name}`;'],
  ['execa script ($)', 'await execa`virsh start ${name}`;'],
  ['execa script ($)', "await execa({ cwd: '/' })`virsh start ${name}`;"],
  ['execa script ($)', 'await $.sync`id`;'],
  ['child_process exec', `import { exec } from 'node:child_process';`],
  ['child_process exec', `import { exec as sh } from 'child_process';`],
  ['child_process exec', `import { execSync } from 'child_process';`],
  ['child_process exec', `import * as cp from 'node:child_process';\ncp.exec(cmd);`],
  ['child_process exec', `import cp from 'child_process';\ncp.execSync('id');`],
  ['child_process exec', `require('child_process').exec('id');`],
  ['child_process exec', `childProcess.execSync('id');`],
  ['command as one string', 'await run(`virsh start ${name}`, []);'],
  ['command as one string', 'await execa(`virsh`, [name]);'],
  ['command as one string', `await execa('virsh ' + name, []);`],
  ['command as one string', `await run('virsh start', [name]);`],
  ['command as one string', `await exec('qemu-img create', [file]);`],
  ['command as one string', `spawn('virsh start x');`],
  ['command as one string', `spawn(cmd);`],
  ['command as one string', 'cp.spawnSync(`id ${x}`, []);'],
  ['interpolated sh -c', "await run('sh', ['-c', `virsh start ${name}`]);"],
  ['interpolated sh -c', `await run('bash', ['-c', 'virsh start ' + name]);`],
  ['interpolated sh -c', "await link.exec(['sh', '-ec', `rm ${path}`]);"],
];
/** Near misses: must not be found. */
const NEAR_MISSES = [
  `const m = /^x$/.exec(line);`,
  `this.client.exec(shellQuote(full), cb);`,
  `const cfg = { users: [{ name: 'core', shell: '/bin/bash' }] };`,
  `await execa('ls', ['-l'], { shell: false });`,
  `await run('virsh', ['-q', '-c', uri, 'start', '--domain', name], { timeoutMs: 1 });`,
  `await exec('qemu-img', ['--version'], { timeoutMs: 10_000 });`,
  `await link.exec(['sh', '-c', observeScript(), 'sh', lab, ...wanted]);`,
  `await link.exec(['sh', '-c', 'command -v docker']);`,
  'const msg = `virsh start ${name}`;',
  `// await execa('x', [], { shell: true }); execaCommand, execSync`,
  `const s = "execaCommand('x'), shell: true, exec(";`,
  `import { execa } from 'execa';\nawait execa(process.execPath, [cli, '__agent'], { detached: true });`,
  `import { spawn } from 'node:child_process';\nspawn('virsh', ['list']);`,
  `await run(file, args, { signal });`,
];

describe('S9 gate: no shell, no command strings (lab/ and cmd/)', () => {
  it.each(PLANTED)('finds %s in a planted snippet: %s', (rule, snippet) => {
    expect(scanSource('fixture.ts', snippet).map((f) => f.rule)).toContain(rule);
  });

  it.each(NEAR_MISSES)('finds nothing in a near miss: %s', (snippet) => {
    expect(scanSource('fixture.ts', snippet)).toEqual([]);
  });

  it('finds none in the sources, having read all of them', () => {
    const files = [...sources('lab'), ...sources('cmd')];
    // Not vacuous: the gate read the files that do start programs.
    expect(files.length).toBeGreaterThan(50);
    for (const must of ['lab/runtime/exec.ts', 'lab/providers/virsh.ts', 'lab/guest/agent.ts', 'cmd/lab.ts'])
      expect(files).toContain(must);
    expect(files.some((f) => f.endsWith('.tsx'))).toBe(true);
    const found = files.flatMap((f) => scanSource(f, readFileSync(path.join(ROOT, f), 'utf8')));
    expect(found).toEqual([]);
    // …and lab's own runner is what the gate looks at: planted into exec.ts, it fires.
    const execTs = readFileSync(path.join(ROOT, 'lab/runtime/exec.ts'), 'utf8');
    const broken = execTs.replace('reject: false,', 'reject: false,\n    shell: true,');
    expect(broken).not.toBe(execTs);
    expect(scanSource('lab/runtime/exec.ts', broken).map((f) => f.rule)).toEqual(['shell option']);
  });
});

// ---------------------------------------------------------------------------------------
// (b) recording fakes on PATH

const work = mkdtempSync(path.join(os.tmpdir(), 'lab-argv-'));
const bin = path.join(work, 'bin');
const LOG = path.join(work, 'argv.log');
const MARKER = path.join(work, 'pwned');
const NETS = path.join(work, 'nets');
const DEFINED = path.join(work, 'defined');
const URI = 'qemu:///system';

/**
 * Records each call as NUL-terminated fields: the count of arguments, then each argument
 * (no argument can hold a NUL, so no value can forge a record). Answers like virsh 9.
 * The script quotes every expansion; it never evaluates an argument.
 */
const FAKE_VIRSH = `#!/bin/sh
{ printf '%s\\0' "$#"; printf '%s\\0' "$@"; } >> '${LOG}'
[ "$1" = -q ] && shift
[ "$1" = -c ] && shift 2
cmd=$1
shift
value=
names=
while [ $# -gt 0 ]; do
  case $1 in
    --domain|--network|--file) value=$2; shift 2 ;;
    --xmlfile) xmlfile=$2; shift 2 ;;
    --snapshotname) snap=$2; shift 2 ;;
    --name) names=1; shift ;;
    *) shift ;;
  esac
done
case $cmd in
  version) echo 'Running against daemon: 9.0.0' ;;
  capabilities) printf '%s\\n' "<capabilities><guest><arch name='x86_64'><domain type='qemu'/></arch></guest></capabilities>" ;;
  list)
    if [ -n "$names" ]; then echo r-a
    else printf ' Id   Name    State\\n-----------------------\\n -    r-a     shut off\\n'
    fi ;;
  dumpxml) printf "<domain type='qemu'>\\n  <name>%s</name>\\n</domain>\\n" "$value" ;;
  metadata) printf '<node>\\n  <lab>r</lab>\\n  <node>a</node>\\n</node>\\n' ;;
  domstate) echo running ;;
  domuuid) echo 6f1c4a30-0000-4000-8000-000000000001 ;;
  define|net-define) cat -- "$value" > '${DEFINED}'; echo "defined from $value" ;;
  net-list) cat '${NETS}' ;;
  net-info) printf 'Name:           %s\\nActive:         yes\\n' "$value" ;;
  net-dumpxml) printf '<network>\\n  <name>%s</name>\\n</network>\\n' "$value" ;;
  start|destroy|undefine|net-start|net-destroy|net-undefine) echo "ok $cmd" ;;
  suspend|resume|domtime|snapshot-revert|snapshot-delete) echo "ok $cmd" ;;
  snapshot-create) cat -- "$xmlfile" > '${DEFINED}'; echo "ok $cmd" ;;
  snapshot-list) echo lab-ckpt-x ;;
  *) echo "fake virsh: unknown command $cmd" >&2; exit 1 ;;
esac
`;
/** Records like the fake virsh; \`create\` makes the overlay (its second last argument). */
const FAKE_QEMU_IMG = `#!/bin/sh
{ printf '%s\\0' "$#"; printf '%s\\0' "$@"; } >> '${LOG}'
case $1 in
  info) echo '{"format": "qcow2", "virtual-size": 1073741824}' ;;
  create)
    prev=; last=
    for a in "$@"; do prev=$last; last=$a; done
    : > "$prev" ;;
  *) exit 1 ;;
esac
`;

/** Each recorded call's arguments (without argv[0]), in order; the log is then emptied. */
function takeCalls(): string[][] {
  if (!existsSync(LOG)) return [];
  const fields = readFileSync(LOG, 'utf8').split('\0');
  rmSync(LOG);
  const calls: string[][] = [];
  for (let i = 0; i < fields.length - 1;) {
    const n = Number(fields[i]);
    calls.push(fields.slice(i + 1, i + 1 + n));
    i += n + 1;
  }
  return calls;
}

/** Values that a shell, or virsh's own option parser, would act on. */
const HOSTILE = [
  `x; touch ${MARKER}`,
  `$(touch ${MARKER})`,
  `\`touch ${MARKER}\``,
  `x\ntouch ${MARKER}`,
  `x && touch ${MARKER} #`,
  `x | touch ${MARKER}`,
  `'; touch ${MARKER}; '`,
  `"; touch ${MARKER}; "`,
  '-rf',
  '--help',
  '--domain',
  '--file=/etc/shadow',
  'a b',
  '*',
  '$(id)',
  '${IFS}x',
  '#x',
  '\\',
  "it's",
];

let savedPath: string | undefined;
beforeAll(() => {
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'virsh'), FAKE_VIRSH);
  writeFileSync(path.join(bin, 'qemu-img'), FAKE_QEMU_IMG);
  chmodSync(path.join(bin, 'virsh'), 0o755);
  chmodSync(path.join(bin, 'qemu-img'), 0o755);
  savedPath = process.env.PATH;
  // exec.ts runs programs by name: first on PATH wins (prlimit finds the fake qemu-img too).
  process.env.PATH = `${bin}${path.delimiter}${savedPath ?? '/usr/bin:/bin'}`;
});
afterAll(() => {
  process.env.PATH = savedPath;
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  takeCalls();
  rmSync(MARKER, { force: true });
});

const VIRSH_COMMANDS = new Set([
  'version',
  'capabilities',
  'list',
  'dumpxml',
  'metadata',
  'domstate',
  'domuuid',
  'define',
  'start',
  'destroy',
  'undefine',
  'net-list',
  'net-dumpxml',
  'net-info',
  'net-define',
  'net-start',
  'net-destroy',
  'net-undefine',
  'suspend',
  'resume',
  'domtime',
  'snapshot-create',
  'snapshot-revert',
  'snapshot-delete',
  'snapshot-list',
]);

/** The shape every virsh call must have: `-q -c URI COMMAND [ARGS…]`, COMMAND one of lab's. */
function expectVirshCall(argv: string[], uri = URI): void {
  expect(argv.length).toBeGreaterThanOrEqual(4);
  expect(argv.slice(0, 3)).toEqual(['-q', '-c', uri]);
  expect(VIRSH_COMMANDS.has(argv[3]!), argv[3]).toBe(true);
}

describe('S9 virsh argv with hostile names (fake virsh on PATH)', () => {
  it('the marker check can fail: the same value through a shell does create it', async () => {
    await execa('sh', ['-c', `true ${HOSTILE[0]}`]);
    expect(existsSync(MARKER)).toBe(true);
  });

  it.each(HOSTILE)('domain verbs keep %j one argv element after --domain', async (name) => {
    const v = new Virsh(URI);
    await v.start(name);
    await v.destroy(name);
    await v.undefine(name);
    expect(await v.dumpXml(name)).toContain('<domain');
    expect(await v.labMetadata(name)).toContain('<lab>r</lab>');
    expect(await v.domState(name)).toBe('running');
    expect(await v.domUuid(name)).toMatch(/^[0-9a-f-]{36}$/);
    const calls = takeCalls();
    for (const c of calls) expectVirshCall(c);
    expect(calls.map((c) => c.slice(3))).toEqual([
      ['start', '--domain', name],
      ['domstate', '--domain', name],
      ['destroy', '--domain', name],
      ['domstate', '--domain', name],
      ['undefine', '--domain', name, '--snapshots-metadata', '--nvram'],
      ['dumpxml', '--inactive', '--domain', name],
      ['metadata', '--domain', name, '--uri', 'https://lab.invalid/xmlns/lab/1'],
      ['domstate', '--domain', name],
      ['domuuid', '--domain', name],
    ]);
    expect(existsSync(MARKER)).toBe(false);
  });

  it.each(HOSTILE)(
    'checkpoint verbs keep %j one argv element after --domain and --snapshotname',
    async (name) => {
      const v = new Virsh(URI);
      await suspend(v, name);
      await createSnapshot(v, name, { name, lab: 'r', checkpoint: name });
      await revertSnapshot(v, name, name);
      await deleteSnapshot(v, name, name, { metadataOnly: true });
      expect(await snapshotNames(v, name)).toEqual(['lab-ckpt-x']);
      await setGuestTime(v, name);
      const calls = takeCalls();
      for (const c of calls) expectVirshCall(c);
      const create = calls.find((c) => c[3] === 'snapshot-create')!;
      expect(create.slice(3, 5)).toEqual(['snapshot-create', '--domain']);
      expect(create[5]).toBe(name);
      expect(calls.map((c) => c.slice(3)).filter((c) => c[0] !== 'snapshot-create')).toEqual([
        ['domstate', '--domain', name],
        ['suspend', '--domain', name],
        ['snapshot-revert', '--domain', name, '--snapshotname', name, '--paused'],
        ['snapshot-delete', '--domain', name, '--snapshotname', name, '--metadata'],
        ['snapshot-list', '--domain', name, '--name'],
        ['domtime', '--domain', name, '--now'],
      ]);
      // The snapshot's name reaches libvirt inside XML from the builder, escaped.
      expect(readFileSync(DEFINED, 'utf8')).toContain(`<name>${escapeXml(name)}</name>`);
      expect(existsSync(MARKER)).toBe(false);
    },
  );

  it.each(HOSTILE)('network verbs keep %j one argv element after --network', async (name) => {
    writeFileSync(NETS, `default\n${name}\n`);
    const v = new Virsh(URI);
    expect(await v.netDumpXml(name)).toContain('<network>');
    expect(await v.netIsActive(name)).toBe(true);
    await v.netStart(name);
    await v.netDestroy(name);
    await v.netUndefine(name);
    const calls = takeCalls();
    for (const c of calls) expectVirshCall(c);
    const listed = !name.includes('\n'); // a name with a newline cannot be found in net-list
    expect(calls.map((c) => c.slice(3))).toEqual([
      ['net-dumpxml', '--network', name],
      ['net-info', '--network', name],
      ['net-start', '--network', name],
      ['net-info', '--network', name],
      ['net-destroy', '--network', name],
      ['net-list', '--all', '--name'],
      ...(listed ? [['net-undefine', '--network', name]] : []),
    ]);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('define and net-define pass the XML in a private temp file, named after --file', async () => {
    const v = new Virsh(URI);
    for (const [verb, xml] of [
      ['define', `<domain><name>${HOSTILE[0]}</name></domain>`],
      ['net-define', `<network><name>${HOSTILE[1]}</name></network>`],
    ] as const) {
      await (verb === 'define' ? v.define(xml) : v.netDefine(xml));
      const [call, ...rest] = takeCalls();
      expect(rest).toEqual([]);
      expectVirshCall(call!);
      expect(call!.slice(3, 5)).toEqual([verb, '--file']);
      expect(call).toHaveLength(6);
      const file = call![5]!;
      expect(path.isAbsolute(file) && file.startsWith(os.tmpdir())).toBe(true);
      expect(readFileSync(DEFINED, 'utf8')).toBe(xml);
      expect(existsSync(file)).toBe(false); // removed once virsh is done
    }
    expect(existsSync(MARKER)).toBe(false);
  });

  it('listings and checks too; a hostile URI stays the one argument of -c', async () => {
    writeFileSync(NETS, 'default\n');
    const hostileUri = `qemu:///system?x=$(touch ${MARKER});y`;
    for (const uri of [URI, hostileUri]) {
      const v = new Virsh(uri);
      expect(await v.check()).toContain('9.0.0');
      expect(await v.capabilities()).toEqual(['qemu']);
      expect(await v.listDomains()).toEqual(['r-a']);
      expect([...(await v.listDomainStates()).entries()]).toEqual([['r-a', 'shut off']]);
      expect(await v.listNetworks()).toEqual(['default']);
      const calls = takeCalls();
      expect(calls).toHaveLength(5);
      for (const c of calls) expectVirshCall(c, uri);
      expect(calls.map((c) => c.slice(3))).toEqual([
        ['version', '--daemon'],
        ['capabilities'],
        ['list', '--all', '--name'],
        ['list', '--all'],
        ['net-list', '--all', '--name'],
      ]);
    }
    expect(existsSync(MARKER)).toBe(false);
  });
});

describe('S9 qemu-img argv with hostile paths (fake qemu-img on PATH)', () => {
  it.each(HOSTILE)('createOverlay and imageInfo keep %j inside one argv element', async (name) => {
    const base = path.join(work, 'images', name);
    const overlay = path.join(work, 'disks', name);
    mkdirSync(path.dirname(base), { recursive: true });
    mkdirSync(path.dirname(overlay), { recursive: true });
    await createOverlay(base, 'qcow2', overlay, 1024 ** 3);
    expect(existsSync(overlay)).toBe(true);
    expect((await imageInfo(overlay, undefined, 'qcow2')).format).toBe('qcow2');
    const calls = takeCalls();
    expect(calls.map((c) => c[0])).toEqual(['create', 'info']);
    for (const c of calls) {
      // The hostile part is in exactly one element, and that element is a whole absolute path.
      const holding = c.filter((a) => a.includes(name));
      expect(holding).toHaveLength(c[0] === 'create' ? 2 : 1);
      for (const a of holding) expect(path.isAbsolute(a)).toBe(true);
    }
    expect(calls[0]).toContain(path.resolve(base));
    expect(calls[0]).toContain(`${overlay}.partial`);
    expect(calls[1]).toContain(path.resolve(overlay));
    expect(existsSync(MARKER)).toBe(false);
    rmSync(overlay, { force: true });
  });
});
