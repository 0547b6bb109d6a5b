// Every read command's --json keeps to its schema in schemas/cli. validate and image list
// run through the CLI (from source) as a user runs them; status, units and checkpoint list
// are built by the functions their commands call, from fakes of libvirt, the guests and the
// lab folder; plan and machines by planJson() and machinesJson(), as their commands do.
// The e2e suite checks them against a running lab. Each schema is shown to refuse a real
// output with one field changed.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invalidJson, validJson } from '../../../cmd/commands/validate.js';
import { listCheckpoints } from '../../../lab/apply/checkpoints.js';
import type { LabContext } from '../../../lab/apply/context.js';
import { labStatusOf } from '../../../lab/apply/monitor.js';
import { emptyNodeStatus, nodeStatusFrom, status, type LabStatus } from '../../../lab/apply/status.js';
import { unitRows } from '../../../lab/apply/units.js';
import { clusterVerdict } from '../../../lab/apply/verdict.js';
import { LabfileError } from '../../../lab/errors.js';
import { probeNode } from '../../../lab/guest/probes/index.js';
import type { ObservedUnit } from '../../../lab/guest/units.js';
import type { LabSpec } from '../../../lab/plan/model.js';
import { memberChanges, planLab, type ObservedNode } from '../../../lab/plan/plan.js';
import { machinesJson, planJson } from '../../../lab/plan/plan-json.js';
import { loadLab } from '../../../lab/spec/load.js';
import { snapshotName, writeCheckpoints, type CheckpointBook } from '../../../lab/store/checkpoints.js';
import { LabDir } from '../../../lab/store/lab-dir.js';
import { badCases } from '../../fixtures/bad/cases.js';
import { assertMatchesSchema, cliSchema, cliSchemaNames } from '../../support/json-schema.js';
import { specFrom } from '../../support/lab-spec.js';
import { healthy, leaderLost } from '../../ui/fixtures/snapshots.js';
import { fakeExec } from '../guest/probes/fake-exec.js';

const root = path.join(import.meta.dirname, '../../..');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-json-schemas-'));
const example = loadLab(path.join(root, 'Labfile.example.yaml')).lab;

/** A document as the command prints it (JSON.stringify): what a fresh copy of it parses to. */
const printed = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** The CLI from source, in a folder of its own with its own (empty) state and cache. */
async function lab(args: string[], env: Record<string, string> = {}) {
  const home = mkdtempSync(path.join(scratch, 'run-'));
  const r = await execa(process.execPath, ['--import', 'tsx', path.join(root, 'cmd/lab.ts'), ...args], {
    reject: false,
    stdin: 'ignore',
    cwd: root,
    timeout: 60_000,
    env: {
      HOME: home,
      LAB_STATE_DIR: path.join(home, 'state'),
      LAB_CACHE_DIR: path.join(home, 'cache'),
      NO_COLOR: '1',
      ...env,
    },
  });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the schemas', () => {
  it('are one per read command, each compiling under strict ajv', () => {
    expect(cliSchemaNames()).toEqual([
      'checkpoint-list',
      'doctor',
      'drill',
      'exec',
      'image-list',
      'list',
      'machines',
      'plan',
      'status',
      'units',
      'validate',
    ]);
    for (const name of cliSchemaNames()) expect(() => cliSchema(name), name).not.toThrow();
  });

  it('say where a document goes wrong', () => {
    expect(() => assertMatchesSchema('machines', [{ machine: 'x', ip: '10.0.0.1', node: 'a' }])).toThrow(
      /^not as schemas\/cli\/machines\.json says:\n {2}\/0 must have required property 'metadata'\n {2}\/0\/machine must match pattern/,
    );
  });
});

describe('lab validate --json, through the CLI', { timeout: 60_000 }, () => {
  it('a valid Labfile: exit 0, the lab in short, nothing on stderr', async () => {
    const r = await lab(['validate', '--json', '-f', 'Labfile.example.yaml']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    assertMatchesSchema('validate', doc);
    expect(doc).toMatchObject({
      ok: true,
      file: 'Labfile.example.yaml',
      lab: 'coreos-lab',
      network: { mode: 'managed', cidr: '10.52.0.0/24' },
      warnings: [],
    });
    expect(doc.nodes).toEqual([
      { name: 'coreos1', ip: '10.52.0.52', template: 'debian-12-lab' },
      { name: 'coreos2', ip: '10.52.0.53', template: 'debian-12-lab' },
      { name: 'coreos3', ip: '10.52.0.54', template: 'debian-12-lab' },
    ]);
    // The schema refuses it with one field changed, or with the other branch's field.
    expect(() => assertMatchesSchema('validate', { ...doc, nodes: 3 })).toThrow(/\/nodes must be array/);
    expect(() => assertMatchesSchema('validate', { ...doc, issues: [] })).toThrow(/must NOT have additional/);
    expect(() => assertMatchesSchema('validate', { ...doc, ok: false })).toThrow();
  });

  it('a bad Labfile: exit 2, every issue located on stdout, nothing on stderr', async () => {
    const r = await lab(['validate', '--json', '-f', 'test/fixtures/bad/ip-outside.yaml']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(2);
    const doc = JSON.parse(r.stdout) as { issues: { line: number; column: number }[] };
    assertMatchesSchema('validate', doc);
    expect(doc).toEqual({
      ok: false,
      file: 'test/fixtures/bad/ip-outside.yaml',
      issues: [
        {
          file: 'test/fixtures/bad/ip-outside.yaml',
          line: 10,
          column: 21,
          message: 'ip 192.168.3.11 of n2 is not a host address in network.cidr 192.168.2.0/24',
        },
      ],
    });
    const bad = printed(doc);
    bad.issues[0]!.column = 0; // a column without a line: only line 0 has column 0
    expect(() => assertMatchesSchema('validate', bad)).toThrow(/\/issues\/0\/column must be >= 1/);
  });

  it('a missing Labfile is an issue of the whole file (line and column 0)', async () => {
    const r = await lab(['validate', '--json', '-f', '/nonexistent/Labfile.yaml']);
    expect(r.exitCode).toBe(2);
    assertMatchesSchema('validate', JSON.parse(r.stdout));
    expect(JSON.parse(r.stdout)).toMatchObject({ issues: [{ line: 0, column: 0, message: 'no such file' }] });
  });

  it('the text output is as before', async () => {
    const r = await lab(['validate', '-f', 'Labfile.example.yaml']);
    expect(r.stdout).toBe(
      // execa leaves out the last newline.
      'Labfile.example.yaml: valid: lab coreos-lab, 3 node(s), managed network 10.52.0.0/24',
    );
  });
});

describe('lab validate --json, in process', () => {
  it.each(badCases().map((c) => [c.name, c.labfile] as const))('%s keeps to the schema', (_, file) => {
    const err = (() => {
      try {
        loadLab(file);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(LabfileError);
    assertMatchesSchema('validate', printed(invalidJson(file, (err as LabfileError).issues)));
  });

  it('a repaired cloud-config key is a located warning', () => {
    const spec = specFrom(
      'name: c\ntemplate: flatcar-stable-cloudconfig\nnetwork: { mode: bridge, bridge: br0, cidr: 10.9.0.0/24 }\n' +
        'nodes:\n  - { name: a, ip: 10.9.0.2 }\ncloudConfig: { coreos: { update: { reboot-strategy: "off" } } }\n',
    );
    const doc = printed(validJson('L', spec));
    assertMatchesSchema('validate', doc);
    expect(doc).toMatchObject({ warnings: [{ file: 'L', line: 6, column: 36 }] });
  });
});

describe('lab image list --json, through the CLI', { timeout: 60_000 }, () => {
  it('an empty cache: every template missing (or unavailable), no leftovers', async () => {
    const cache = mkdtempSync(path.join(scratch, 'cache-'));
    const r = await lab(['image', 'list', '--json'], { LAB_CACHE_DIR: cache });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout) as { cache: string; images: { status: string }[]; leftovers: unknown[] };
    assertMatchesSchema('image-list', doc);
    expect(doc.cache).toBe(cache);
    expect(doc.leftovers).toEqual([]);
    expect(new Set(doc.images.map((i) => i.status))).toEqual(new Set(['missing', 'unavailable']));
    const bad = printed(doc);
    bad.images[0]!.status = 'cached'; // cached says false
    expect(() => assertMatchesSchema('image-list', bad)).toThrow(/\/images\/0\/status must be equal to one/);
  });

  it('a cache with an image, a build and a download cut short, and an entry no template names', async () => {
    const cache = mkdtempSync(path.join(scratch, 'cache-'));
    const put = (file: string, bytes: number) => {
      mkdirSync(path.dirname(path.join(cache, file)), { recursive: true });
      writeFileSync(path.join(cache, file), Buffer.alloc(bytes));
    };
    put('flatcar-stable/disk.qcow2', 4096);
    put('flatcar-stable/.quarantine/flatcar_production_qemu_image.img.part', 100);
    put('.debian-12-lab.build.a1B2c3/rootfs/etc/hostname', 10);
    put('old-image/disk.qcow2', 1000);
    const r = await lab(['image', 'list', '--json'], { LAB_CACHE_DIR: cache });
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      images: { template: string; cached: boolean; bytes: number }[];
      leftovers: { kind: string; bytes: number }[];
    };
    assertMatchesSchema('image-list', doc);
    expect(doc.images.find((i) => i.template === 'flatcar-stable')).toMatchObject({
      cached: true,
      status: 'cached',
      bytes: 4196,
    });
    expect(doc.leftovers.map((l) => [l.kind, l.bytes])).toEqual([
      ['build-work', 10],
      ['partial-download', 100],
      ['unknown-entry', 1000],
    ]);
    const bad = printed(doc);
    bad.leftovers[0]!.kind = 'leftover';
    expect(() => assertMatchesSchema('image-list', bad)).toThrow(/\/leftovers\/0\/kind/);
  });
});

/** A context for the commands' own functions: a fake virsh, the lab folder in a temp state dir. */
function context(spec: LabSpec, virsh: object): LabContext {
  return { lab: spec, dir: new LabDir(spec.name), virsh, onEvent: () => undefined } as unknown as LabContext;
}

describe('the JSON of the commands that need a lab, from their own functions', () => {
  const saved = process.env.LAB_STATE_DIR;
  beforeAll(() => {
    process.env.LAB_STATE_DIR = mkdtempSync(path.join(scratch, 'state-'));
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.LAB_STATE_DIR;
    else process.env.LAB_STATE_DIR = saved;
  });

  // One probe of a node that runs etcd (a follower), docker and fleet, as the guest answers.
  const ETCDCTL =
    'env ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 --dial-timeout 2s --command-timeout 3s';
  const guest = fakeExec({
    'cat /etc/machine-id': { stdout: `${example.nodes[1]!.machineId}\n` },
    [`${ETCDCTL} endpoint status -w json`]: {
      stdout:
        '[{"Endpoint":"http://127.0.0.1:2379","Status":{"header":{"member_id":10276657743932975437,"raft_term":4},"version":"3.4.23","dbSize":20480,"leader":10276657743932975438,"raftIndex":9,"raftTerm":4}}]',
    },
    [`${ETCDCTL} member list -w json`]: {
      stdout:
        '{"members":[{"ID":10276657743932975437,"name":"coreos2","peerURLs":["http://10.52.0.53:2380"]},{"ID":10276657743932975438,"name":"coreos1"},{"ID":10276657743932975439}]}',
    },
    'sh -c command -v docker': { stdout: '/usr/bin/docker\n' },
    'sudo -n docker info --format {{json .}}': {
      stdout: '{"ServerVersion":"20.10.24+dfsg1","ContainersRunning":2}\n',
    },
    'sh -c command -v fleetctl': { stdout: '/usr/bin/fleetctl\n' },
    'fleetctl list-machines -l': {
      stdout:
        'MACHINE\t\t\t\t\tIP\t\tMETADATA\ndeb19cd2e7a54c8a9b5d1e0f3c6a7b82\t10.52.0.53\tlab=coreos-lab,node=coreos2\n',
    },
    'fleetctl list-units -l': {
      stdout:
        'UNIT\t\t\tLOAD\tACTIVE\tSUB\tDESC\t\t\tMACHINE\nhello.service\t\tloaded\tactive\trunning\tMyApp\t\t\tdeb19cd2.../10.52.0.53\napache.1.service\t-\t-\t-\tMy Apache Frontend\t-\n',
    },
    'cat /proc/loadavg /proc/meminfo': {
      stdout: '0.52 0.58 0.59 1/123 4567\nMemTotal:  998012 kB\nMemAvailable:  612345 kB\n',
    },
  });

  /** coreos1 shut off, coreos2 probed (above), coreos3 running but not reached. */
  async function probedStatus(): Promise<LabStatus> {
    const [n1, n2, n3] = [0, 1, 2].map((i) => example.nodes[i]!);
    const h = await probeNode(guest, { services: n2!.services, fleet: true, load: true });
    const nodes = [
      emptyNodeStatus(n1!, 'shut off'),
      nodeStatusFrom(n2!, 'running', h),
      { ...emptyNodeStatus(n3!, 'running'), lastError: 'unreachable: connect ETIMEDOUT 10.52.0.54:22' },
    ];
    return { lab: example.name, uri: 'qemu:///system', nodes, cluster: clusterVerdict(example, nodes) };
  }

  it('status: status() over a fake virsh, with the restore the lab folder records', async () => {
    const ctx = context(example, {
      uri: 'qemu:///system',
      listDomainStates: () =>
        Promise.resolve(
          new Map([
            ['coreos-lab-coreos1', 'running' as const],
            ['coreos-lab-coreos2', 'paused' as const],
          ]),
        ),
      // virsh domif-getlink of the running node: its link is up.
      call: (args: string[]) => Promise.resolve({ stdout: `${args.at(-1)} up\n`, stderr: '', exitCode: 0 }),
    });
    const book: CheckpointBook = {
      version: 1,
      checkpoints: {},
      restored: { name: 'before-upgrade', at: '2026-01-02T03:04:05.678Z', nodes: ['coreos2'] },
    };
    mkdirSync(ctx.dir.private, { recursive: true });
    await writeCheckpoints(ctx.dir.private, book);
    const s = printed(await status(ctx));
    assertMatchesSchema('status', s);
    // No keys in the lab folder: the running node says so, the others are as libvirt says.
    expect(s.nodes.map((n) => [n.state, n.lastError !== null])).toEqual([
      ['running', true],
      ['paused', false],
      ['missing', false],
    ]);
    expect(s.nodes.map((n) => n.link)).toEqual(['up', null, null]);
    expect(s.restored).toEqual({
      checkpoint: 'before-upgrade',
      at: '2026-01-02T03:04:05.678Z',
      nodes: ['coreos2'],
    });
    const bad = printed(s);
    bad.restored!.at = 'yesterday';
    expect(() => assertMatchesSchema('status', bad)).toThrow(/\/restored\/at must match format "date-time"/);
    rmSync(ctx.dir.root, { recursive: true });
  });

  it('status: the nodes as a probe of their guests finds them (etcd, docker, fleet, load)', async () => {
    const s = printed(await probedStatus());
    assertMatchesSchema('status', s);
    expect(s.nodes[1]!.fleet).toMatchObject({ machines: [{ truncated: false }], units: [{}, {}] });
    expect(s.nodes[1]!.etcd).toMatchObject({ state: 'follower', members: 3 });
    const bad = printed(s);
    bad.nodes[1]!.machineId = bad.nodes[1]!.machineId!.toUpperCase();
    expect(() => assertMatchesSchema('status', bad)).toThrow(/\/nodes\/1\/machineId/);
  });

  it('status --watch: each line is labStatusOf(the monitor snapshot) and its time', () => {
    for (const snap of [healthy, leaderLost]) {
      const line = { time: new Date(snap.now).toISOString(), ...labStatusOf(snap) };
      assertMatchesSchema('status', printed(line));
    }
    const bad = { time: new Date(healthy.now).toISOString(), ...printed(labStatusOf(healthy)) };
    bad.cluster.etcdMembers = 'three' as unknown as number;
    expect(() => assertMatchesSchema('status', bad)).toThrow(/\/cluster\/etcdMembers/);
  });

  it('machines: machinesJson() of the status', async () => {
    const s = await probedStatus();
    const machines = machinesJson(example.name, s.nodes);
    expect(machines).toHaveLength(1);
    assertMatchesSchema('machines', printed(machines));
    const bad = printed(machines);
    bad[0]!.metadata = `lab=${example.name}`;
    expect(() => assertMatchesSchema('machines', bad)).toThrow(/\/0\/metadata must match pattern/);
  });

  it('units: unitRows() of what the nodes have, placed or not', () => {
    const seen = (hash: string | undefined, active: string): ObservedUnit => ({
      name: 'hello.service',
      ...(hash ? { hash } : {}),
      load: 'loaded',
      active,
      sub: active === 'active' ? 'running' : 'dead',
      description: 'MyApp',
    });
    const rows = unitRows(
      example,
      new Map([
        ['coreos1', new Map([['hello.service', seen('a'.repeat(64), 'active')]])],
        ['coreos2', new Map([['hello.service', seen(undefined, 'inactive')]])],
      ]),
    );
    expect(rows.filter((r) => r.node).length).toBe(1);
    expect(rows.filter((r) => !r.node).length).toBeGreaterThan(0);
    assertMatchesSchema('units', printed(rows));
    const bad = printed(rows);
    delete bad.find((r) => r.node)!.machineId;
    expect(() => assertMatchesSchema('units', bad)).toThrow(
      /\/0 must have properties machineId, ip when property node is present/,
    );
  });

  it('plan: planJson() of planLab() and memberChanges()', () => {
    const [n1, n2] = example.nodes;
    const observed = new Map<string, ObservedNode>([
      [n1!.name, { state: 'running', owned: true, configHash: 'old', diskExists: true, seedExists: true }],
      [n2!.name, { state: 'shut off', owned: false, diskExists: false, seedExists: false }],
    ]);
    const desired = example.nodes.map((spec) => ({
      spec,
      configHash: `hash-${spec.name}`,
      type: 'qemu' as const,
    }));
    const leaving = [
      {
        node: 'coreos4',
        domain: 'coreos-lab-coreos4',
        state: 'running',
        ip: '10.52.0.55',
        files: ['/var/lib/lab/coreos-lab/disks/coreos4.qcow2'],
      },
    ];
    const plan = planLab(example, desired, observed, { exists: false, active: false }, leaving);
    const member = memberChanges(example, plan, observed);
    const states = new Map([...observed].map(([name, o]) => [name, o.state]));
    const doc = planJson({ lab: example.name, accelerator: 'qemu', plan, member, states });
    assertMatchesSchema('plan', printed(doc));
    expect(doc.nodes.map((n) => [n.node, n.actions[0], 'conflict' in n])).toEqual([
      ['coreos1', 'replace', false],
      ['coreos2', undefined, true],
      ['coreos3', 'create-disk', false],
    ]);
    expect(doc.leaving[0]).toMatchObject({
      member: 'leave',
      actions: ['leave-etcd', 'destroy', 'undefine', 'delete-files'],
    });
    const bad = printed(doc);
    bad.nodes[1]!.actions = ['start'];
    expect(() => assertMatchesSchema('plan', bad)).toThrow(
      /\/nodes\/1\/actions must NOT have more than 0 items/,
    );
  });

  it('checkpoint list: listCheckpoints() over the lab folder and a fake virsh', async () => {
    const ctx = context(example, {
      uri: 'qemu:///system',
      call: (argv: string[]) =>
        Promise.resolve({
          exitCode: 0,
          stdout: argv.includes('coreos-lab-coreos2') ? '' : `${snapshotName('one')}\n`,
        }),
    });
    mkdirSync(ctx.dir.disks, { recursive: true });
    mkdirSync(ctx.dir.private, { recursive: true });
    writeFileSync(ctx.dir.secretFile, `${'ab'.repeat(32)}\n`);
    const node = (spec: LabSpec['nodes'][number]) => {
      const disk = path.join(ctx.dir.disks, `${spec.name}.qcow2`);
      writeFileSync(disk, '');
      return {
        domain: spec.domain,
        uuid: spec.uuid,
        configHash: 'h',
        memoryMiB: spec.memoryMiB,
        vcpus: spec.cpus,
        diskIno: statSync(disk).ino,
        stateBytes: 300 * 1024 ** 2,
      };
    };
    const [n1, n2, n3] = example.nodes;
    await writeCheckpoints(ctx.dir.private, {
      version: 1,
      checkpoints: {
        one: {
          name: 'one',
          snapshot: snapshotName('one'),
          created: '2026-01-02T03:04:05.678Z',
          pausedMs: 812,
          labfileHash: example.labfileHash,
          secret: 'ab'.repeat(32),
          nodes: { [n1!.name]: node(n1!), [n2!.name]: node(n2!), [n3!.name]: node(n3!) },
        },
      },
      restored: { name: 'one', at: '2026-01-02T04:00:00.000Z' },
    });
    const doc = { lab: ctx.lab.name, ...(await listCheckpoints(ctx)) }; // as the command prints it
    assertMatchesSchema('checkpoint-list', printed(doc));
    expect(doc.checkpoints[0]).toMatchObject({
      nodes: ['coreos1', 'coreos2', 'coreos3'],
      sizeBytes: 900 * 1024 ** 2,
      stale: ['coreos2: libvirt has no snapshot lab-ckpt-one'],
    });
    const bad = printed(doc);
    bad.checkpoints[0]!.pausedMs = 812.5;
    expect(() => assertMatchesSchema('checkpoint-list', bad)).toThrow(
      /\/checkpoints\/0\/pausedMs must be integer/,
    );
    rmSync(ctx.dir.root, { recursive: true });
  });
});
