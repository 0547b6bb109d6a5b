// `lab completion bash|zsh|fish` and `lab __complete` (issue 19). The scripts come from
// cmd/spec.ts: this holds that table to what each command really accepts (its parseFlags
// call, caught by a mock), then runs the scripts in the shells themselves: bash and fish
// complete for real; zsh runs _lab with its completion builtins stood in for by functions
// that print what they are given (zsh itself filters those by the word typed).
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { COMMON } from '../../../cmd/args.js';
import { COMMON_OPTIONS, commandNames, commandSpec, flagsOf, type CommandName } from '../../../cmd/spec.js';
import { listTemplateNames } from '../../../lab/templates/load.js';
import { cli, example, helpExamples, installed, root, tmp, withLab } from './lab-cli.js';

type Options = Record<string, { type: string; short?: string }>;

/** The options of the last parseFlags call; the mock answers as for --help, so run() returns at once. */
const seen = vi.hoisted(() => ({ options: undefined as Options | undefined }));
vi.mock('../../../cmd/args.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../../cmd/args.js')>()),
  parseFlags: (_argv: string[], options: Options) => {
    seen.options = options;
    return undefined;
  },
}));

/** What `cmd` accepts, by its parseFlags call: every flag, long and short, the common ones too. */
async function acceptedFlags(cmd: CommandName): Promise<{ flags: string[]; options: Options }> {
  seen.options = undefined;
  const file = path.join(root, 'cmd', 'commands', `${cmd}.ts`);
  const mod = (await import(/* @vite-ignore */ file)) as { run(argv: string[]): Promise<number> };
  expect(await mod.run(['--help'])).toBe(0);
  expect(seen.options, `lab ${cmd} does not parse its flags with parseFlags`).toBeDefined();
  const options: Options = { ...(COMMON as Options), ...(seen.options ?? {}) };
  const flags = Object.entries(options).flatMap(([long, o]) => [
    `--${long}`,
    ...(o.short ? [`-${o.short}`] : []),
  ]);
  return { flags: flags.sort(), options };
}

const sorted = (a: string[]) => [...a].sort();
const lines = (s: string) => s.split('\n').filter(Boolean);

const [hasZsh, hasFish] = await Promise.all([installed('zsh'), installed('fish')]);
const scripts = { bash: '', zsh: '', fish: '' };
const files = { bash: '', zsh: '', fish: '' };

/** A folder with the example as Labfile.yaml, and a state folder where lab coreos-lab has checkpoints. */
const here = tmp('complete-here');
copyFileSync(example, path.join(here, 'Labfile.yaml'));
mkdirSync(path.join(here, 'out'));
const state = tmp('complete-state');
mkdirSync(path.join(state, 'coreos-lab', 'private'), { recursive: true });
writeFileSync(
  path.join(state, 'coreos-lab', 'private', 'checkpoints.json'),
  JSON.stringify({ version: 1, checkpoints: { exercise3: {}, 'before-upgrade': {} } }),
);
/** A second Labfile elsewhere, for -f. */
const mixed = path.join(tmp('complete-mixed'), 'mixed.yaml');
writeFileSync(
  mixed,
  `name: mixed
template: debian-12-lab
network: { mode: managed, cidr: 10.60.0.0/24, gateway: 10.60.0.1 }
nodes: [{ name: web1, ip: 10.60.0.11 }, { name: old1, ip: 10.60.0.21 }]
`,
);
/** A `virsh` first on PATH that leaves a mark: __complete must never run it. */
const fakeBin = tmp('complete-fakebin');
const virshMark = path.join(fakeBin, 'virsh-ran');
writeFileSync(path.join(fakeBin, 'virsh'), `#!/bin/sh\ntouch '${virshMark}'\nexit 1\n`, { mode: 0o755 });
const env = { LAB_STATE_DIR: state, PATH: `${fakeBin}:${process.env.PATH ?? ''}` };

/** What bash offers for `words` (the last one is being typed), in `cwd`. */
async function bash(words: string[], cwd = here): Promise<string[]> {
  const r = await withLab(
    'bash',
    [
      '--norc',
      '--noprofile',
      '-c',
      'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _lab_complete; printf "%s\\n" "${COMPREPLY[@]}"',
      '_',
      files.bash,
      ...words,
    ],
    { cwd, env },
  );
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return sorted(lines(r.stdout));
}

/** What fish offers for a command line (descriptions dropped). */
async function fish(line: string, cwd = here): Promise<string[]> {
  const r = await withLab(
    'fish',
    ['--no-config', '-c', 'source $argv[1]; complete -C $argv[2]', files.fish, line],
    {
      cwd,
      env,
    },
  );
  expect(r.stderr).toBe('');
  return sorted(lines(r.stdout).map((l) => l.split('\t')[0]!));
}

/** What zsh's _lab hands compadd, _describe or _files for `words`, kept to those that begin with the word typed. */
async function zsh(words: string[], cwd = here): Promise<string[]> {
  const stubs = [
    'compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }',
    '_describe() { local -a a; a=("${(@P)${@[-1]}}"); print -l -- ${a%%:*}; }',
    '_files() { print -- "_files $*"; }',
    'compset() { :; }',
  ].join('\n');
  const r = await withLab(
    'zsh',
    ['-f', '-c', `${stubs}\nsource "$1"; shift; words=("$@"); CURRENT=$#; _lab`, '_', files.zsh, ...words],
    { cwd, env },
  );
  expect(r.stderr).toBe('');
  const typed = words.at(-1)!;
  return sorted(lines(r.stdout).filter((w) => w.startsWith(typed) || w.startsWith('_files')));
}

describe('lab completion', { timeout: 180_000 }, () => {
  beforeAll(async () => {
    const dir = tmp('complete-scripts');
    for (const shell of ['bash', 'zsh', 'fish'] as const) {
      const r = await cli(['completion', shell]);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      scripts[shell] = r.stdout;
      files[shell] = path.join(dir, `lab.${shell}`);
      writeFileSync(files[shell], r.stdout);
    }
  }, 120_000);

  it('the table offers every flag each command accepts (its parseFlags call), and no other', async () => {
    for (const cmd of commandNames()) {
      const { flags, options } = await acceptedFlags(cmd);
      expect(sorted(flagsOf(cmd)), `lab ${cmd}: cmd/spec.ts against its parseFlags call`).toEqual(flags);
      // An option that takes a value is one the table gives words for (or 'text').
      const spec = { ...commandSpec(cmd).options, ...COMMON_OPTIONS };
      for (const [long, o] of Object.entries(options))
        expect(spec[long]?.value !== undefined, `lab ${cmd} --${long} takes a value?`).toBe(
          o.type === 'string',
        );
    }
  });

  it('bash, fish and zsh offer each command exactly the flags its parseFlags call accepts', async () => {
    const accepted = new Map<CommandName, string[]>();
    for (const cmd of commandNames()) accepted.set(cmd, (await acceptedFlags(cmd)).flags);
    // One shell per check: lab CMD -<TAB> for every command.
    const loop = (call: string) =>
      commandNames()
        .map((c) => call.replaceAll('CMD', c))
        .join('\n');
    const b = await withLab('bash', [
      '--norc',
      '-c',
      `source "${files.bash}"\n${loop('COMP_WORDS=(lab CMD -); COMP_CWORD=2; _lab_complete; echo "CMD ${COMPREPLY[*]}"')}`,
    ]);
    const offered = (out: string) =>
      new Map(lines(out).map((l) => [l.split(' ')[0] as CommandName, sorted(l.split(' ').slice(1))]));
    expect(offered(b.stdout)).toEqual(accepted);
    if (hasFish) {
      const f = await withLab('fish', [
        '--no-config',
        '-c',
        `source "${files.fish}"\n${loop('echo CMD (complete -C "lab CMD -")')}`,
      ]);
      expect(offered(f.stdout)).toEqual(accepted);
    }
    if (hasZsh) {
      const z = await withLab('zsh', [
        '-f',
        '-c',
        `compadd() { [[ $1 == -- ]] && shift; print -- "$*"; }\nsource "${files.zsh}"\n${loop('print -n "CMD "; words=(lab CMD -); CURRENT=3; _lab')}`,
      ]);
      expect(offered(z.stdout)).toEqual(accepted);
    }
  });

  it('source <(lab completion bash), then lab sta<TAB>: status and start', async () => {
    const r = await withLab('bash', [
      '-c',
      'source <(lab completion bash); COMP_WORDS=(lab sta); COMP_CWORD=1; _lab_complete; printf "%s\\n" "${COMPREPLY[@]}"',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('status\nstart\n');
  });

  it('bash: commands, verbs, values, and the names of the lab in reach', async () => {
    expect(await bash(['lab', ''])).toEqual(sorted([...commandNames(), 'help']));
    expect(await bash(['lab', 'ss'])).toEqual(['ssh', 'ssh-config']);
    expect(await bash(['lab', 'help', 'ch'])).toEqual(['checkpoint']);
    expect(await bash(['lab', 'checkpoint', ''])).toEqual(['delete', 'list', 'restore', 'save']);
    expect(await bash(['lab', 'image', 'b'])).toEqual(['build']);
    expect(await bash(['lab', 'completion', ''])).toEqual(['bash', 'fish', 'zsh']);
    expect(await bash(['lab', 'render', '--accel', ''])).toEqual(['kvm', 'tcg']);
    expect(await bash(['lab', 'inventory', '--format', '=', 'j'])).toEqual(['json']);
    expect(await bash(['lab', 'up', '--lock-timeout', ''])).toEqual([]);
    // Node names: asked of lab, from the Labfile here, or the one -f names.
    expect(await bash(['lab', 'ssh', ''])).toEqual(['coreos1', 'coreos2', 'coreos3']);
    expect(await bash(['lab', 'reset', 'coreos1', 'coreos'])).toEqual(['coreos1', 'coreos2', 'coreos3']);
    expect(await bash(['lab', '-f', mixed, 'ssh', ''])).toEqual(['old1', 'web1']);
    expect(await bash(['lab', 'ssh', '--file', '=', mixed, 'w'])).toEqual(['web1']);
    // ssh takes one node; after -- comes the remote command: nothing to offer.
    expect(await bash(['lab', 'ssh', 'coreos1', ''])).toEqual([]);
    expect(await bash(['lab', 'ssh', 'coreos1', '--', ''])).toEqual([]);
    expect(await bash(['lab', 'checkpoint', 'restore', ''])).toEqual(['before-upgrade', 'exercise3']);
    expect(await bash(['lab', 'checkpoint', 'restore', 'exercise3', 'coreos2', ''])).toEqual([
      'coreos1',
      'coreos2',
      'coreos3',
    ]);
    expect(await bash(['lab', 'image', 'build', 'flatcar-s'])).toEqual([
      'flatcar-stable',
      'flatcar-stable-cloudconfig',
    ]);
    // Folders for --out, files for -f.
    expect(await bash(['lab', 'render', '-o', path.join(here, 'o')])).toEqual([path.join(here, 'out')]);
    expect(await bash(['lab', '-f', path.join(here, 'L')])).toEqual([path.join(here, 'Labfile.yaml')]);
    expect(existsSync(virshMark), 'completion ran virsh').toBe(false);
  });

  it.skipIf(!hasFish)(
    'fish: the script passes fish -n and completes names (fish --no-config, complete -C)',
    async () => {
      expect((await execa('fish', ['-n', files.fish], { reject: false })).exitCode).toBe(0);
      expect(await fish('lab st')).toEqual(['status']);
      expect(await fish('lab ssh ')).toEqual(['coreos1', 'coreos2', 'coreos3']);
      expect(await fish(`lab -f ${mixed} ssh `)).toEqual(['old1', 'web1']);
      expect(await fish('lab image build debian')).toEqual(['debian-12-ignition', 'debian-12-lab']);
      expect(await fish('lab inventory --format=')).toEqual(['--format=ansible', '--format=json']);
      expect(await fish('lab checkpoint delete ex')).toEqual(['exercise3']);
    },
  );

  it.skipIf(!hasZsh)('zsh: the script passes zsh -n, and _lab offers names to compadd', async () => {
    expect((await execa('zsh', ['-n', files.zsh], { reject: false })).exitCode).toBe(0);
    expect(await zsh(['lab', 'st'])).toEqual(['status']);
    expect(await zsh(['lab', 'ssh', ''])).toEqual(['coreos1', 'coreos2', 'coreos3']);
    expect(await zsh(['lab', '--file', mixed, 'ssh', ''])).toEqual(['old1', 'web1']);
    expect(await zsh(['lab', 'image', 'build', 'fedora'])).toEqual(['fedora-coreos-stable']);
    expect(await zsh(['lab', 'render', '--out', ''])).toEqual(['_files -/']);
  });

  it('without zsh or fish, their scripts are checked on content', () => {
    if (!hasZsh) console.warn('zsh is not installed: zsh -n and the zsh completions are not checked');
    if (!hasFish) console.warn('fish is not installed: fish -n and the fish completions are not checked');
    expect(scripts.zsh.split('\n')[0]).toBe('#compdef lab');
    expect(scripts.zsh).toContain('compdef _lab lab');
    expect(scripts.fish).toContain("complete -c lab -f -a '(__lab_complete)'");
    for (const cmd of commandNames()) {
      expect(scripts.zsh).toContain(`'${cmd}:`);
      expect(scripts.fish).toContain(`        ${cmd} '`);
    }
  });

  it('lab __complete: names one a line, nothing and exit 0 when there are none, never an error', async () => {
    const templates = await cli(['__complete', 'templates'], { env });
    expect(templates.stdout).toBe(
      listTemplateNames()
        .map((t) => `${t}\n`)
        .join(''),
    );
    const nodes = await cli(['__complete', 'nodes'], { cwd: here, env });
    expect(nodes.stdout).toBe('coreos1\ncoreos2\ncoreos3\n');
    const none = await cli(['__complete', 'nodes'], { cwd: tmp('complete-nowhere') });
    expect(none).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    const broken = path.join(tmp('complete-broken'), 'Labfile.yaml');
    writeFileSync(broken, 'name: [not, a, name\n');
    expect(await cli(['__complete', 'nodes', '-f', broken])).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(await cli(['__complete', 'frobs'])).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(existsSync(virshMark), '__complete ran virsh').toBe(false);
  });

  it('lab --help lists the commands of the table, in its order', async () => {
    const r = await cli(['--help']);
    const listed = r.stdout
      .slice(r.stdout.indexOf('Commands:\n'), r.stdout.indexOf('\n\nCommon options'))
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(' ')[0]);
    expect(listed).toEqual(commandNames());
  });

  it('lab completion without a shell, or with another, is a usage error (exit 2)', async () => {
    const none = await cli(['completion']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('which shell? bash, zsh or fish');
    const tcsh = await cli(['completion', 'tcsh']);
    expect(tcsh.exitCode).toBe(2);
    expect(tcsh.stderr).toContain('unknown shell "tcsh"');
  });

  it("runs its help's examples as written", async () => {
    const help = (await cli(['completion', '--help'])).stdout;
    expect(help).toMatch(/^Usage: lab completion bash\|zsh\|fish$/m);
    const examples = helpExamples(help);
    expect(examples.length).toBeGreaterThanOrEqual(3);
    const home = tmp('complete-home');
    for (const line of examples) {
      const r = await withLab('bash', ['-c', line], { cwd: home, env: { HOME: home } });
      expect(r.exitCode, `${line}\n${r.stderr}`).toBe(0);
      expect(r.stderr).toBe('');
    }
    const zshFile = path.join(home, '.zfunc', '_lab');
    const fishFile = path.join(home, '.config', 'fish', 'completions', 'lab.fish');
    expect(readFileSync(zshFile, 'utf8')).toBe(scripts.zsh);
    expect(readFileSync(fishFile, 'utf8')).toBe(scripts.fish);
  });
});
