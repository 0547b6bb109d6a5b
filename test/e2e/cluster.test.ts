// The classic walkthrough, for real: three TCG guests on a bridge in the harness's
// network namespace, etcd + docker, pinned SSH host keys, then failover and teardown.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LAB,
  Terminal,
  eventually,
  inventory,
  lab,
  pinnedHostKeys,
  screenRow,
  statusJson,
  virsh,
  writeLabfile,
  type LabRun,
  type StatusJson,
} from './helpers.js';
import {
  checkpointList,
  domainStates,
  domainsOf,
  mutating,
  ok,
  shimmed,
  snapshotsOf,
  verbCount,
} from './checkpoints.js';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertMatchesSchema } from '../support/json-schema.js';

// The lab is Labfile.example.yaml itself, copied verbatim into a folder of its own: the
// README's quick start and the examples of `lab --help` run there as typed (first and
// last tests), the other tests name it with -f.
const NAME = 'coreos-lab';
const here = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-quickstart-'));
const file = path.join(here, 'Labfile.example.yaml');
copyFileSync(path.join(import.meta.dirname, '../../Labfile.example.yaml'), file);

/** The `lab …` lines of a text, comments cut. */
const labLines = (text: string) =>
  text
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l.startsWith('lab '));

/** The README's quick start: its ```sh block that brings up Labfile.example.yaml. */
function readmeQuickStart(): string[] {
  const readme = readFileSync(path.join(import.meta.dirname, '../../README.md'), 'utf8');
  const block = readme
    .split('```sh\n')
    .slice(1)
    .map((b) => b.slice(0, b.indexOf('```')))
    .find((b) => b.includes('\nlab up -f Labfile.example.yaml'));
  if (!block) throw new Error('README.md: no ```sh block with lab up -f Labfile.example.yaml');
  return labLines(block);
}

/** The examples `lab --help` prints. */
async function helpExamples(): Promise<string[]> {
  const r = await lab(['--help']);
  const at = r.stdout.indexOf('\nExamples:\n');
  if (r.code !== 0 || at < 0) throw new Error(`lab --help: no Examples section:\n${r.stdout}`);
  return labLines(r.stdout.slice(at));
}

/** `lab ...` as typed, from the quick start's folder: words split on spaces, as the shell would. */
async function typed(line: string): Promise<LabRun> {
  expect(line, 'a line the test can split like the shell').toMatch(/^lab [\w./: -]+$/);
  return lab(line.split(' ').slice(1), { cwd: here });
}

interface UnitRow {
  unit: string;
  node?: string;
  ip?: string;
  active: string;
  sub: string;
  description: string;
}

/** lab units --json, with each unit's nodes. */
async function unitsNow(): Promise<{ rows: UnitRow[]; on: (unit: string) => string[] }> {
  const r = await lab(['units', '-f', file, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const rows = JSON.parse(r.stdout) as UnitRow[];
  assertMatchesSchema('units', rows);
  return { rows, on: (unit) => rows.filter((x) => x.unit === unit && x.node).map((x) => x.node!) };
}

let before: Awaited<ReturnType<typeof inventory>>;
let terminal: Terminal | undefined;
/** The node the failover test destroyed. */
let destroyed: string | undefined;
const timings: Record<string, number> = {};

describe('Labfile.example.yaml: a 3-node etcd + docker lab on a managed network', () => {
  beforeAll(async () => {
    before = await inventory(NAME);
  });
  afterAll(async () => {
    await terminal?.close();
    // Leave nothing behind even when a test failed half-way.
    await lab(['down', '-f', file]);
    process.stderr.write(
      `\nE2E TIMINGS (s): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, +(v / 1000).toFixed(1)])))}\n`,
    );
  });

  // The suite's first boot of three guests (a setup step): the hooks' 15 min, not 10.
  let quickStart: string[] = [];
  it(
    'the README quick start and the lab --help examples, run as typed in the folder of Labfile.example.yaml, bring all three nodes to healthy',
    { timeout: 15 * 60_000 },
    async () => {
      quickStart = readmeQuickStart();
      const help = await helpExamples();
      // Each ends with lab down: the last test runs it, once the others used the lab.
      expect(quickStart.at(-1)).toBe('lab down');
      expect(help.at(-1)).toBe('lab down');
      expect(quickStart).toContain('lab up -f Labfile.example.yaml');
      const lines = [
        ...new Set([...help.filter((l) => l.startsWith('lab validate')), ...quickStart, ...help]),
      ].filter((l) => l !== 'lab down');
      process.stderr.write(`\nQUICK START, as typed in ${here}:\n${lines.map((l) => `  ${l}\n`).join('')}`);
      for (const line of lines) {
        const r = await typed(line);
        expect(r.code, `${line}\n${r.stderr}`).toBe(0);
        if (line === 'lab up -f Labfile.example.yaml') {
          timings.up = r.ms;
          expect(r.stdout).toContain('lab is healthy');
          expect(r.stderr).toMatch(/TCG|KVM/); // the accelerator choice is said
          expect(r.stdout).toMatch(/write\/read across nodes ok/);
        } else if (line === 'lab ssh coreos2 -- etcdctl get /message') {
          expect(r.stdout).toBe('/message\nHello from coreos1\n');
        } else if (line === 'lab status --json') {
          const s = JSON.parse(r.stdout) as StatusJson;
          assertMatchesSchema('status', s);
          expect(s.lab).toBe(NAME);
        } else if (line === 'lab status') {
          for (const n of ['coreos1', 'coreos2', 'coreos3']) expect(r.stdout).toContain(n);
        } else if (line.startsWith('lab validate')) {
          expect(r.stdout + r.stderr).toMatch(/ok|valid/i);
        }
      }
      // Every line was one of these (a new kind of line needs its own check above).
      expect(lines.every((l) => /^lab (validate|image build|up|status|ssh) /.test(`${l} `))).toBe(true);
    },
  );

  let first: StatusJson;
  it('lab status --json shows one etcd leader, three distinct machine-ids equal to the domain UUIDs, docker up', async () => {
    const t0 = performance.now();
    // Right after up, an emulated guest may miss one probe's deadline (status then says
    // so, machine-id null): the values are checked on the first complete answer.
    first = await eventually(async () => {
      const s = await statusJson(file);
      return s.nodes.every((n) => n.machineId !== null && n.etcd !== null) ? s : undefined;
    }, 60_000);
    timings.statusJson = performance.now() - t0;
    expect(first.nodes.map((n) => n.state)).toEqual(['running', 'running', 'running']);
    const leaders = first.nodes.filter((n) => n.etcd?.state === 'leader');
    expect(leaders).toHaveLength(1);
    expect(first.cluster.etcdLeader).toBe(leaders[0]!.name);
    expect(first.cluster.etcdMembers).toBe(3);
    expect(first.cluster.quorum).toBe(true);
    const ids = first.nodes.map((n) => n.machineId);
    expect(new Set(ids).size).toBe(3);
    for (const n of first.nodes) {
      expect(n.machineId).toMatch(/^[0-9a-f]{32}$/);
      const uuid = (await virsh(['domuuid', `${NAME}-${n.name}`])).trim();
      expect(n.machineId).toBe(uuid.replaceAll('-', ''));
      expect(n.docker?.state).toBe('up');
      expect(n.fleet).toBe('absent');
      expect(n.lastError).toBeNull();
    }
  });

  it('every node has its own identity, read in the guest: machine-id, D-Bus machine id, DHCP DUID source, SSH host key, MAC (R20)', async () => {
    // The host keys lab pinned before the first boot, by node.
    const pinned = pinnedHostKeys(NAME);
    const ids: Record<string, Record<string, string>> = {};
    for (const n of first.nodes) {
      // As root on the guest: the files, and what the system bus's services answer
      // (sd-bus's GetMachineId, as D-Bus peers see the machine). networkd's DHCP DUID-EN and
      // IAID are hashed from the machine id made app-specific with systemd's DHCP
      // application id (src/libsystemd-network/dhcp-identifier.c); systemd-id128 computes it.
      const r = await lab([
        'ssh',
        n.name,
        '-f',
        file,
        '--',
        'sudo',
        '-n',
        'sh',
        '-c',
        [
          'cat /etc/machine-id',
          'cat /var/lib/dbus/machine-id',
          'busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.DBus.Peer GetMachineId',
          'busctl call org.freedesktop.hostname1 /org/freedesktop/hostname1 org.freedesktop.DBus.Peer GetMachineId',
          'systemd-id128 machine-id --app-specific=a50ad112bf604577a2fb741ab1955b03',
          "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub",
          'cat /sys/class/net/eth0/address',
        ].join('; '),
      ]);
      expect(r.code, r.stderr).toBe(0);
      const [machine, dbusFile, systemdPeer, hostnamePeer, duidSource, hostKey, mac] = r.stdout
        .trim()
        .split('\n');
      ids[n.name] = {
        machine: machine!,
        dbusFile: dbusFile!,
        systemdPeer: /^s "([0-9a-f]{32})"$/.exec(systemdPeer!)?.[1] ?? `unparsed: ${systemdPeer}`,
        hostnamePeer: /^s "([0-9a-f]{32})"$/.exec(hostnamePeer!)?.[1] ?? `unparsed: ${hostnamePeer}`,
        duidSource: duidSource!,
        hostKey: hostKey!,
        mac: mac!,
      };
      process.stderr.write(`R20 ${n.name}: ${JSON.stringify(ids[n.name])}\n`);
      const mine = ids[n.name]!;
      expect(mine.machine).toBe(n.machineId);
      // D-Bus's copy and the bus's answer are the machine's own id, not a baked-in one.
      expect(mine.dbusFile).toBe(mine.machine);
      expect(mine.systemdPeer).toBe(mine.machine);
      expect(mine.hostnamePeer).toBe(mine.machine);
      expect(mine.duidSource).toMatch(/^[0-9a-f]{32}$/);
      expect(mine.duidSource).not.toBe(mine.machine);
      // The guest serves exactly the host key lab pinned for this node.
      expect(mine.hostKey).toBe(pinned.get(n.name));
      const domiflist = await virsh(['domiflist', `${NAME}-${n.name}`]);
      expect(domiflist.trim().split(/\s+/).at(-1)).toBe(mine.mac);
    }
    for (const key of ['machine', 'duidSource', 'hostKey', 'mac'] as const) {
      const values = Object.values(ids).map((v) => v[key]);
      expect(new Set(values).size, `${key}: ${values.join(' ')}`).toBe(3);
    }
  });

  it('lab machines lists the three machine-ids (as status reads them), each IP, and the fleet metadata', async () => {
    const r = await lab(['machines', '--json', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    assertMatchesSchema('machines', JSON.parse(r.stdout));
    const machines = JSON.parse(r.stdout) as {
      machine: string;
      ip: string;
      metadata: string;
      node: string;
    }[];
    const s = await statusJson(file);
    expect(machines.map((m) => [m.node, m.machine, m.ip])).toEqual(
      s.nodes.map((n) => [n.name, n.machineId, n.ip]),
    );
    expect(new Set(machines.map((m) => m.machine)).size).toBe(3);
    expect(machines[0]!.metadata).toBe(`lab=${NAME},node=${machines[0]!.node}`);
    const text = await lab(['machines', '-f', file]);
    expect(text.stdout.split('\n')[0]).toMatch(/^MACHINE\s+IP\s+METADATA$/);
    expect(text.stdout).toContain(`${machines[1]!.machine.slice(0, 8)}...`);
  });

  let placedBefore: Awaited<ReturnType<typeof unitsNow>>;
  it('lab list shows the lab: 3 nodes, 3 running, 3 healthy (probed), its managed network and Labfile', async () => {
    const r = await lab(['list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    assertMatchesSchema('list', JSON.parse(r.stdout));
    const mine = (JSON.parse(r.stdout) as { lab: string }[]).find((l) => l.lab === NAME);
    expect(mine).toMatchObject({
      nodes: 3,
      running: 3,
      healthy: 3,
      network: 'managed 10.52.0.0/24',
      labfile: file,
      orphan: false,
    });
    const text = await lab(['list', '--no-probe']);
    expect(text.stdout).toMatch(new RegExp(`^${NAME}\\s+3\\s+3\\s+-\\s+managed 10\\.52\\.0\\.0/24`, 'm'));
  });

  it('lab exec -- hostname prints the three names, each line prefixed by its node, exit 0; a command failing on one node exits 1 and names it', async () => {
    const r = await lab(['exec', '-f', file, '--', 'hostname']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').sort();
    expect(lines).toEqual(['coreos1 | coreos1', 'coreos2 | coreos2', 'coreos3 | coreos3']);
    expect(r.stderr).toMatch(/^3 nodes: 3 exited 0$/m);
    const json = await lab(['exec', '-f', file, '--json', '--', 'hostname']);
    assertMatchesSchema('exec', JSON.parse(json.stdout));
    const results = JSON.parse(json.stdout) as { node: string; code: number; stdout: string }[];
    expect(new Set(results.map((x) => x.stdout.trim())).size).toBe(3);
    const bad = await lab([
      'exec',
      '-f',
      file,
      '--nodes',
      'coreos1,coreos2',
      '--',
      'sh',
      '-c',
      'test "$(hostname)" != coreos2',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^2 nodes: 1 exited 0; coreos2 exited 1$/m);
  });

  it('lab units: the conflicting apache replicas run on two different nodes, hello prints Hello World, httpd answers', async () => {
    const u = await unitsNow();
    placedBefore = u;
    expect(u.rows.map((r) => r.unit).sort()).toEqual([
      'apache.1.service',
      'apache.2.service',
      'hello.service',
    ]);
    for (const r of u.rows) {
      expect(r.node, r.unit).toBeDefined();
      expect([r.active, r.sub], r.unit).toEqual(['active', 'running']);
    }
    const [a1, a2] = [u.on('apache.1.service'), u.on('apache.2.service')];
    expect(a1).toHaveLength(1);
    expect(a2).toHaveLength(1);
    expect(a1[0]).not.toBe(a2[0]);
    expect(u.rows.find((r) => r.unit === 'apache.1.service')!.description).toBe('My Apache Frontend');
    // The table reads like fleetctl list-units: UNIT LOAD ACTIVE SUB DESC MACHINE.
    const table = await lab(['units', '-f', file]);
    expect(table.stdout.split('\n')[0]).toMatch(/^UNIT\s+LOAD\s+ACTIVE\s+SUB\s+DESC\s+MACHINE$/);
    expect(table.stdout).toMatch(
      /^hello\.service\s+loaded\s+active\s+running\s+MyApp\s+[0-9a-f]{8}\.\.\.\/10\.52\.0\.5\d$/m,
    );
    // hello's container prints Hello World every second on its node.
    const hello = u.on('hello.service')[0]!;
    const logs = await eventually(async () => {
      const r = await lab(['ssh', hello, '-f', file, '--', 'sudo', 'docker', 'logs', '--tail', '3', 'hello']);
      return r.stdout.includes('Hello World') ? r.stdout : undefined;
    }, 60_000);
    expect(logs).toMatch(/^Hello World$/m);
    // Each apache replica serves on port 80 of its own node.
    for (const node of [a1[0]!, a2[0]!]) {
      const ip = u.rows.find((r) => r.node === node && r.unit.startsWith('apache'))!.ip!;
      const body = await eventually(async () => {
        const res = await fetch(`http://${ip}/`, { signal: AbortSignal.timeout(10_000) }).catch(
          () => undefined,
        );
        return res?.ok ? await res.text() : undefined;
      }, 60_000);
      expect(body).toBe('Hello from apache\n');
    }
  });

  it('lab ssh coreos2 -- etcdctl get /message prints the value written on coreos1', async () => {
    const r = await lab([
      'ssh',
      'coreos2',
      '-f',
      file,
      '--',
      'etcdctl',
      'get',
      '/message',
      '--print-value-only',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('Hello from coreos1');
    const motd = await lab(['ssh', 'coreos3', '-f', file, '--', 'cat', '/etc/motd']);
    expect(motd.stdout).toBe('Welcome to coreos3, a lab node.\n');
    const fail = await lab(['ssh', 'coreos1', '-f', file, '--', 'sh', '-c', 'exit 7']);
    expect(fail.code).toBe(7);
  });

  it('lab ssh-config works with plain OpenSSH and strict host key checking', async () => {
    const r = await lab(['ssh-config', '-f', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('StrictHostKeyChecking yes');
    const { execa } = await import('execa');
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const cfg = `${mkdtempSync('/tmp/lab-sshcfg-')}/config`;
    writeFileSync(cfg, r.stdout);
    const ssh = await execa('ssh', ['-F', cfg, '-o', 'BatchMode=yes', `${NAME}-coreos1`, 'hostname'], {
      reject: false,
      stdin: 'ignore',
    });
    expect(ssh.stderr).toBe('');
    expect(String(ssh.stdout).trim()).toBe('coreos1');
  });

  it('another lab on the same bridge may not take an address that already answers', async () => {
    // The bridge of the network lab made for coreos-lab, named by libvirt.
    const bridge = /^Bridge:\s+(\S+)$/m.exec(await virsh(['net-info', `lab-${NAME}`]))?.[1];
    expect(bridge).toBeTruthy();
    const other = writeLabfile(`name: e2eother
template: debian-12-lab
network: { mode: bridge, bridge: ${bridge}, cidr: 10.52.0.0/24 }
nodes: [{ name: intruder, ip: 10.52.0.53 }]
`);
    const before = await inventory('e2eother');
    const r = await lab(['up', '-f', other]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('address already in use on');
    expect(r.stderr).toContain('10.52.0.53 (intruder)');
    const after = await inventory('e2eother');
    expect(after.domains).toEqual(before.domains);
    // Nothing written either: no lab folder, no keys.
    expect(before.files).toEqual([]);
    expect(after.files).toEqual([]);
  });

  it('a second lab up changes nothing and is fast', async () => {
    // Counted from outside lab: the shims log every virsh, qemu-img and ISO tool run; the
    // QEMU processes and the guests' boot ids are the same after.
    const qemuPids = async () =>
      String((await execa('ps', ['-eo', 'pid=,args='])).stdout)
        .split('\n')
        .filter((l) => l.includes(`guest=${NAME}-`))
        .map((l) => l.trim().split(/\s+/)[0])
        .sort();
    const bootIds = async () =>
      Promise.all(
        ['coreos1', 'coreos2', 'coreos3'].map(async (n) => {
          const r = await lab(['ssh', n, '-f', file, '--', 'cat', '/proc/sys/kernel/random/boot_id']);
          ok(r);
          return r.stdout.trim();
        }),
      );
    const [pids, boots] = [await qemuPids(), await bootIds()];
    expect(pids).toHaveLength(3);
    const { r, calls } = await shimmed(['up', '-f', file]);
    timings.noopUp = r.ms;
    ok(r);
    expect(r.stdout).toContain('nothing changed');
    expect(calls.length).toBeGreaterThan(0);
    expect(mutating(calls)).toEqual([]);
    expect(await qemuPids()).toEqual(pids);
    expect(await bootIds()).toEqual(boots);
  });

  it('lab status in a real terminal (tmux) draws every node and the etcd leader', async () => {
    terminal = await Terminal.open(['node', LAB, 'status', '-f', file, '--interval', '2']);
    const t = terminal;
    const leaderRows = (text: string) =>
      ['coreos1', 'coreos2', 'coreos3'].filter((n) => /\bleader\b/.test(screenRow(text, n) ?? ''));
    const screen = await t.waitFor(
      (text) =>
        ['coreos1', 'coreos2', 'coreos3']
          .map((n) => screenRow(text, n))
          .every((r) => r !== undefined && /running/.test(r) && /\b(leader|follower)\b/.test(r)) &&
        leaderRows(text).length === 1,
      60_000,
    );
    // The header's verdict names the same leader as the table.
    expect(screen).toContain(`leader ${leaderRows(screen)[0]}`);
    expect(screen).toMatch(/TCG|KVM/);
    expect(screen).toMatch(/\bq\b.*quit/i);
  });

  it('s opens a shell on the selected node and exiting it returns to the screen', async () => {
    const t = terminal!;
    await t.keys('s');
    await t.waitFor((text) => text.includes('a shell on coreos1'), 30_000);
    // Typed into the guest's shell; the arithmetic proves a shell ran it, not an echo of keys.
    await t.keys('echo lab-shell-$((6*7))', 'Enter');
    await t.waitFor((text) => /^lab-shell-42$/m.test(text), 30_000);
    await t.keys('exit', 'Enter');
    // Back on the screen: a table drawn again below the shell's output (the one from before
    // the shell is still on the terminal above it).
    await t.waitFor((text) => {
      const lines = text.split('\n');
      const shellAt = lines.findIndex((l) => /^lab-shell-42$/.test(l));
      const footerAt = lines.findLastIndex((l) => /\bq quit\b/.test(l));
      const rowAt = lines.findLastIndex((l) => screenRow(l, 'coreos2') !== undefined && /running/.test(l));
      return shellAt >= 0 && rowAt > shellAt && footerAt > rowAt;
    }, 60_000);
  });

  // The failure drills (issue 21): each seen by `lab status --json` within 5 s of the
  // command's return, read from libvirt; each undone by `lab up`. Counted by the virsh
  // shim and read back from libvirt itself.
  const stateOf = (s: StatusJson, node: string) => s.nodes.find((n) => n.name === node)!;
  /** How long after `t0` a `lab status --json` first shows `seen`; past 5 s fails. */
  async function seenWithin5s(t0: number, seen: (s: StatusJson) => boolean): Promise<number> {
    await eventually(async () => (seen(await statusJson(file)) ? true : undefined), 5_000, 100);
    const ms = performance.now() - t0;
    expect(ms, 'lab status --json showed the drill').toBeLessThan(5_000);
    return ms;
  }
  const macOf = async (domain: string) => (await virsh(['domiflist', domain])).trim().split(/\s+/).at(-1)!;
  const healthyAgain = () =>
    eventually(async () => {
      const x = await statusJson(file);
      return x.cluster.quorum && x.cluster.etcdMembers === 3 && x.nodes.every((n) => n.machineId !== null)
        ? x
        : undefined;
    }, 240_000);

  it('lab stop of the etcd leader (a drill): the guest powers itself off through ACPI, status --json shows it within 5 s, then a new leader, and the live screen follows; q exits 0', async () => {
    // The leader now: under load on emulated guests, leadership may have moved since.
    const leader = await eventually(
      async () => (await statusJson(file)).cluster.etcdLeader ?? undefined,
      60_000,
    );
    destroyed = leader;
    const domain = `${NAME}-${leader}`;
    const t0 = performance.now();
    const stop = await shimmed(['stop', leader, '-f', file, '--timeout', '180s']);
    expect(stop.r.code, stop.r.stderr).toBe(0);
    timings.acpiStop = stop.r.ms;
    expect(stop.r.stdout).toMatch(
      new RegExp(`^${leader}: shut down by the guest \\(ACPI\\) in [\\d.]+ s \\(running -> shut off\\)`),
    );
    // Only the power button was pressed (no destroy), and libvirt has the domain off: the
    // guest powered itself off.
    expect(mutating(stop.calls)).toEqual([`shutdown --domain ${domain} --mode acpi`]);
    expect((await virsh(['domstate', domain])).trim()).toBe('shut off');
    timings.stopSeen = await seenWithin5s(performance.now(), (x) => stateOf(x, leader).state === 'shut off');
    const after = await eventually(async () => {
      const s = await statusJson(file);
      return s.cluster.etcdLeader && s.cluster.etcdLeader !== leader ? s : undefined;
    }, 120_000);
    timings.failover = performance.now() - t0;
    expect(after.nodes.find((n) => n.name === leader)!.state).toBe('shut off');
    expect(after.cluster.quorum).toBe(true);

    // The screen that was open all along (and went through a shell session) follows
    // within a refresh or two of the JSON view (interval 2 s).
    const t = terminal!;
    const t1 = performance.now();
    const screen = await t.waitFor((text) => {
      const down = screenRow(text, leader);
      const newLeader = ['coreos1', 'coreos2', 'coreos3'].find(
        (n) => n !== leader && /\bleader\b/.test(screenRow(text, n) ?? ''),
      );
      return down !== undefined && /shut off/.test(down) && newLeader !== undefined;
    }, 30_000);
    timings.screenFollows = performance.now() - t1;
    expect(screenRow(screen, after.cluster.etcdLeader!)).toMatch(/\bleader\b/);
    // q quits, at once: the exit status is there within 10 s.
    const t2 = performance.now();
    await t.keys('q');
    const exit = await eventually(() => t.exitStatus(), 10_000, 100).catch(() => undefined);
    timings.quit = performance.now() - t2;
    expect(exit, `screen after q:\n${await t.screen()}`).toBe(0);
  });

  it("lab console attaches a terminal to a node's serial console: Enter shows its login prompt, Ctrl-] leaves with exit 0; a node that is off, or no terminal, is refused", async () => {
    const node = ['coreos1', 'coreos2', 'coreos3'].find((n) => n !== destroyed)!;
    const t = await Terminal.open(['node', LAB, 'console', node, '-f', file], { columns: 120, rows: 30 });
    try {
      await t.waitFor((x) => x.includes(`${node}'s serial console`), 30_000);
      await t.keys('Enter');
      await t.waitFor((x) => new RegExp(`^${node} login:`, 'm').test(x), 60_000);
      await t.keys('C-]');
      expect(await eventually(() => t.exitStatus(), 10_000, 100)).toBe(0);
    } finally {
      await t.close();
    }
    const off = await lab(['console', destroyed!, '-f', file]);
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(new RegExp(`${destroyed} is shut off[\\s\\S]*hint: lab start ${destroyed}`));
    const piped = await lab(['console', node, '-f', file]);
    expect(piped.code).toBe(2);
    expect(piped.stderr).toMatch(/needs a terminal[\s\S]*lab logs .* --follow/);
  });

  it('lab start boots the stopped node and lab kill powers it off at once: each seen by status --json within 5 s', async () => {
    const node = destroyed!;
    const domain = `${NAME}-${node}`;
    const start = await shimmed(['start', node, '-f', file]);
    expect(start.r.code, start.r.stderr).toBe(0);
    expect(mutating(start.calls)).toEqual([`start --domain ${domain}`]);
    timings.startSeen = await seenWithin5s(performance.now(), (s) => stateOf(s, node).state === 'running');
    const kill = await shimmed(['kill', node, '-f', file, '--json']);
    expect(kill.r.code, kill.r.stderr).toBe(0);
    assertMatchesSchema('drill', JSON.parse(kill.r.stdout));
    expect(JSON.parse(kill.r.stdout)).toMatchObject([
      { node, before: 'running', after: 'shut off', did: 'powered off' },
    ]);
    expect(mutating(kill.calls)).toEqual([`destroy --domain ${domain}`]);
    timings.killSeen = await seenWithin5s(performance.now(), (s) => stateOf(s, node).state === 'shut off');
    expect((await virsh(['domstate', domain])).trim()).toBe('shut off');
  });

  it('lab up brings back exactly the destroyed node, with the same identity', async () => {
    const leader = destroyed!;
    const r = await lab(['up', '-f', file, '--json']);
    timings.repairUp = r.ms;
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { nodes: { node: string; actions: string[] }[] };
    for (const n of result.nodes) expect(n.actions).toEqual(n.node === leader ? ['start'] : []);
    // A guest that just booted may miss a probe's deadline: look again until every node answers.
    const s = await eventually(async () => {
      const x = await statusJson(file);
      return x.nodes.every((n) => n.machineId !== null) ? x : undefined;
    }, 180_000);
    expect(s.nodes.map((n) => n.machineId)).toEqual(first.nodes.map((n) => n.machineId));
    expect(s.cluster.etcdMembers).toBe(3);
  });

  it('the units of the node that went down moved to the others, still apart, all running', async () => {
    const lost = placedBefore.rows.filter((r) => r.node === destroyed).map((r) => r.unit);
    expect(lost.length).toBeGreaterThan(0); // each node ran one of the three units
    const u = await unitsNow();
    for (const unit of lost) {
      expect(u.on(unit), unit).toHaveLength(1);
      expect(u.on(unit)[0], unit).not.toBe(destroyed);
    }
    // The others stayed where they were.
    for (const r of placedBefore.rows.filter((x) => x.node !== destroyed))
      expect(u.on(r.unit)).toEqual([r.node]);
    expect(u.on('apache.1.service')[0]).not.toBe(u.on('apache.2.service')[0]);
    for (const r of u.rows) expect([r.unit, r.active, r.sub]).toEqual([r.unit, 'active', 'running']);
    // Nothing of them was left behind on the node that came back.
    const left = await lab([
      'ssh',
      destroyed!,
      '-f',
      file,
      '--',
      'sh',
      '-c',
      'ls /etc/systemd/system/*.service 2>/dev/null; true',
    ]);
    for (const unit of lost) expect(left.stdout).not.toContain(unit);
  });

  it('a drill on a node the lab does not have: exit 2, no call that changes anything', async () => {
    for (const args of [['kill', 'coreos9'], ['link', 'coreos9', 'down'], ['pause']]) {
      const r = await shimmed([...args, '-f', file]);
      expect(r.r.code, `${args.join(' ')}: ${r.r.stderr}`).toBe(2);
      expect(mutating(r.calls)).toEqual([]);
    }
  });

  it("lab link LEADER down: status shows libvirt's link state within 5 s, the two others elect a new leader; lab up sets that link up and changes nothing else", async () => {
    const leader = await eventually(
      async () => (await statusJson(file)).cluster.etcdLeader ?? undefined,
      60_000,
    );
    const domain = `${NAME}-${leader}`;
    const mac = await macOf(domain);
    const down = await shimmed(['link', leader, 'down', '-f', file]);
    expect(down.r.code, down.r.stderr).toBe(0);
    const t0 = performance.now();
    expect(mutating(down.calls)).toEqual([
      `domif-setlink --domain ${domain} --interface ${mac} --state down`,
    ]);
    expect((await virsh(['domif-getlink', domain, mac])).trim()).toMatch(/ down$/);
    timings.linkSeen = await seenWithin5s(t0, (s) => stateOf(s, leader).link === 'down');
    const after = await eventually(
      async () => {
        const x = await statusJson(file);
        return x.cluster.quorum && x.cluster.etcdLeader && x.cluster.etcdLeader !== leader ? x : undefined;
      },
      120_000,
      1000,
    );
    timings.linkNewLeader = performance.now() - t0;
    expect(stateOf(after, leader)).toMatchObject({ state: 'running', link: 'down', machineId: null });

    const up = await shimmed(['up', '-f', file, '--json']);
    expect(up.r.code, up.r.stderr).toBe(0);
    expect(mutating(up.calls)).toEqual([`domif-setlink --domain ${domain} --interface ${mac} --state up`]);
    const result = JSON.parse(up.r.stdout) as { nodes: { node: string; actions: string[] }[] };
    for (const n of result.nodes) expect(n.actions).toEqual(n.node === leader ? ['link-up'] : []);
    expect((await virsh(['domif-getlink', domain, mac])).trim()).toMatch(/ up$/);
    const healthy = await healthyAgain();
    expect(stateOf(healthy, leader).link).toBe('up');
  });

  it('lab pause shows paused within 5 s; lab resume runs it on and sets its clock; a pause is undone by lab up too', async () => {
    const s0 = await statusJson(file);
    const node = s0.nodes.find((n) => n.name !== s0.cluster.etcdLeader)!.name;
    const domain = `${NAME}-${node}`;
    const pause = await shimmed(['pause', node, '-f', file]);
    expect(pause.r.code, pause.r.stderr).toBe(0);
    expect(mutating(pause.calls)).toEqual([`suspend --domain ${domain}`]);
    timings.pauseSeen = await seenWithin5s(performance.now(), (s) => stateOf(s, node).state === 'paused');
    expect((await virsh(['domstate', domain])).trim()).toBe('paused');

    const res = await shimmed(['resume', node, '-f', file]);
    expect(res.r.code, res.r.stderr).toBe(0);
    expect(mutating(res.calls)).toEqual([`resume --domain ${domain}`, `domtime --domain ${domain} --now`]);
    timings.resumeSeen = await seenWithin5s(performance.now(), (s) => stateOf(s, node).state === 'running');
    // The guest's clock is the host's again (the agent set it), to within a few seconds.
    const date = await lab(['ssh', node, '-f', file, '--', 'date', '+%s']);
    expect(date.code, date.stderr).toBe(0);
    expect(Math.abs(Number(date.stdout.trim()) - Date.now() / 1000)).toBeLessThan(5);

    expect((await lab(['pause', node, '-f', file])).code).toBe(0);
    const up = await shimmed(['up', '-f', file]);
    expect(up.r.code, up.r.stderr).toBe(0);
    expect(mutating(up.calls)).toEqual([`resume --domain ${domain}`, `domtime --domain ${domain} --now`]);
    await healthyAgain();
  });

  // Checkpoints, on this lab rather than one booted for them: what a boot of it costs
  // (timings.up) is what they save the suite.
  let savedAt = 0;
  it('checkpoint save, a write, restore: the write is gone, the cluster healthy, clocks right, and up changes nothing', async () => {
    const etcdctl = (node: string, ...args: string[]) =>
      lab(['ssh', node, '-f', file, '--', 'env', 'ETCDCTL_API=3', 'etcdctl', ...args]);
    const get = async (node: string, key: string) => {
      const r = await etcdctl(node, 'get', '--print-value-only', key);
      ok(r);
      return r.stdout.trim();
    };
    ok(await etcdctl('coreos1', 'put', '/ck/before', 'kept'));
    const save = await shimmed(['checkpoint', 'save', 'base', '-f', file]);
    ok(save.r);
    timings.checkpointSave = save.r.ms;
    savedAt = Date.now();
    // Every node paused, snapshotted and resumed, once each; all running after.
    for (const verb of ['suspend', 'snapshot-create', 'resume'])
      expect(verbCount(save.calls, verb), verb).toBe(3);
    expect([...(await domainStates(NAME)).values()]).toEqual(['running', 'running', 'running']);
    const listed = await checkpointList(file);
    expect(listed.checkpoints.map((c) => [c.name, c.stale, c.nodes])).toEqual([
      ['base', [], ['coreos1', 'coreos2', 'coreos3']],
    ]);
    expect(listed.checkpoints[0]!.sizeBytes).toBeGreaterThan(100 * 1024 ** 2);
    ok(await etcdctl('coreos2', 'put', '/ck/after', 'gone'));
    expect(await get('coreos3', '/ck/after')).toBe('gone');
    // Let the guests' clocks run ahead of the checkpoint, so that a clock left unset shows.
    await new Promise((r) => setTimeout(r, Math.max(0, 8000 - (Date.now() - savedAt))));

    const restore = await shimmed(['checkpoint', 'restore', 'base', '-f', file]);
    ok(restore.r);
    timings.checkpointRestore = restore.r.ms;
    process.stderr.write(
      `\nCHECKPOINT: restore to healthy ${(restore.r.ms / 1000).toFixed(1)} s against ${((timings.up ?? 0) / 1000).toFixed(1)} s for lab up of this lab from nothing: ${(((timings.up ?? 0) - restore.r.ms) / 1000).toFixed(1)} s saved each time a test restores rather than boots\n`,
    );
    expect(domainsOf(restore.calls, 'snapshot-revert').sort()).toEqual([
      `${NAME}-coreos1`,
      `${NAME}-coreos2`,
      `${NAME}-coreos3`,
    ]);
    expect(verbCount(restore.calls, 'resume')).toBe(3);
    expect(restore.r.stdout).toMatch(/restored from checkpoint base/);
    // lab ssh works at once (the pinned keys are the checkpoint's), the data is as saved.
    expect(await get('coreos2', '/ck/after')).toBe('');
    expect(await get('coreos3', '/ck/before')).toBe('kept');
    const s = await statusJson(file);
    expect(s.cluster).toMatchObject({ quorum: true, etcdMembers: 3, agreed: true });
    expect(s.nodes.map((n) => n.etcd?.state).sort()).toEqual(['follower', 'follower', 'leader']);
    expect((s as { restored?: { checkpoint: string } }).restored?.checkpoint).toBe('base');
    for (const node of ['coreos1', 'coreos2', 'coreos3']) {
      const t0 = Date.now() / 1000;
      const r = await lab(['ssh', node, '-f', file, '--', 'date', '+%s.%N']);
      const t1 = Date.now() / 1000;
      ok(r);
      const guest = Number(r.stdout.trim());
      expect(guest, `${node}'s clock`).toBeGreaterThan(t0 - 2);
      expect(guest, `${node}'s clock`).toBeLessThan(t1 + 2);
    }
    const again = await shimmed(['up', '-f', file]);
    ok(again.r);
    expect(mutating(again.calls)).toEqual([]);
  });

  it('checkpoint restore refuses an etcd member alone, and a Labfile that changed since without --force, touching nothing', async () => {
    const member = await shimmed(['checkpoint', 'restore', 'base', 'coreos2', '-f', file]);
    expect(member.r.code).toBe(1);
    expect(member.r.stderr).toMatch(/coreos2 is an etcd member.*etcd-io\/etcd#10254/);
    expect(mutating(member.calls)).toEqual([]);
    const text = readFileSync(file, 'utf8');
    writeFileSync(
      file,
      text.replace('{ name: coreos1, ip: 10.52.0.52 }', '{ name: coreos1, ip: 10.52.0.52, cpus: 2 }'),
    );
    try {
      const drift = await shimmed(['checkpoint', 'restore', 'base', '-f', file]);
      expect(drift.r.code).toBe(1);
      expect(drift.r.stderr).toMatch(/older definition: coreos1: 1 vCPUs then, 2 in the Labfile/);
      expect(mutating(drift.calls)).toEqual([]);
    } finally {
      writeFileSync(file, text);
    }
  });

  it('SIGKILL at each step of checkpoint save and restore: the next command converges, no half checkpoint is offered', async () => {
    const domains = (await domainStates(NAME)).size;
    // Killed with every node paused: no handler of the save runs, but its guard (a process
    // of its own, lab __pause-guard) sees it gone, resumes the nodes and sets their clocks.
    const paused = await lab(['checkpoint', 'save', 'k1', '-f', file], {
      env: { LAB_FAILPOINT: 'checkpoint-after-suspend' },
    });
    expect(paused.stderr).toContain('failpoint checkpoint-after-suspend: SIGKILL');
    const t0 = Date.now();
    let states = [...(await domainStates(NAME)).values()];
    while (states.some((st) => st !== 'running') && Date.now() - t0 < 30_000) {
      await new Promise((r) => setTimeout(r, 200));
      states = [...(await domainStates(NAME)).values()];
    }
    expect(states).toEqual(Array<string>(domains).fill('running'));
    process.stderr.write(
      `\nCHECKPOINT: a save killed with the nodes paused: running again ${((Date.now() - t0) / 1000).toFixed(1)} s after\n`,
    );
    expect((await checkpointList(file)).checkpoints.map((c) => c.name)).toEqual(['base']);
    // Nothing left for the next command to do.
    const next = await shimmed(['up', '-f', file]);
    ok(next.r);
    expect(mutating(next.calls)).toEqual([]);
    // Killed after one snapshot, and before the record: snapshots that no list offers,
    // deleted by the next save.
    for (const [point, name] of [
      ['checkpoint-after-snapshot:coreos2', 'k2'],
      ['checkpoint-before-record', 'k3'],
    ] as const) {
      const killed = await lab(['checkpoint', 'save', name, '-f', file], { env: { LAB_FAILPOINT: point } });
      expect(killed.stderr).toContain(`failpoint ${point}: SIGKILL`);
      expect((await checkpointList(file)).checkpoints.map((c) => c.name)).toEqual(['base']);
      ok(await lab(['up', '-f', file]));
    }
    expect(await snapshotsOf(`${NAME}-coreos2`)).toContain('lab-ckpt-k3');
    ok(await lab(['checkpoint', 'save', 'k4', '-f', file]));
    for (const n of ['coreos1', 'coreos2', 'coreos3'])
      expect((await snapshotsOf(`${NAME}-${n}`)).sort()).toEqual(['lab-ckpt-base', 'lab-ckpt-k4']);
    ok(await lab(['checkpoint', 'delete', 'k4', '-f', file]));
    for (const n of ['coreos1', 'coreos2', 'coreos3'])
      expect(await snapshotsOf(`${NAME}-${n}`)).toEqual(['lab-ckpt-base']);
    // Killed mid-revert: the restore, again, brings the whole lab back.
    const reverting = await lab(['checkpoint', 'restore', 'base', '-f', file], {
      env: { LAB_FAILPOINT: 'restore-after-revert:coreos1' },
    });
    expect(reverting.stderr).toContain('failpoint restore-after-revert:coreos1: SIGKILL');
    // Nodes from two instants: lab up refuses them, touching nothing; the restore finishes.
    const refused = await shimmed(['up', '-f', file]);
    expect(refused.r.code).toBe(1);
    expect(refused.r.stderr).toMatch(/a restore of checkpoint base .* was cut short/);
    expect(refused.r.stderr).toContain('hint: lab checkpoint restore base finishes it');
    expect(mutating(refused.calls)).toEqual([]);
    ok(await lab(['checkpoint', 'restore', 'base', '-f', file]));
    // Killed after the resume, before the clocks and the wait: the restore again finishes it.
    const waiting = await lab(['checkpoint', 'restore', 'base', '-f', file], {
      env: { LAB_FAILPOINT: 'restore-after-resume' },
    });
    expect(waiting.stderr).toContain('failpoint restore-after-resume: SIGKILL');
    expect((await lab(['up', '-f', file])).code).toBe(1);
    ok(await lab(['checkpoint', 'restore', 'base', '-f', file]));
    ok(await lab(['up', '-f', file]));
    expect((await statusJson(file)).cluster).toMatchObject({ quorum: true, etcdMembers: 3, agreed: true });
  });

  /**
   * Each node was asked `verb` at least once, coreos2 (whose reply the shim lost) again;
   * a node asked more than once is exactly one whose call lab said it lost the connection
   * during (a call in flight when libvirtd went away, asked until libvirtd was back).
   */
  const askedAgain = (calls: string[], verb: string, stderr: string) => {
    const nodes = ['coreos1', 'coreos2', 'coreos3'];
    const per = (n: string) => domainsOf(calls, verb).filter((d) => d === `${NAME}-${n}`).length;
    for (const n of nodes) expect(per(n), n).toBeGreaterThanOrEqual(1);
    expect(per('coreos2'), 'coreos2').toBeGreaterThanOrEqual(2);
    const lost =
      stderr.match(new RegExp(`lost the connection to libvirt during virsh ${verb}\\b`, 'g')) ?? [];
    expect(lost.length).toBe(nodes.filter((n) => per(n) > 1).length);
  };

  it('libvirtd restarts during checkpoint save and during restore, each reply lost: both ride it out and say so; the checkpoint is whole and the lab healthy (R24)', async () => {
    const pidOf = () => readFileSync(path.join(process.env.STATE ?? '', 'libvirtd.pid'), 'utf8').trim();
    const marks = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-ck-marks-'));
    const pid0 = pidOf();
    const save = await shimmed(['checkpoint', 'save', 'r24', '-f', file], {
      VIRSH_SHIM_RESTART_AFTER: `snapshot-create:${NAME}-coreos2`,
      VIRSH_SHIM_MARKS: marks,
    });
    ok(save.r);
    expect(readdirSync(marks)).toEqual(['restart-after-snapshot-create']);
    const pid1 = pidOf();
    expect(pid1).not.toBe(pid0);
    expect(save.r.stderr).toMatch(/lost the connection to libvirt during virsh snapshot-create/);
    // Asked again (counted by the shim), and the second answer, "already exists", was read
    // as done. The calls in flight at the restart were lost too: each is asked once more,
    // and said.
    askedAgain(save.calls, 'snapshot-create', save.r.stderr);
    expect([...(await domainStates(NAME)).values()]).toEqual(['running', 'running', 'running']);
    for (const n of ['coreos1', 'coreos2', 'coreos3'])
      expect((await snapshotsOf(`${NAME}-${n}`)).sort()).toEqual(['lab-ckpt-base', 'lab-ckpt-r24']);
    expect((await checkpointList(file)).checkpoints.map((c) => [c.name, c.stale])).toEqual([
      ['base', []],
      ['r24', []],
    ]);

    const put = await lab([
      'ssh',
      'coreos1',
      '-f',
      file,
      '--',
      'env',
      'ETCDCTL_API=3',
      'etcdctl',
      'put',
      '/ck/r24',
      'x',
    ]);
    ok(put);
    const restore = await shimmed(['checkpoint', 'restore', 'r24', '-f', file], {
      VIRSH_SHIM_RESTART_AFTER: `snapshot-revert:${NAME}-coreos2`,
      VIRSH_SHIM_MARKS: marks,
    });
    ok(restore.r);
    expect(readdirSync(marks).sort()).toEqual([
      'restart-after-snapshot-create',
      'restart-after-snapshot-revert',
    ]);
    expect(pidOf()).not.toBe(pid1);
    expect(restore.r.stderr).toMatch(/lost the connection to libvirt during virsh snapshot-revert/);
    askedAgain(restore.calls, 'snapshot-revert', restore.r.stderr);
    const got = await lab([
      'ssh',
      'coreos3',
      '-f',
      file,
      '--',
      'env',
      'ETCDCTL_API=3',
      'etcdctl',
      'get',
      '--print-value-only',
      '/ck/r24',
    ]);
    ok(got);
    expect(got.stdout.trim()).toBe('');
    expect((await statusJson(file)).cluster).toMatchObject({ quorum: true, etcdMembers: 3, agreed: true });
    const again = await shimmed(['up', '-f', file]);
    ok(again.r);
    expect(mutating(again.calls)).toEqual([]);
    ok(await lab(['checkpoint', 'delete', 'r24', '-f', file]));
  });

  it("restore --force past a changed definition brings the checkpoint's back; lab plan shows the Labfile's change again and up applies it", async () => {
    const planOf = async () => {
      const r = await lab(['plan', '--json', '-f', file]);
      ok(r);
      assertMatchesSchema('plan', JSON.parse(r.stdout));
      const p = JSON.parse(r.stdout) as { nodes: { node: string; actions: string[] }[] };
      return Object.fromEntries(p.nodes.map((n) => [n.node, n.actions]));
    };
    const memoryKiB = async (node: string) =>
      Number(
        /<memory unit='KiB'>(\d+)</.exec(await virsh(['dumpxml', '--inactive', `${NAME}-${node}`]))?.[1],
      );
    const text = readFileSync(file, 'utf8');
    const changed = text.replace(
      '{ name: coreos2, ip: 10.52.0.53 }',
      '{ name: coreos2, ip: 10.52.0.53, memory: 704MiB }',
    );
    expect(changed).not.toBe(text);
    writeFileSync(file, changed);
    try {
      expect(await planOf()).toEqual({ coreos1: [], coreos2: ['define'], coreos3: [] });
      ok(await lab(['up', '-f', file]));
      expect(await memoryKiB('coreos2')).toBe(704 * 1024);
      const refused = await shimmed(['checkpoint', 'restore', 'base', '-f', file]);
      expect(refused.r.code).toBe(1);
      expect(refused.r.stderr).toMatch(
        /older definition: coreos2: 768 MiB of memory then, 704 MiB in the Labfile/,
      );
      expect(mutating(refused.calls)).toEqual([]);
      ok(await lab(['checkpoint', 'restore', 'base', '--force', '-f', file]));
      // The checkpoint's definition is back, in libvirt: the plan shows the Labfile's again.
      expect(await memoryKiB('coreos2')).toBe(768 * 1024);
      expect(await planOf()).toEqual({ coreos1: [], coreos2: ['define'], coreos3: [] });
    } finally {
      writeFileSync(file, text);
    }
    expect(await planOf()).toEqual({ coreos1: [], coreos2: [], coreos3: [] });
  });

  it("lab down (the quick start's last line, as typed) leaves no domain, network, overlay or seed behind, and a second down is fine", async () => {
    const r = await typed(quickStart.at(-1) ?? 'lab down');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('removed 3 domain(s)');
    expect(await inventory(NAME)).toEqual(before);
    const again = await lab(['down', '-f', file]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('removed 0 domain(s)');
  });
});
