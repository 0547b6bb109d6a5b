// npm run bench: figures, not a timed test. Inside the harness's network namespace
// (test/bench/run.sh), measures on the same image and host:
//   baseline  hand-made: overlays + seeds + `virsh define`, then plain `virsh start` in a
//             loop and polling over OpenSSH until the same health checks pass
//   lab up    fresh 3-node lab to all-healthy, and what each guest costs the host (QEMU's RSS)
//   no-op     lab up again (5 times), and 3 times with LAB_AGENT=0 (no connection agent)
//   status    lab status --json, with and without the agent;  help  lab --help
//   checkpoint  save of the healthy lab, its size, restore to healthy after a write
//   5 nodes   a fresh 5-node lab up, then its no-op up and status --json (goals: <= 3 s
//             and <= 1 s), and whether any of them printed a Node warning
import { execa } from 'execa';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { imageLocation } from '../../lab/providers/images.js';
import { writeSeedIso } from '../../lab/providers/iso.js';
import { createOverlay } from '../../lab/providers/qemu-img.js';
import { Virsh } from '../../lab/providers/virsh.js';
import { bootstrapMembership, membershipFile } from '../../lab/render/etcd.js';
import { renderNode } from '../../lab/render/node.js';
import { LabDir } from '../../lab/store/lab-dir.js';
import { bridgeLabfile } from '../support/e2e-labfile.js';
import { specFrom } from '../support/lab-spec.js';

const LAB = path.join(import.meta.dirname, '../../dist/cmd/lab.js');
const URI = process.env.LIBVIRT_DEFAULT_URI!;
const NAME = 'bench';
const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-bench-'));
const file = path.join(dir, 'Labfile.yaml');
const text = bridgeLabfile({
  name: NAME,
  services: '[etcd, docker]',
  nodes: ['b1', 'b2', 'b3'].map((n, i) => `  - { name: ${n}, ip: 10.77.0.6${i + 1} }\n`).join(''),
});
writeFileSync(file, text);
const labSpec = specFrom(text, file);
const nodes = labSpec.nodes;
const labDir = new LabDir(NAME);

const sec = (ms: number) => +(ms / 1000).toFixed(1);
const lab = async (...args: string[]) => labWith({}, ...args);
/** Node's own warnings (MaxListenersExceededWarning, deprecations) seen in any lab run. */
const nodeWarnings: string[] = [];
const labWith = async (env: Record<string, string>, ...args: string[]) => {
  const t0 = performance.now();
  const r = await execa('node', [LAB, ...args], { reject: false, stdin: 'ignore', env });
  if (r.exitCode !== 0) throw new Error(`lab ${args.join(' ')} failed:\n${String(r.stderr)}`);
  for (const line of String(r.stderr).split('\n'))
    if (/\(node:\d+\) \w*Warning/.test(line)) nodeWarnings.push(`lab ${args[0]}: ${line}`);
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

/** The static bootstrap membership file, written and etcd started; false while SSH is not up. */
async function writeMembership(n: (typeof nodes)[number]): Promise<boolean> {
  const f = membershipFile(labSpec, n, bootstrapMembership(labSpec));
  const ssh = ['-F', labDir.sshConfigFile, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3', n.name];
  const put = await execa(
    'ssh',
    [...ssh, 'sudo', '-n', 'sh', '-c', `'mkdir -p "\${1%/*}" && cat > "$1"'`, 'sh', f.path],
    {
      reject: false,
      input: f.content,
    },
  );
  if (put.exitCode !== 0) return false;
  await execa('ssh', [...ssh, 'sudo', '-n', 'systemctl', 'start', '--no-block', f.unit], { stdin: 'ignore' });
  return true;
}

async function baseline(): Promise<{ prepMs: number; bootMs: number }> {
  // Keys, files and domains exactly as lab would make them (its own render and providers),
  // without lab's pipeline: what a person scripting libvirt by hand would run.
  await labDir.ensure();
  const secret = (await labDir.secret(true))!;
  await labDir.writeAccessFiles(labSpec, secret);
  const virsh = new Virsh(URI);
  const t0 = performance.now();
  for (const n of nodes) {
    const image = imageLocation(n.template);
    const d = renderNode({ lab: labSpec, node: n, paths: labDir.nodePaths(n, image), secret, type: 'qemu' });
    mkdirSync(path.dirname(d.paths.console), { recursive: true });
    await createOverlay(image.disk, image.format, d.paths.disk, n.diskBytes);
    await writeSeedIso(d.paths.seed!, d.bundle.volumeLabel ?? 'cidata', d.bundle.files);
    await virsh.define(d.xml);
  }
  const prepMs = performance.now() - t0;
  const t1 = performance.now();
  for (const n of nodes) await virsh.start(n.domain);
  const pending = new Set(nodes.map((n) => n.name));
  // etcd's member list is written over SSH before its first start, as lab does it.
  const unwritten = new Set(nodes.map((n) => n.name));
  let wait = 500;
  while (pending.size > 0) {
    for (const n of nodes) if (unwritten.has(n.name) && (await writeMembership(n))) unwritten.delete(n.name);
    for (const name of [...pending]) if (await healthy(name)) pending.delete(name);
    if (pending.size === 0) break;
    if (performance.now() - t1 > 20 * 60_000) throw new Error('baseline never became healthy');
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 1.5, 3000);
  }
  await finalChecks();
  const bootMs = performance.now() - t1;
  for (const n of nodes) {
    await virsh.destroy(n.domain);
    await virsh.undefine(n.domain);
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
/** What each guest of a lab costs the host: its QEMU's resident memory (ps), in MiB. */
const qemuRssMiB = async (labName: string) =>
  String((await execa('ps', ['-eo', 'rss=,args='])).stdout)
    .split('\n')
    .filter((l) => l.includes(`guest=${labName}-`))
    .map((l) => Math.round(Number(l.trim().split(/\s+/)[0]) / 1024));
const rss = await qemuRssMiB(NAME);
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
// Checkpoints: save the healthy lab, change it, bring it back to healthy.
const saveMs = await lab('checkpoint', 'save', 'bench', '-f', file);
const listed = await execa('node', [LAB, 'checkpoint', 'list', '--json', '-f', file], { stdin: 'ignore' });
const sizeBytes = (JSON.parse(String(listed.stdout)) as { checkpoints: { sizeBytes: number }[] })
  .checkpoints[0]!.sizeBytes;
await lab('ssh', nodes[0]!.name, '-f', file, '--', 'env', 'ETCDCTL_API=3', 'etcdctl', 'put', '/bench', 'x');
const restoreMs = await lab('checkpoint', 'restore', 'bench', '-f', file);
await lab('down', '-f', file);

// Five nodes: the same figures, to see how they grow with the lab.
const file5 = path.join(dir, 'Labfile5.yaml');
writeFileSync(
  file5,
  bridgeLabfile({
    name: 'bench5',
    services: '[etcd, docker]',
    nodes: ['c1', 'c2', 'c3', 'c4', 'c5']
      .map((n, i) => `  - { name: ${n}, ip: 10.77.0.7${i + 1} }\n`)
      .join(''),
  }),
);
const up5Ms = await lab('up', '-f', file5);
const noop5 = await times(5, () => lab('up', '-f', file5));
const status5 = await times(5, () => lab('status', '--json', '-f', file5));
await lab('down', '-f', file5);

const list = (xs: number[]) => xs.map((x) => sec(x)).join(', ');
const baselineTotal = b.prepMs + b.bootMs;
const figures = {
  'lab --help (median of 5)': `${Math.round(help.sort((x, y) => x - y)[2]!)} ms`,
  'baseline: prepare overlays+seeds+define': `${sec(b.prepMs)} s`,
  'baseline: virsh start loop -> all healthy': `${sec(b.bootMs)} s`,
  'baseline total': `${sec(baselineTotal)} s`,
  'lab up (fresh, 3 nodes) -> all healthy': `${sec(upMs)} s`,
  'lab up vs baseline': `${(((upMs - baselineTotal) / baselineTotal) * 100).toFixed(1)} %`,
  'host RSS per guest, healthy (QEMU, ps)': `${median([...rss])} MiB median [${rss.join(', ')}] for ${nodes[0]!.memoryMiB} MiB guests, tcg.tbCache ${labSpec.tcg.tbCacheMiB} MiB`,
  'lab up no-op re-run (median of 5)': `${sec(median(noop))} s  [${list(noop)}]`,
  'lab up no-op, LAB_AGENT=0 (median of 3)': `${sec(median(noopNoAgent))} s  [${list(noopNoAgent)}]`,
  'lab status --json (median of 3)': `${sec(median(status))} s  [${list(status)}]`,
  'lab status --json, LAB_AGENT=0 (median of 3)': `${sec(median(statusNoAgent))} s  [${list(statusNoAgent)}]`,
  'lab checkpoint save (3 nodes)': `${sec(saveMs)} s`,
  'checkpoint size (memory state, 3 nodes)': `${Math.round(sizeBytes / 1024 ** 2)} MiB`,
  'lab checkpoint restore -> all healthy': `${sec(restoreMs)} s`,
  'restore vs lab up from nothing': `${((restoreMs / upMs) * 100).toFixed(1)} % of ${sec(upMs)} s`,
  'lab up (fresh, 5 nodes) -> all healthy': `${sec(up5Ms)} s`,
  'lab up no-op re-run, 5 nodes (median of 5)': `${sec(median(noop5))} s  [${list(noop5)}]  goal <= 3 s`,
  'lab status --json, 5 nodes (median of 5)': `${sec(median(status5))} s  [${list(status5)}]`,
  'lab status --json, 3 nodes (goal)': `${sec(median(status))} s, goal <= 1 s`,
  'Node warnings in any lab output': nodeWarnings.length === 0 ? 'none' : nodeWarnings.join(' | '),
};
for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(44)} ${v}`);
