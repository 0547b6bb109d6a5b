#!/usr/bin/env node
// The lab binary: argv -> command -> exit code. The one process.exit lives here.
import { LabError, LabfileError } from '../lab/errors.js';
import { didYouMean } from './suggest.js';
import { UsageError } from './usage-error.js';

interface CommandModule {
  run(argv: string[]): Promise<number>;
}

/** Commands load lazily, so `lab --help` starts without ink, ssh2 or libvirt code. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  up: {
    summary: 'create or converge the lab and wait until every node is healthy',
    load: () => import('./commands/up.js'),
  },
  status: {
    summary: 'state, IP, machine-id, etcd, docker and fleet of every node (--json)',
    load: () => import('./commands/status.js'),
  },
  ssh: {
    summary: 'open a shell on a node, or run one command: lab ssh NODE [-- CMD...]',
    load: () => import('./commands/ssh.js'),
  },
  machines: {
    summary: "each node's machine-id, IP and metadata, like fleetctl list-machines (--json)",
    load: () => import('./commands/machines.js'),
  },
  units: {
    summary: "the lab's units and the node each runs on, like fleetctl list-units (--json)",
    load: () => import('./commands/units.js'),
  },
  reset: {
    summary: 're-create a node from a fresh overlay and seed, same identity: lab reset NODE',
    load: () => import('./commands/reset.js'),
  },
  'rotate-keys': {
    summary: 'give the running lab a new login key and new host keys, pinned all along',
    load: () => import('./commands/rotate-keys.js'),
  },
  checkpoint: {
    summary: 'save the running lab and bring it back in seconds: save|restore|list|delete NAME',
    load: () => import('./commands/checkpoint.js'),
  },
  down: {
    summary: "stop and remove the lab's domains, disks and network (--lab NAME without a Labfile)",
    load: () => import('./commands/down.js'),
  },
  plan: { summary: 'show what lab up would change (--json)', load: () => import('./commands/plan.js') },
  validate: {
    summary: 'check a Labfile; exit 2 with file:line:col for every problem',
    load: () => import('./commands/validate.js'),
  },
  render: {
    summary: "write each node's domain XML and provisioning files to a folder",
    load: () => import('./commands/render.js'),
  },
  'ssh-config': {
    summary: 'print an OpenSSH config for the lab (pinned host keys, strict checking)',
    load: () => import('./commands/ssh-config.js'),
  },
  doctor: {
    summary: 'check the host: programs and their packages, libvirt, KVM, bridge, memory, disk (--json)',
    load: () => import('./commands/doctor.js'),
  },
  image: {
    summary: 'manage guest images: lab image build NAME | lab image list',
    load: () => import('./commands/image.js'),
  },
};

export const USAGE = `lab: one declarative Labfile -> a running virtual cluster on libvirt/QEMU

Usage: lab <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`)
  .join('\n')}

Common options (before or after the command):
  -f, --file FILE   the Labfile; default: Labfile.yaml here or in a parent folder,
                    then $LAB_FILE, then the lab brought up from this folder
  --lab NAME        a lab by name, from any folder (the Labfile its last up used)
  --debug           print every command lab runs
  -h, --help        help for a command: lab help <command>, lab <command> --help

Examples:
  lab validate -f Labfile.example.yaml
  lab up -f Labfile.example.yaml
  lab status --json
  lab ssh coreos2 -- etcdctl get /message
  lab down
`;

/**
 * Options that may come before the command (`lab -f X validate`): they are moved behind
 * it. Those that take a value, and those that take none.
 */
const LEADING_WITH_VALUE = new Set(['-f', '--file', '--lab']);
const LEADING_FLAGS = new Set(['--debug', '--json']);

/** argv with the options before the command moved after it: [command, ...rest]. */
function commandFirst(argv: string[]): { name?: string; rest: string[]; leading: string[] } {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const a = argv[i]!;
    const bare = a.split('=')[0]!;
    if (a === '-h' || a === '--help' || a === '--version' || a === '-V') break;
    if (LEADING_WITH_VALUE.has(bare) && !a.includes('=')) {
      leading.push(a, argv[i + 1] ?? '');
      i += 2;
    } else {
      leading.push(a);
      i += 1;
    }
  }
  return { name: argv[i], rest: [...argv.slice(i + 1), ...leading], leading };
}

async function main(argv: string[]): Promise<number> {
  const { name, rest, leading } = commandFirst(argv);
  const unknownLeading = leading.filter(
    (a, i) =>
      a.startsWith('-') &&
      !(i > 0 && LEADING_WITH_VALUE.has(leading[i - 1]!)) &&
      !LEADING_WITH_VALUE.has(a.split('=')[0]!) &&
      !LEADING_FLAGS.has(a),
  );
  if (unknownLeading.length)
    throw new UsageError(`${unknownLeading[0]} before the command: put it after the command`, {
      hint: 'lab <command> [options]; lab help lists the commands',
    });
  if (name === undefined || name === '-h' || name === '--help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (name === 'help') {
    const [topic, ...more] = rest.filter((a) => !leading.includes(a));
    if (topic === undefined) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (more.length) throw new UsageError(`lab help takes one command, not ${more.length + 1}`);
    const command = COMMANDS[topic];
    if (!command) throw unknownCommand(topic);
    return (await command.load()).run(['--help']);
  }
  if (name === '--version' || name === '-V') {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  if (name === '__agent') {
    // The per-lab connection agent (lab/guest/agent.ts), started by lab itself; not for users.
    const { runAgent } = await import('../lab/guest/agent-server.js');
    await runAgent(rest[0] ?? '', Number(rest[1] ?? 600) * 1000);
    return 0;
  }
  if (name === '__pause-guard') {
    // The guard of a checkpoint save (lab/apply/pause-guard.ts), started by lab itself.
    const { runPauseGuard } = await import('../lab/apply/pause-guard.js');
    await runPauseGuard(Number(rest[0]), rest[1] ?? '', rest.slice(2));
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) throw unknownCommand(name);
  return (await command.load()).run(rest);
}

function unknownCommand(name: string): UsageError {
  return new UsageError(`unknown command "${name}"${didYouMean(name, Object.keys(COMMANDS))}`, {
    hint: 'lab help lists the commands',
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof LabError) {
      const prefix = err instanceof LabfileError ? '' : 'lab: error: ';
      process.stderr.write(`${prefix}${err.message}\n`);
      if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
      if (process.argv.includes('--debug') && err.cause)
        process.stderr.write(
          `cause: ${err.cause instanceof Error ? (err.cause.stack ?? err.cause.message) : JSON.stringify(err.cause)}\n`,
        );
      process.exit(err.exitCode);
    }
    process.stderr.write(
      `lab: internal error (please report it):\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(70);
  },
);
