// npm run bench: figures, not a timed test. Inside the harness's network namespace
// (test/bench/run.sh), measures on the same image and host:
//   baseline  hand-made: overlays + seeds + `virsh define`, then plain `virsh start` in a
//             loop and polling over OpenSSH until the same health checks pass
//   lab up    fresh 3-node lab to all-healthy
//   no-op     lab up again (5 times), and 3 times with LAB_AGENT=0 (no connection agent)
//   status    lab status --json, with and without the agent;  help  lab --help
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkLabfileText } from '../../lab/load.js';
import { LabDir } from '../../lab/state.js';

const LAB = path.join(import.meta.dirname, '../../dist/cmd/lab.js');
const URI = process.env.LIBVIRT_DEFAULT_URI!;
const NAME = 'bench';
const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-bench-'));
const file = path.join(dir, 'Labfile.yaml');
writeFileSync(
  file,
  `name: ${NAME}
template: debian-12-lab
network: { mode: bridge, bridge: ${process.env.LAB_E2E_BRIDGE ?? 'labbr0'}, cidr: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { memory: 768MiB, disk: 4GiB }
services: [etcd, docker]
nodes:
  - { name: b1, ip: 10.77.0.61 }
  - { name: b2, ip: 10.77.0.62 }
  - { name: b3, ip: 10.77.0.63 }
`,
);
const spec = checkLabfileText(readFileSync(file, 'utf8'), file);
if (!spec.ok) throw new Error('bench Labfile invalid');
const labSpec = spec.lab;
const nodes = labSpec.nodes;
const labDir = new LabDir(NAME);

const sec = (ms: number) => +(ms / 1000).toFixed(1);
const virsh = (...args: string[]) => execa('virsh', ['-q', '-c', URI, ...args], { stdin: 'ignore' });
const lab = async (...args: string[]) => labWith({}, ...args);
const labWith = async (env: Record<string, string>, ...args: string[]) => {
  const t0 = performance.now();
  const r = await execa('node', [LAB, ...args], { reject: false, stdin: 'ignore', env });
  if (r.exitCode !== 0) throw new Error(`lab ${args.join(' ')} failed:\n${String(r.stderr)}`);
  return performance.now() - t0;
};

/** The same checks lab up makes, by hand over OpenSSH: etcd has a leader, docker answers. */
async function healthy(node: string): Promise<boolean> {
  // By node name: the lab's ssh_config pins each node's host key under that name.
  const ssh = ['-F', labDir.sshConfigFile, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3', node];
  const etcd = await execa(
    'ssh',
    [...ssh, 'env', 'ETCDCTL_API=3', 'etcdctl', 'endpoint', 'status', '-w', 'json'],
    {
      reject: false,
      stdin: 'ignore',
    },
  );
  if (etcd.exitCode !== 0 || !/"leader":\s*[1-9]/.test(String(etcd.stdout))) return false;
  const docker = await execa(
    'ssh',
    [...ssh, 'sudo', '-n', 'docker', 'info', '--format', '{{.ServerVersion}}'],
    {
      reject: false,
      stdin: 'ignore',
    },
  );
  return docker.exitCode === 0;
}

/** What lab up checks once nodes are healthy: a container runs on each, a write replicates. */
async function finalChecks(): Promise<void> {
  const ssh = (node: string, ...argv: string[]) =>
    execa('ssh', ['-F', labDir.sshConfigFile, '-o', 'BatchMode=yes', node, ...argv], { stdin: 'ignore' });
  await Promise.all(
    nodes.map(async (n) => {
      await ssh(
        n.name,
        'sudo',
        '-n',
        'docker',
        'import',
        '/usr/share/lab/busybox-rootfs.tar',
        'lab/busybox:local',
      );
      const r = await ssh(n.name, 'sudo', '-n', 'docker', 'run', '--rm', 'lab/busybox:local', 'echo', 'ok');
      if (String(r.stdout).trim() !== 'ok') throw new Error(`docker run on ${n.name}: ${String(r.stdout)}`);
    }),
  );
  await ssh(nodes[0]!.name, 'env', 'ETCDCTL_API=3', 'etcdctl', 'put', '/message', 'hello');
  const got = await ssh(
    nodes[1]!.name,
    'env',
    'ETCDCTL_API=3',
    'etcdctl',
    'get',
    '--print-value-only',
    '/message',
  );
  if (String(got.stdout).trim() !== 'hello') throw new Error('etcd write did not replicate');
}

async function baseline(): Promise<{ prepMs: number; bootMs: number }> {
  // Keys and files exactly as lab would make them, rendered by `lab render`.
  await labDir.ensure();
  const secret = (await labDir.secret(true))!;
  await labDir.writeAccessFiles(labSpec, secret);
  const out = path.join(dir, 'render');
  await lab('render', '-f', file, '--out', out, '--accel', 'tcg');
  const t0 = performance.now();
  for (const n of nodes) {
    const xml = readFileSync(path.join(out, n.name, 'domain.xml'), 'utf8');
    const disk = /<source file="([^"]+\.qcow2)"/.exec(xml)![1]!;
    const seed = /<source file="([^"]+\.iso)"/.exec(xml)![1]!;
    const base = /<kernel>([^<]+)<\/kernel>/.exec(xml)![1]!.replace(/vmlinuz$/, 'disk.qcow2');
    mkdirSync(path.dirname(disk), { recursive: true });
    mkdirSync(path.join(labDir.root, 'console'), { recursive: true });
    await execa('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      'qcow2',
      '-b',
      base,
      disk,
      String(n.diskBytes),
    ]);
    const files = readdirSync(path.join(out, n.name)).filter((f) => f !== 'domain.xml');
    await execa('xorriso', [
      '-as',
      'mkisofs',
      '-quiet',
      '-V',
      'cidata',
      '-J',
      '-r',
      '-o',
      seed,
      ...files.map((f) => path.join(out, n.name, f)),
    ]);
    await virsh('define', path.join(out, n.name, 'domain.xml'));
  }
  const prepMs = performance.now() - t0;
  const t1 = performance.now();
  for (const n of nodes) await virsh('start', n.domain);
  const pending = new Set(nodes.map((n) => n.name));
  let wait = 500;
  while (pending.size > 0) {
    for (const name of [...pending]) if (await healthy(name)) pending.delete(name);
    if (pending.size === 0) break;
    if (performance.now() - t1 > 20 * 60_000) throw new Error('baseline never became healthy');
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 1.5, 3000);
  }
  await finalChecks();
  const bootMs = performance.now() - t1;
  for (const n of nodes) {
    await virsh('destroy', n.domain);
    await virsh('undefine', n.domain);
  }
  await labDir.remove();
  return { prepMs, bootMs };
}

const help = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  await execa('node', [LAB, '--help']);
  help.push(performance.now() - t0);
}
const b = await baseline();
const upMs = await lab('up', '-f', file);
const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const times = async (n: number, fn: () => Promise<number>) => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
};
// The connection agent keeps SSH open between commands; LAB_AGENT=0 is every command
// connecting on its own, as before the agent.
const noop = await times(5, () => lab('up', '-f', file));
const noopNoAgent = await times(3, () => labWith({ LAB_AGENT: '0' }, 'up', '-f', file));
const status = await times(3, () => lab('status', '--json', '-f', file));
const statusNoAgent = await times(3, () => labWith({ LAB_AGENT: '0' }, 'status', '--json', '-f', file));
await lab('down', '-f', file);
const list = (xs: number[]) => xs.map((x) => sec(x)).join(', ');
const baselineTotal = b.prepMs + b.bootMs;
const figures = {
  'lab --help (median of 5)': `${Math.round(help.sort((x, y) => x - y)[2]!)} ms`,
  'baseline: prepare overlays+seeds+define': `${sec(b.prepMs)} s`,
  'baseline: virsh start loop -> all healthy': `${sec(b.bootMs)} s`,
  'baseline total': `${sec(baselineTotal)} s`,
  'lab up (fresh, 3 nodes) -> all healthy': `${sec(upMs)} s`,
  'lab up vs baseline': `${(((upMs - baselineTotal) / baselineTotal) * 100).toFixed(1)} %`,
  'lab up no-op re-run (median of 5)': `${sec(median(noop))} s  [${list(noop)}]`,
  'lab up no-op, LAB_AGENT=0 (median of 3)': `${sec(median(noopNoAgent))} s  [${list(noopNoAgent)}]`,
  'lab status --json (median of 3)': `${sec(median(status))} s  [${list(status)}]`,
  'lab status --json, LAB_AGENT=0 (median of 3)': `${sec(median(statusNoAgent))} s  [${list(statusNoAgent)}]`,
};
for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(44)} ${v}`);
