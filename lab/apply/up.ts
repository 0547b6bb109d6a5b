import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { HostError, LabError, NodeError, describeError } from '../errors.js';
import { NODE_STEPS } from '../events.js';
import { failpoint, pausepoint } from '../failpoint.js';
import { acquireLock, hostNetworksLockFile } from '../lock.js';
import { AgentClient, type GuestLink } from '../guest/agent.js';
import { GuestSession, waitForSsh } from '../guest/ssh.js';
import { pollUntil } from '../guest/wait.js';
import { probeNode, type NodeHealth } from '../guest/probes/index.js';
import { LOCAL_IMAGE, dockerRunCheck } from '../guest/probes/docker.js';
import { etcdGet, etcdPut, probeEtcd, type EtcdHealth } from '../guest/probes/etcd.js';
import { findDuplicateMachineIds } from '../guest/probes/machine-id.js';
import { overlaps, parseCidr } from '../plan/ipv4.js';
import type { NodeSpec } from '../plan/model.js';
import { planLab, type DesiredNode, type LabPlan, type NodePlan, type ObservedNode } from '../plan/plan.js';
import { canonicalJson, sha256 } from '../plan/resolve.js';
import { run } from '../providers/exec.js';
import { chooseAccelerator, hostRoutes, interfaceExists, isBridge } from '../providers/host.js';
import { ensureImage, imageLocation, type BaseImage } from '../providers/images.js';
import { writeSeedIso, findIsoTool } from '../providers/iso.js';
import { createOverlay, imageInfo } from '../providers/qemu-img.js';
import { Virsh, checkUriSafety } from '../providers/virsh.js';
import { renderDomainXml } from '../render/domain-xml.js';
import { renderNetworkXml } from '../render/network-xml.js';
import { renderProvisioning } from '../render/provisioning.js';
import type { DomainType, NodePaths, ProvisioningBundle } from '../render/types.js';
import { cacheRoot, writeAtomic } from '../state.js';
import { readState, StateWriter, STATE_VERSION, type LabState, type NodeStep } from '../state-file.js';
import { mapLimit, nodeKeys, sshTargetFor, type LabContext } from './context.js';
import { checkHostPaths } from './host-paths.js';
import { findForeignDomains, observeNodes } from './observe.js';
import { convergeUnits, type UnitsResult } from './units.js';

export interface NodeResult {
  node: string;
  ok: boolean;
  actions: string[];
  /** Step that failed and why. */
  failedStep?: string;
  error?: string;
  health?: NodeHealth;
  /** False under `--no-wait`: the node was started, its SSH and services not awaited. */
  waited?: boolean;
}

export interface UpResult {
  ok: boolean;
  accelerator: DomainType;
  changed: boolean;
  nodes: NodeResult[];
  cluster: {
    etcdLeader?: string;
    etcdMembers?: number;
    replicated?: boolean;
    machineIdsDistinct?: boolean;
    problems: string[];
  };
  /** The lab's units after scheduling (absent when the lab has none and none were found). */
  units?: UnitsResult;
  ms: number;
}

export interface Desired {
  node: NodeSpec;
  paths: NodePaths;
  bundle: ProvisioningBundle;
  configHash: string;
  xml: string;
}

/** Deadlines per phase; TCG guests boot several times slower than KVM ones. */
export function deadlines(type: DomainType) {
  const scale = Number(process.env.LAB_TIMEOUT_SCALE ?? 1) || 1;
  const base =
    type === 'kvm' ? { sshMs: 300_000, servicesMs: 300_000 } : { sshMs: 900_000, servicesMs: 600_000 };
  return { sshMs: base.sshMs * scale, servicesMs: base.servicesMs * scale };
}

/** Checks the host before anything is created; throws HostError with a hint. */
export async function preflight(ctx: LabContext): Promise<void> {
  const unsafe = checkUriSafety(ctx.virsh.uri);
  if (unsafe && process.env.LAB_ALLOW_INSECURE_URI !== '1') {
    throw new HostError(`refusing libvirt URI ${ctx.virsh.uri}: ${unsafe}`, {
      hint: 'set LAB_ALLOW_INSECURE_URI=1 to allow it anyway',
    });
  }
  // Independent checks, at once: each is a process start.
  await Promise.all([
    ctx.virsh.check(),
    run('qemu-img', ['--version'], { timeoutMs: 10_000 }).catch((cause: unknown) => {
      throw new HostError('qemu-img is not installed', { hint: 'apt-get install qemu-utils', cause });
    }),
    findIsoTool(),
    checkNetworkHost(ctx),
  ]);
}

async function checkNetworkHost(ctx: LabContext): Promise<void> {
  const net = ctx.lab.network;
  if (net.mode === 'bridge') {
    if (!interfaceExists(net.bridge))
      throw new HostError(`bridge ${net.bridge} does not exist on this host`, {
        hint: `create it first (ip link add ${net.bridge} type bridge), or use network.mode: managed`,
      });
    if (!isBridge(net.bridge)) throw new HostError(`${net.bridge} exists but is not a bridge`);
  } else {
    await checkManagedNetworkFree(ctx);
  }
}

/** A managed CIDR must not collide with a route of the host or another libvirt network. */
async function checkManagedNetworkFree(ctx: LabContext): Promise<void> {
  const net = ctx.lab.network;
  const mine = parseCidr(net.cidr);
  const ours = (await ctx.virsh.listNetworks()).includes(net.libvirtName!);
  if (ours) return; // already created by this lab: its route is ours too
  if (interfaceExists(net.bridge))
    throw new HostError(`bridge ${net.bridge} already exists: another lab or tool uses it`, {
      hint: 'set network.bridge to another name',
    });
  for (const route of await hostRoutes()) {
    if (overlaps(mine, parseCidr(route))) {
      throw new HostError(`network.cidr ${net.cidr} collides with the host route ${route}`, {
        hint: 'choose another cidr for the managed network',
      });
    }
  }
  for (const name of await ctx.virsh.listNetworks()) {
    const xml = await ctx.virsh.netDumpXml(name);
    const m =
      xml &&
      /<ip[^>]*address=['"]([\d.]+)['"][^>]*(?:netmask=['"]([\d.]+)['"]|prefix=['"](\d+)['"])/.exec(xml);
    if (!m) continue;
    const prefix = m[3]
      ? Number(m[3])
      : m[2]!.split('.').reduce((a, o) => a + (Number(o).toString(2).match(/1/g)?.length ?? 0), 0);
    if (overlaps(mine, parseCidr(`${m[1]}/${prefix}`)))
      throw new HostError(
        `network.cidr ${net.cidr} collides with libvirt network ${name} (${m[1]}/${prefix})`,
      );
  }
}

/**
 * Bridge mode puts nodes on a real LAN: before a node is created, its address must not
 * answer already (another host has it). A TCP connection attempt to port 22 is enough:
 * a reply of any kind (accepted or refused) means the address is taken.
 */
async function checkAddressesFree(
  ctx: LabContext,
  plan: LabPlan,
  observed: Map<string, ObservedNode>,
): Promise<void> {
  if (ctx.lab.network.mode !== 'bridge') return;
  const fresh = ctx.lab.nodes.filter(
    (n) =>
      observed.get(n.name)?.state !== 'running' &&
      plan.nodes.some((p) => p.node === n.name && p.actions.includes('start')),
  );
  const taken = (
    await Promise.all(fresh.map(async (n) => ((await addressAnswers(n.ip, 1500)) ? n : undefined)))
  ).filter((n): n is NodeSpec => n !== undefined);
  if (taken.length > 0) {
    throw new HostError(
      `address already in use on ${ctx.lab.network.bridge}: ${taken.map((n) => `${n.ip} (${n.name})`).join(', ')}`,
      {
        hint: 'another machine answers there; pick free addresses in the Labfile',
      },
    );
  }
}

/** True when something answers a TCP connection to ip:22 (accepts or refuses) within the time. */
export function addressAnswers(ip: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port: 22, timeout: timeoutMs });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}

/** Renders what every node should be. */
export function desiredNodes(
  ctx: LabContext,
  secret: Buffer,
  images: Map<string, BaseImage>,
  type: DomainType,
): Desired[] {
  return ctx.lab.nodes.map((node) => {
    const image = images.get(node.templateRef)!;
    const paths = ctx.dir.nodePaths(node, {
      ...(image.kernel ? { kernel: image.kernel } : {}),
      ...(image.initrd ? { initrd: image.initrd } : {}),
    });
    const bundle = renderProvisioning({ lab: ctx.lab, node, keys: nodeKeys(ctx.lab, node, secret) });
    const configHash = sha256(canonicalJson(bundle.files));
    const xml = renderDomainXml({ lab: ctx.lab, node, paths, type, configHash });
    return { node, paths, bundle, configHash, xml };
  });
}

/** Reads the current state and computes the plan. No mutation except the lab folder and keys. */
export async function prepare(ctx: LabContext, opts: { buildImages: boolean; write: boolean }) {
  // A read-only caller (lab plan) gets throw-away keys when the lab has none yet.
  const secret = (await ctx.dir.secret(opts.write)) ?? randomBytes(32);
  if (opts.write) {
    await ctx.dir.ensure();
    await ctx.dir.writeAccessFiles(ctx.lab, secret);
  }
  const images = new Map<string, BaseImage>();
  for (const node of ctx.lab.nodes) {
    if (images.has(node.templateRef)) continue;
    ctx.onEvent({ kind: 'node', node: node.name, step: 'image', status: 'start' });
    if (!opts.buildImages) images.set(node.templateRef, imageLocation(node.template));
    else
      images.set(
        node.templateRef,
        await ensureImage(node.template, {
          onEvent: ctx.onEvent,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        }),
      );
  }
  // Where each node's files are does not depend on the accelerator: read libvirt's
  // state while the accelerator is chosen.
  const paths = new Map(
    ctx.lab.nodes.map((node) => {
      const image = images.get(node.templateRef)!;
      return [
        node.name,
        ctx.dir.nodePaths(node, {
          ...(image.kernel ? { kernel: image.kernel } : {}),
          ...(image.initrd ? { initrd: image.initrd } : {}),
        }),
      ] as const;
    }),
  );
  const [accel, observed, network] = await Promise.all([
    chooseAccelerator(ctx.virsh, ctx.lab.accelerator),
    observeNodes(ctx, paths),
    managedNetworkState(ctx),
  ]);
  const desired = desiredNodes(ctx, secret, images, accel.type);
  const plan = planLab(
    ctx.lab,
    desired.map((d): DesiredNode => ({ spec: d.node, configHash: d.configHash, type: accel.type })),
    observed,
    network,
  );
  return { secret, images, accel, desired, observed, plan };
}

async function managedNetworkState(
  ctx: LabContext,
): Promise<{ exists: boolean; active: boolean } | undefined> {
  if (ctx.lab.network.mode !== 'managed') return undefined;
  const name = ctx.lab.network.libvirtName!;
  const exists = (await ctx.virsh.listNetworks()).includes(name);
  return { exists, active: exists && (await ctx.virsh.netIsActive(name)) };
}

export interface UpOptions {
  /** Nodes to re-create from a fresh overlay and seed (`lab reset NODE`). */
  reset?: string[];
  /**
   * Provision and start every node, then return without waiting for SSH or services
   * (`lab up --no-wait`; kcli's default, terraform-provider-libvirt without wait_for_lease):
   * `lab status` shows them come up, and the next `lab up` waits.
   */
  noWait?: boolean;
}

/** Creates or converges the lab, waits until every node is healthy. */
export async function up(ctx: LabContext, opts: UpOptions = {}): Promise<UpResult> {
  const started = performance.now();
  // Phase times for --debug: where a re-run spends its seconds.
  const phase = (name: string) =>
    ctx.onEvent({
      kind: 'log',
      level: 'debug',
      message: `phase ${name} done at ${((performance.now() - started) / 1000).toFixed(2)} s`,
    });
  // A domain with one of the lab's names that is not the lab's: refuse before anything
  // is written (keys, folders, disks), and never touch it. Looked up while the host is
  // checked; a host problem is the one reported.
  const [checked, looked] = await Promise.allSettled([
    Promise.all([
      preflight(ctx),
      checkHostPaths({
        labDir: ctx.dir.root,
        cacheDir: cacheRoot(),
        qemuIsOtherUser: /\/system(\?|$)/.test(ctx.virsh.uri),
        newNodes: ctx.lab.nodes.filter((n) => !existsSync(path.join(ctx.dir.disks, `${n.name}.qcow2`)))
          .length,
      }),
    ]),
    findForeignDomains(ctx),
  ]);
  if (checked.status === 'rejected') throw checked.reason;
  if (looked.status === 'rejected') throw looked.reason;
  const foreign = looked.value;
  if (foreign.length > 0)
    throw new HostError(
      `refusing to touch ${foreign.map((f) => f.domain).join(', ')}: ${foreign.length === 1 ? 'a domain' : 'domains'} with the name of ${foreign.map((f) => f.node).join(', ')} of lab ${ctx.lab.name} ${foreign.length === 1 ? 'exists' : 'exist'} without this lab's metadata`,
      { hint: 'lab never deletes what it did not create: rename or remove it yourself, or rename the lab' },
    );
  phase('preflight');
  // A lab folder this run creates is removed again when the run is refused before any
  // node is touched (an address in use on the LAN): a refused up leaves nothing.
  const newLab = !existsSync(ctx.dir.root);
  const { secret, images, accel, desired, plan, observed } = await prepare(ctx, {
    buildImages: true,
    write: true,
  });
  for (const name of opts.reset ?? []) {
    const p = plan.nodes.find((n) => n.node === name)!;
    p.actions = ['replace', 'create-disk', 'write-seed', 'define', 'start'];
    p.reasons = ['lab reset', 'fresh overlay', 'fresh seed', 'redefine', 'boot'];
  }
  phase('plan');
  if (accel.warning) ctx.onEvent({ kind: 'log', level: 'warn', message: accel.warning });
  // The network before the state file: a subnet another lab took since preflight is
  // refused here too, and that refusal leaves nothing either.
  await checkAddressesFree(ctx, plan, observed)
    .then(() => pausepoint('before-network', ctx.signal))
    .then(() => applyNetwork(ctx, plan))
    .catch(async (err: unknown) => {
      if (newLab) await rm(ctx.dir.root, { recursive: true, force: true });
      throw err;
    });
  const state = await openState(ctx, plan, desired);
  // Nodes an `up --no-wait` started that no run has waited for since: this run's first
  // look at them is their boot's (their units placed anew, the container check run).
  const unwaited = new Set(
    plan.nodes
      .filter((p) => p.actions.length === 0 && state.current.nodes[p.node]?.step === 'started')
      .map((p) => p.node),
  );
  const times = deadlines(accel.type);
  // Healthy nodes keep their SSH connection for the cluster checks: a handshake with an
  // emulated guest costs a second or more. Nodes that were already running are reached
  // through the lab's connection agent, which keeps connections open between commands.
  const sessions = new Map<string, GuestLink>();
  const agent = opts.noWait
    ? Promise.resolve(undefined)
    : AgentClient.get(ctx.dir.private, { start: true }).catch(() => undefined);
  let results: NodeResult[];
  let cluster: UpResult['cluster'];
  let units: UnitsResult;
  try {
    results = await mapLimit(desired, 8, (d) =>
      convergeNode(
        ctx,
        d,
        plan.nodes.find((p) => p.node === d.node.name)!,
        images,
        secret,
        times,
        sessions,
        agent,
        state,
        opts.noWait ?? false,
        unwaited.has(d.node.name),
      ),
    );
    phase('nodes');
    if (ctx.lab.units.length)
      ctx.onEvent({ kind: 'log', level: 'info', message: `units: scheduling ${ctx.lab.units.length}` });
    const restarted = new Set([
      ...plan.nodes.filter((p) => p.actions.includes('start')).map((p) => p.node),
      ...unwaited,
    ]);
    // The units need no etcd: they are placed while the cluster is checked.
    if (opts.noWait) {
      cluster = { problems: [] };
      units = { rows: [], changes: [], problems: [] };
    } else
      [cluster, units] = await Promise.all([
        checkCluster(ctx, desired, results, secret, sessions).finally(() => phase('cluster')),
        convergeUnits(ctx.lab, sessions, restarted, {
          deadlineMs: times.servicesMs,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        }).finally(() => phase('units')),
      ]);
    for (const c of units.changes)
      ctx.onEvent({
        kind: 'log',
        level: 'info',
        message: `${c.node}: units ${[
          c.written.length ? `written ${c.written.join(' ')}` : '',
          c.removed.length ? `removed ${c.removed.join(' ')}` : '',
          c.started.length ? `started ${c.started.join(' ')}` : '',
        ]
          .filter(Boolean)
          .join(', ')}`,
      });
  } finally {
    for (const s of sessions.values()) s.close();
    const a = await agent;
    // The next command finds the agent already connected to every node that answered.
    a?.warm(
      desired.filter((d) => sessions.has(d.node.name)).map((d) => sshTargetFor(ctx.lab, d.node, secret)),
    );
    a?.close();
  }
  await state.update((s) => {
    for (const r of results) {
      // A node --no-wait left as it was (no action, not looked at) keeps its step.
      if (r.waited === false && r.actions.length === 0) continue;
      s.nodes[r.node] = {
        ...s.nodes[r.node]!,
        step: !r.ok ? 'failed' : r.waited === false ? 'started' : 'healthy',
        ...(r.ok ? {} : { error: r.error ?? 'failed' }),
        updated: new Date().toISOString(),
      };
    }
  });
  const changed =
    plan.network.length > 0 || plan.nodes.some((n) => n.actions.length > 0) || units.changes.length > 0;
  return {
    ok: results.every((r) => r.ok) && cluster.problems.length === 0 && units.problems.length === 0,
    accelerator: accel.type,
    changed,
    nodes: results,
    cluster,
    ...(units.rows.length ? { units } : {}),
    ms: Math.round(performance.now() - started),
  };
}

/**
 * The lab's state file for this run: what exists is read from libvirt (the plan); the file
 * records how far each node got, written durably after every step. A damaged file is
 * never trusted: the backup, or libvirt, has the truth.
 */
async function openState(ctx: LabContext, plan: LabPlan, desired: Desired[]): Promise<StateWriter> {
  // Temp files of a writer that was killed before its rename.
  for (const f of await readdir(ctx.dir.private).catch(() => [] as string[]))
    if (/^state\.json\.\d+\.tmp$/.test(f)) await rm(path.join(ctx.dir.private, f), { force: true });
  const before = await readState(ctx.dir.stateFile);
  if (before.source === 'backup')
    ctx.onEvent({
      kind: 'log',
      level: 'warn',
      message: `${ctx.dir.stateFile} was damaged: using its backup; libvirt's metadata decides what exists`,
    });
  const net = ctx.lab.network;
  const now = new Date().toISOString();
  const state: LabState = {
    version: STATE_VERSION,
    serial: before.state?.serial ?? 0,
    lab: ctx.lab.name,
    uri: ctx.virsh.uri,
    updated: now,
    network: {
      mode: net.mode,
      bridge: net.bridge,
      ...(net.libvirtName ? { libvirtName: net.libvirtName } : {}),
      ...(net.mode === 'managed' ? { cidr: net.cidr } : {}),
    },
    nodes: Object.fromEntries(
      desired.map((d) => {
        const p = plan.nodes.find((n) => n.node === d.node.name)!;
        const prev = before.state?.nodes[d.node.name];
        const step: NodeStep = p.actions.length === 0 && prev ? prev.step : 'planned';
        return [
          d.node.name,
          {
            domain: d.node.domain,
            ip: d.node.ip,
            ...(prev?.configHash ? { configHash: prev.configHash } : {}),
            step,
            updated: now,
          },
        ];
      }),
    ),
  };
  const writer = new StateWriter(ctx.dir.stateFile, state);
  await writer.update(() => {});
  return writer;
}

/**
 * Creates or starts the lab's managed network under a host-wide lock (R13, R14): two labs
 * brought up at once must not both find one subnet or bridge free, so the check is made
 * again, under the lock, right before the define. A network this run defined and could
 * not start is undefined again: a refused up leaves nothing.
 */
async function applyNetwork(ctx: LabContext, plan: LabPlan): Promise<void> {
  const name = ctx.lab.network.libvirtName;
  if (!name || plan.network.length === 0) return;
  // Held for a few virsh calls; a libvirtd restart under the holder can stretch them.
  const lock = await acquireLock(hostNetworksLockFile(), "this host's lab networks", {
    timeoutMs: 10 * 60_000,
    shared: true,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  try {
    let defined = false;
    if (plan.network.includes('define-network')) {
      await checkManagedNetworkFree(ctx);
      ctx.onEvent({
        kind: 'log',
        level: 'info',
        message: `creating network ${name} (${ctx.lab.network.cidr}, bridge ${ctx.lab.network.bridge})`,
      });
      await ctx.virsh.netDefine(renderNetworkXml(ctx.lab));
      defined = true;
    }
    if (plan.network.includes('start-network'))
      await ctx.virsh.netStart(name).catch(async (err: unknown) => {
        // Taken back even after a Ctrl-C (a Virsh without the signal, briefly): a start that
        // timed out may have run, so destroy before undefine (undefine alone would leave
        // it running, transient).
        if (defined) {
          const rollback = new Virsh(ctx.virsh.uri, undefined, { budgetMs: 10_000 });
          await rollback.netDestroy(name).catch(() => undefined);
          await rollback.netUndefine(name).catch(() => undefined);
        }
        throw err;
      });
  } finally {
    await lock.release();
  }
}

async function convergeNode(
  ctx: LabContext,
  d: Desired,
  plan: NodePlan,
  images: Map<string, BaseImage>,
  secret: Buffer,
  times: { sshMs: number; servicesMs: number },
  sessions: Map<string, GuestLink>,
  agentP: Promise<AgentClient | undefined>,
  state: StateWriter,
  noWait: boolean,
  unwaited: boolean,
): Promise<NodeResult> {
  const name = d.node.name;
  const record = (step: NodeStep, extra: { configHash?: string } = {}) =>
    state.node(name, { step, ...extra });
  const ev = (step: string, status: 'start' | 'done' | 'skip' | 'fail', detail?: string) =>
    ctx.onEvent({ kind: 'node', node: name, step, status, ...(detail ? { detail } : {}) });
  let step = 'plan';
  try {
    if (plan.conflict) throw new NodeError(name, 'define', plan.conflict);
    ev('image', 'done');
    for (const action of plan.actions) {
      switch (action) {
        case 'replace':
          step = 'disk';
          ev('disk', 'start', 'replacing: ' + plan.reasons[plan.actions.indexOf('replace')]);
          await ctx.virsh.destroy(d.node.domain);
          await rm(d.paths.disk, { force: true });
          await record('planned');
          break;
        case 'create-disk': {
          step = 'disk';
          ev('disk', 'start');
          const base = images.get(d.node.templateRef)!;
          const baseSize = (await imageInfo(base.disk, ctx.signal, base.format)).virtualSize;
          // createOverlay makes it under a temporary name: a killed qemu-img leaves no disk.
          await createOverlay(
            base.disk,
            base.format,
            d.paths.disk,
            Math.max(baseSize, d.node.diskBytes),
            ctx.signal,
          );
          failpoint('after-overlay', name);
          await record('disk');
          ev('disk', 'done', 'overlay');
          break;
        }
        case 'write-seed':
          step = 'seed';
          ev('seed', 'start');
          if (d.paths.seed)
            await writeSeedIso(d.paths.seed, d.bundle.volumeLabel ?? 'cidata', d.bundle.files, ctx.signal);
          else if (d.paths.fwcfg)
            await writeAtomic(d.paths.fwcfg, Object.values(d.bundle.files)[0] ?? '', 0o600);
          failpoint('after-seed', name);
          await record('seed');
          ev('seed', 'done');
          break;
        case 'define':
          step = 'define';
          ev('define', 'start');
          await ctx.virsh.define(d.xml);
          failpoint('after-define', name);
          await record('defined', { configHash: d.configHash });
          ev('define', 'done');
          break;
        case 'start':
          step = 'boot';
          ev('boot', 'start');
          await ctx.virsh.start(d.node.domain);
          failpoint('after-start', name);
          await record('started');
          ev('boot', 'done');
          break;
      }
    }
    if (plan.actions.length === 0) ev('boot', 'skip', 'already running');
    if (noWait) {
      ev('ssh', 'skip', 'not waited for (--no-wait)');
      return { node: name, ok: true, actions: plan.actions, waited: false };
    }
    step = 'ssh';
    ev('ssh', 'start');
    const target = sshTargetFor(ctx.lab, d.node, secret);
    // A node left running needs no wait for its boot: the agent's connection (kept from
    // an earlier command) when it has or gets one, else the usual wait.
    // One deadline for the whole phase: the agent's attempt counts against it.
    const sshStarted = performance.now();
    // A node still booting (started by an `up --no-wait`) is waited for as any boot is.
    const agent = plan.actions.length === 0 && !unwaited ? await agentP : undefined;
    const viaAgent = agent
      ? await agent.connect(target, Math.min(20_000, times.sshMs / 2)).then(
          () => agent.link(target),
          () => undefined,
        )
      : undefined;
    const session: GuestLink =
      viaAgent ??
      (await waitForSsh(target, {
        deadlineMs: Math.max(1000, times.sshMs - (performance.now() - sshStarted)),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      }).catch(async (err: unknown) => {
        throw await withConsoleTail(err, d.paths.console);
      }));
    ev('ssh', 'done');
    try {
      step = 'services';
      ev('services', 'start');
      // Run a container once per boot of a node, and again whenever the check never
      // passed (its image was not imported): a failed check is retried by the next up.
      // Whether it passed is asked while the services are checked.
      const fresh = plan.actions.includes('start') || unwaited;
      const tar = d.node.template.services.docker?.localImage;
      const wantsRun = d.node.services.includes('docker') && tar !== undefined;
      const present = wantsRun && !fresh ? localImagePresent(session) : Promise.resolve(false);
      const health = await waitHealthy(session, d.node, times.servicesMs, ctx.signal);
      if (wantsRun && (fresh || !(await present))) {
        const ok = await dockerRunCheck(session, tar);
        if (!ok.ok) throw new NodeError(name, 'services', `docker could not run a container: ${ok.detail}`);
      }
      if (health.machineId && health.machineId !== d.node.machineId) {
        ctx.onEvent({
          kind: 'log',
          level: 'warn',
          message: `${name}: machine-id ${health.machineId} differs from the expected ${d.node.machineId}`,
        });
      }
      ev('healthy', 'done');
      sessions.set(name, session);
      return { node: name, ok: true, actions: plan.actions, health };
    } catch (err) {
      session.close();
      throw err;
    }
  } catch (err) {
    let message =
      err instanceof NodeError ? err.message.replace(`${name}: ${err.step}: `, '') : describeError(err);
    // What was seen last (the serial console's tail) belongs with the failure.
    if (err instanceof LabError && err.hint) message += `\n  ${err.hint}`;
    // The phase lab was in; a lower layer's step (exec, http) goes into the message.
    const failedStep =
      err instanceof NodeError && (NODE_STEPS as readonly string[]).includes(err.step) ? err.step : step;
    ev(failedStep, 'fail', message);
    return { node: name, ok: false, actions: plan.actions, failedStep, error: message };
  }
}

/** Is the run check's image already imported? (Engine API, no guest process.) */
async function localImagePresent(session: GuestLink): Promise<boolean> {
  const r = await session
    .http(
      { socket: '/var/run/docker.sock' },
      { method: 'GET', path: `/images/${LOCAL_IMAGE}/json`, timeoutMs: 30_000 },
    )
    .catch(() => undefined);
  return r?.status === 200;
}

/** Waits until every requested service of the node answers healthy. */
async function waitHealthy(
  session: GuestLink,
  node: NodeSpec,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<NodeHealth> {
  let last: NodeHealth | undefined;
  try {
    return await pollUntil(
      async () => {
        last = await probeNode(session, {
          services: node.services,
          fleet: 'fleet' in node.template.services,
          load: false,
        });
        const etcdOk =
          !node.services.includes('etcd') || last.etcd?.state === 'leader' || last.etcd?.state === 'follower';
        const dockerOk = !node.services.includes('docker') || last.docker?.state === 'up';
        return etcdOk && dockerOk && last.machineId ? last : undefined;
      },
      {
        deadlineMs,
        initialMs: 500,
        factor: 1.5,
        maxMs: 5000,
        ...(signal ? { signal } : {}),
        describe: `${node.name} services`,
      },
    );
  } catch (err) {
    const seen = last
      ? `etcd ${last.etcd?.state ?? '?'}, docker ${last.docker?.state ?? '?'}${last.lastError ? `, last error: ${last.lastError}` : ''}`
      : 'nothing';
    throw new NodeError(
      node.name,
      'services',
      `not healthy after ${Math.round(deadlineMs / 1000)} s (last seen: ${seen})`,
      { cause: err },
    );
  }
}

/** Adds the last lines of the serial console to a wait error: what the guest was doing. */
async function withConsoleTail(err: unknown, consoleLog: string): Promise<unknown> {
  if (!(err instanceof LabError) || !existsSync(consoleLog)) return err;
  const tail = (await readFile(consoleLog, 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l.trim())
    .slice(-5)
    // Colour escapes out first, then any other control character.
    .map((l) => `    ${l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')}`) // eslint-disable-line no-control-regex
    .join('\n');
  err.hint = `serial console (${consoleLog}), last lines:\n${tail}`;
  return err;
}

/**
 * The members' answers when they agree: one leader, every member a leader or follower,
 * all naming the same leader. Else undefined. Pure.
 */
export function etcdAgreement(all: EtcdHealth[]): EtcdHealth[] | undefined {
  const leaders = new Set(all.map((h) => h.leaderId));
  const leading = all.filter((h) => h.state === 'leader');
  return all.length > 0 &&
    leaders.size === 1 &&
    leading.length === 1 &&
    all.every((h) => h.state === 'leader' || h.state === 'follower')
    ? all
    : undefined;
}

/** Lab-wide checks: one etcd leader, a write replicated across nodes, distinct machine-ids. */
async function checkCluster(
  ctx: LabContext,
  desired: Desired[],
  results: NodeResult[],
  secret: Buffer,
  open: Map<string, GuestLink>,
): Promise<UpResult['cluster']> {
  const problems: string[] = [];
  const healthy = results.filter((r) => r.ok && r.health);
  const ids = new Map(healthy.map((r) => [r.node, r.health!.machineId!]));
  const dups = findDuplicateMachineIds(ids);
  for (const [id, nodes] of dups)
    problems.push(`machine-id ${id} is shared by ${nodes.join(', ')}: cloned identity breaks clustering`);
  const cluster: UpResult['cluster'] = { machineIdsDistinct: dups.size === 0, problems };
  const etcdNodes = desired.filter(
    (d) => d.node.services.includes('etcd') && healthy.some((r) => r.node === d.node.name),
  );
  if (etcdNodes.length === 0) return cluster;
  const sessions: GuestLink[] = await Promise.all(
    etcdNodes.map((d) => {
      const kept = open.get(d.node.name);
      return kept
        ? Promise.resolve(kept)
        : GuestSession.connect(sshTargetFor(ctx.lab, d.node, secret), { timeoutMs: 60_000 });
    }),
  );
  try {
    // Nodes that came up were checked one by one as they did; the leader may have moved
    // since. Look at all members at once until they agree on exactly one leader. When no
    // etcd node changed, their node checks ran side by side a moment ago: if those agree,
    // they are the first look (the write and read below still need a working quorum).
    const side = etcdNodes.map((d) => results.find((r) => r.node === d.node.name)!);
    const unchanged = side.every((r) => r.actions.length === 0 && r.health?.etcd);
    const agreed =
      (unchanged ? etcdAgreement(side.map((r) => r.health!.etcd!)) : undefined) ??
      (await pollUntil(async () => etcdAgreement(await Promise.all(sessions.map((s) => probeEtcd(s)))), {
        deadlineMs: 120_000,
        initialMs: 500,
        factor: 1.5,
        maxMs: 5000,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        describe: 'etcd leader agreement',
      }).catch(() => undefined));
    if (!agreed) {
      problems.push('etcd members did not agree on one leader within 120 s');
      return cluster;
    }
    cluster.etcdLeader = etcdNodes[agreed.findIndex((h) => h.state === 'leader')]!.node.name;
    cluster.etcdMembers = Math.max(...agreed.map((h) => h.members ?? 0));
    const expected = ctx.lab.nodes.filter((n) => n.services.includes('etcd')).length;
    if (cluster.etcdMembers !== expected)
      problems.push(`etcd has ${cluster.etcdMembers} members, expected ${expected}`);
    // The classic check: write on one node, read it back on another.
    const [a, b] = [sessions[0]!, sessions[1] ?? sessions[0]!];
    const from = etcdNodes[0]!.node.name;
    const to = (etcdNodes[1] ?? etcdNodes[0]!).node.name;
    const value = `Hello from ${from}`;
    await etcdPut(a, '/message', value);
    const got = await pollUntil(async () => ((await etcdGet(b, '/message')) === value ? true : undefined), {
      deadlineMs: 30_000,
      initialMs: 200,
      factor: 1.5,
      maxMs: 2000,
      describe: 'etcd replication',
    }).catch(() => false);
    cluster.replicated = got === true;
    if (!cluster.replicated) problems.push(`etcd: /message written on ${from} was not readable on ${to}`);
  } finally {
    for (const s of sessions) if (!open.has(s.node)) s.close();
  }
  return cluster;
}
