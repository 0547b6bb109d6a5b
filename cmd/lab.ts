#!/usr/bin/env node
// The lab binary: argv -> command -> exit code. The one process.exit lives here.
import { LabError, LabfileError } from '../lab/errors.js';

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
    summary: 'check the host: libvirt, QEMU, KVM, ISO tool, bridge',
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

Common options:
  -f, --file FILE   the Labfile (default: ./Labfile.yaml)
  --debug           print every command lab runs
  -h, --help        help for a command: lab <command> --help

Examples:
  lab validate -f Labfile.example.yaml
  lab up -f Labfile.example.yaml
  lab status --json
  lab ssh coreos2 -- etcdctl get /message
  lab down
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
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
  if (!command) {
    process.stderr.write(`lab: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  return (await command.load()).run(rest);
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
