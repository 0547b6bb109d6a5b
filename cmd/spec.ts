/**
 * Every command: its summary, its own options (the common ones aside) and the words it
 * takes. `lab help` lists it and `lab completion` offers it; it loads nothing, so lab.ts
 * reads it before any command. test/unit/cli/completion.test.ts holds each command's
 * parseFlags call to it.
 */

/**
 * What a word may be: asked of lab at completion time (`lab __complete nodes`), a file,
 * a folder, free text (nothing to offer), or one of some words.
 */
export type Words =
  'nodes' | 'templates' | 'checkpoints' | 'labs' | 'file' | 'dir' | 'text' | readonly string[];

export const ASKED = ['nodes', 'templates', 'checkpoints', 'labs'] as const;

/** An option by its long name; `value`: it takes one, of these words (else it is a switch). */
export interface OptionSpec {
  short?: string;
  value?: Words;
}

/** The words after the command (or its verb), in order; the last one repeats when `more`. */
export interface ArgsSpec {
  args?: readonly Words[];
  more?: boolean;
}

export interface CommandSpec extends ArgsSpec {
  summary: string;
  options: Readonly<Record<string, OptionSpec>>;
  /** Verbs (lab image build NAME): the first word, then the verb's own words. */
  verbs?: Readonly<Record<string, ArgsSpec>>;
}

/** The options every command takes (cmd/args.ts COMMON). */
export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  file: { short: 'f', value: 'file' },
  lab: { value: 'labs' },
  debug: {},
  help: { short: 'h' },
};

const json = {};
const lockTimeout = { value: 'text' } as const;

/** A failure drill (commands/drill.ts): nodes, --json, --lock-timeout, and its own options. */
const drill = (summary: string, options: Readonly<Record<string, OptionSpec>> = {}) =>
  ({
    summary,
    options: { json, 'lock-timeout': lockTimeout, ...options },
    args: ['nodes'],
    more: true,
  }) satisfies CommandSpec;

export const COMMANDS_SPEC = {
  up: {
    summary: 'create or converge the lab and wait until every node is healthy',
    options: { json, 'no-wait': {}, 'lock-timeout': lockTimeout },
  },
  status: {
    summary: 'state, IP, machine-id, etcd, docker and fleet of every node (--json)',
    options: { json, watch: {}, table: {}, interval: { value: 'text' } },
  },
  list: {
    summary: 'every lab on this host: nodes running and healthy, network, created, disk (--json)',
    options: { json, 'no-probe': {} },
  },
  ssh: {
    summary: 'open a shell on a node, or run one command: lab ssh NODE [-- CMD...]',
    options: {},
    args: ['nodes'],
  },
  logs: {
    summary: "print a node's serial console log, made safe for the terminal: lab logs NODE [--follow]",
    options: { follow: { short: 'F' }, lines: { value: 'text' }, raw: {} },
    args: ['nodes'],
  },
  console: {
    summary: "attach to a node's serial console (leave with Ctrl-]): lab console NODE",
    options: { force: {} },
    args: ['nodes'],
  },
  exec: {
    summary: 'run one command on many nodes at once, output prefixed by node: lab exec -- CMD',
    options: { json, nodes: { value: 'text' }, timeout: { value: 'text' } },
  },
  stop: drill('drill: shut a node down through ACPI (powered off after --timeout): lab stop NODE', {
    timeout: { value: 'text' },
  }),
  start: drill('start a stopped or killed node, as defined: lab start NODE'),
  kill: drill('drill: power a node off at once, its disk kept: lab kill NODE'),
  pause: drill('drill: freeze a node (vCPUs stopped, memory kept): lab pause NODE'),
  resume: drill('let a paused node run on, its clock set: lab resume NODE'),
  link: drill("drill: take a node's network link down or up: lab link NODE down|up"),
  machines: {
    summary: "each node's machine-id, IP and metadata, like fleetctl list-machines (--json)",
    options: { json, full: {} },
  },
  units: {
    summary: "the lab's units and the node each runs on, like fleetctl list-units (--json)",
    options: { json },
  },
  reset: {
    summary: 're-create a node from a fresh overlay and seed, same identity: lab reset NODE',
    options: { json, 'lock-timeout': lockTimeout },
    args: ['nodes'],
    more: true,
  },
  'rotate-keys': {
    summary: 'give the running lab a new login key and new host keys, pinned all along',
    options: { json, 'lock-timeout': lockTimeout },
  },
  checkpoint: {
    summary: 'save the running lab and bring it back in seconds: save|restore|list|delete NAME',
    options: { json, force: {}, 'lock-timeout': lockTimeout },
    verbs: {
      save: { args: ['text'] },
      restore: { args: ['checkpoints', 'nodes'], more: true },
      list: {},
      delete: { args: ['checkpoints'] },
    },
  },
  down: {
    summary: "stop and remove the lab's domains, disks and network (--lab NAME without a Labfile)",
    options: { 'keep-disks': {}, uri: { value: 'text' }, 'lock-timeout': lockTimeout },
  },
  plan: { summary: 'show what lab up would change (--json)', options: { json } },
  validate: { summary: 'check a Labfile; exit 2 with file:line:col for every problem', options: { json } },
  render: {
    summary: "write each node's domain XML and provisioning files to a folder",
    options: { out: { short: 'o', value: 'dir' }, accel: { value: ['kvm', 'tcg'] }, 'with-secrets': {} },
  },
  'ssh-config': {
    summary: 'print an OpenSSH config for the lab (pinned host keys, strict checking)',
    options: {},
  },
  inventory: {
    summary: "print an Ansible inventory of the lab's nodes (--format ansible|json)",
    options: { format: { value: ['ansible', 'json'] } },
  },
  doctor: {
    summary: 'check the host: programs and their packages, libvirt, KVM, bridge, memory, disk (--json)',
    options: { uri: { value: 'text' }, json },
  },
  image: {
    summary: 'manage guest images: lab image build NAME | lab image list',
    options: { json, 'dry-run': {}, force: {} },
    verbs: { build: { args: ['templates'] }, list: {}, prune: {} },
  },
  schema: { summary: "print the Labfile's JSON Schema (for editors)", options: {} },
  completion: {
    summary: 'print a shell completion script: lab completion bash|zsh|fish',
    options: {},
    args: [['bash', 'zsh', 'fish']],
  },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS_SPEC;

/** The commands, in `lab help`'s order. */
export const commandNames = () => Object.keys(COMMANDS_SPEC) as CommandName[];

export function commandSpec(name: CommandName): CommandSpec {
  return COMMANDS_SPEC[name];
}

/** One rule of what to offer: for the word at `index` after the command (verb included). */
export interface WordRule {
  /** Only after this verb. */
  verb?: string;
  index: number;
  /** The rule holds for every index from `index` on. */
  more: boolean;
  words: Words;
}

/** A command's words as rules, tried in order; `help` takes a command name. */
export function wordRules(name: CommandName | 'help'): WordRule[] {
  if (name === 'help') return [{ index: 0, more: false, words: commandNames() }];
  const spec = commandSpec(name);
  const rules = (a: ArgsSpec, from: number, verb?: string): WordRule[] =>
    (a.args ?? []).map((words, i, all) => ({
      ...(verb ? { verb } : {}),
      index: from + i,
      more: Boolean(a.more) && i === all.length - 1,
      words,
    }));
  if (!spec.verbs) return rules(spec, 0);
  return [
    { index: 0, more: false, words: Object.keys(spec.verbs) },
    ...Object.entries(spec.verbs).flatMap(([verb, a]) => rules(a, 1, verb)),
  ];
}

/**
 * Every option that takes a value, by flag (`--out`, `-o`), with its words. The same name
 * takes the same kind of value in every command: completion reads an option's value
 * without knowing which command it belongs to.
 */
export function valueOptions(): Map<string, Words> {
  const found = new Map<string, Words>();
  const all = [COMMON_OPTIONS, ...commandNames().map((c) => commandSpec(c).options)];
  for (const options of all)
    for (const [name, o] of Object.entries(options)) {
      if (!o.value) continue;
      for (const flag of [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]) {
        const before = found.get(flag);
        if (before !== undefined && JSON.stringify(before) !== JSON.stringify(o.value))
          throw new Error(`option ${flag} takes different values in different commands`);
        found.set(flag, o.value);
      }
    }
  return found;
}

/** A command's flags (its own, then the common ones), long and short: what `lab CMD -<TAB>` offers. */
export function flagsOf(name: CommandName | undefined): string[] {
  const own = name ? commandSpec(name).options : {};
  return Object.entries({ ...own, ...COMMON_OPTIONS }).flatMap(([long, o]) => [
    `--${long}`,
    ...(o.short ? [`-${o.short}`] : []),
  ]);
}
