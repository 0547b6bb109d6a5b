#!/usr/bin/env node
// The lab binary: argv -> command -> exit code. The one process.exit lives here.
import { LabError, LabfileError } from '../lab/errors.js';
import { packageVersion } from '../lab/runtime/package-root.js';
import { commandNames, commandSpec, type CommandName } from './spec.js';
import { didYouMean } from './suggest.js';
import { UsageError } from './usage-error.js';

interface CommandModule {
  run(argv: string[]): Promise<number>;
}

/**
 * Commands load lazily, so `lab --help` starts without ink, ssh2 or libvirt code. What
 * each one takes, and its summary, is in spec.ts.
 */
const COMMANDS: Record<CommandName, () => Promise<CommandModule>> = {
  up: () => import('./commands/up.js'),
  status: () => import('./commands/status.js'),
  list: () => import('./commands/list.js'),
  ssh: () => import('./commands/ssh.js'),
  logs: () => import('./commands/logs.js'),
  console: () => import('./commands/console.js'),
  exec: () => import('./commands/exec.js'),
  stop: () => import('./commands/stop.js'),
  start: () => import('./commands/start.js'),
  kill: () => import('./commands/kill.js'),
  pause: () => import('./commands/pause.js'),
  resume: () => import('./commands/resume.js'),
  link: () => import('./commands/link.js'),
  machines: () => import('./commands/machines.js'),
  units: () => import('./commands/units.js'),
  reset: () => import('./commands/reset.js'),
  'rotate-keys': () => import('./commands/rotate-keys.js'),
  checkpoint: () => import('./commands/checkpoint.js'),
  down: () => import('./commands/down.js'),
  plan: () => import('./commands/plan.js'),
  validate: () => import('./commands/validate.js'),
  render: () => import('./commands/render.js'),
  'ssh-config': () => import('./commands/ssh-config.js'),
  inventory: () => import('./commands/inventory.js'),
  doctor: () => import('./commands/doctor.js'),
  image: () => import('./commands/image.js'),
  schema: () => import('./commands/schema.js'),
  completion: () => import('./commands/completion.js'),
};

/** The command of that name; not one of Object's own properties (`lab constructor`). */
const commandLoader = (name: string) =>
  Object.hasOwn(COMMANDS, name) ? COMMANDS[name as CommandName] : undefined;

export const USAGE = `lab: one declarative Labfile -> a running virtual cluster on libvirt/QEMU

Usage: lab <command> [options]

Commands:
${commandNames()
  .map((name) => `  ${name.padEnd(11)} ${commandSpec(name).summary}`)
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
    const load = commandLoader(topic);
    if (!load) throw unknownCommand(topic);
    return (await load()).run(['--help']);
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
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
  if (name === '__complete') {
    // Shell completion asks for node, template, checkpoint and lab names; never libvirt.
    const { complete } = await import('./commands/completion.js');
    return complete(rest);
  }
  const load = commandLoader(name);
  if (!load) throw unknownCommand(name);
  return (await load()).run(rest);
}

function unknownCommand(name: string): UsageError {
  return new UsageError(`unknown command "${name}"${didYouMean(name, commandNames())}`, {
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
