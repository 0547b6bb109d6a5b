import type { DesiredNode } from '../render/node.js';
import type { LabSpec } from './model.js';

/** What planning reads of a desired node: its identity and shape, its config hash, its accelerator. */
export type PlannedNode = Pick<DesiredNode, 'spec' | 'configHash' | 'type'> &
  Partial<Pick<DesiredNode, 'legacyConfigHash'>>;

/** What exists of one node in libvirt and on disk, as observed by the shell. */
export interface ObservedNode {
  /** Domain state, or 'missing' when no domain of that name exists. */
  state: string;
  /** The domain carries this lab's metadata for this node. */
  owned: boolean;
  /** From the domain's metadata. */
  configHash?: string;
  /** The metadata's schema (1: a domain defined before it was recorded). */
  schema?: number;
  /** From the defined domain XML. */
  memoryMiB?: number;
  vcpus?: number;
  type?: string;
  mac?: string;
  uuid?: string;
  /** The defined TCG translation cache (absent: the domain has none, or is KVM). */
  tbCacheMiB?: number;
  /** A running or paused domain's NIC link is down (a `lab link` drill). */
  linkDown?: boolean;
  diskExists: boolean;
  seedExists: boolean;
}

export type Action =
  /** Stop and delete the domain and disk: a first-boot config changed (Ignition, cloud-init instance). */
  | 'replace'
  | 'create-disk'
  | 'write-seed'
  | 'define'
  | 'start'
  /** A paused domain (a checkpoint save or restore that was cut short) runs on, its clock set. */
  | 'resume'
  /** A NIC link taken down (a `lab link` drill) is set up again. */
  | 'link-up';

/** The mutating actions that take one node from what exists to what is desired. */
export interface NodePlan {
  node: string;
  /** Mutating actions in order; empty when the node is already as desired. */
  actions: Action[];
  /** Why, for `lab plan`: one short phrase per action. */
  reasons: string[];
  /** Refusal: a domain of that name exists but this lab does not own it. */
  conflict?: string;
}

export interface LabPlan {
  network: ('define-network' | 'start-network')[];
  nodes: NodePlan[];
  /** Nodes of the lab the Labfile no longer names: each leaves etcd, then is removed. */
  leaving: LeavePlan[];
}

/**
 * What is left of a node the Labfile no longer names, as observed: its domain (found by the
 * lab's metadata, never by name alone), its address, its files in the lab folder.
 */
export interface LeavingNode {
  node: string;
  /** The lab's own domain for the node; absent when it is gone (or a domain of that name is someone else's). */
  domain?: string;
  /** Domain state, or 'missing'. */
  state: string;
  /** From the domain's metadata, or the state file: etcd's peer URL and the SSH target. */
  ip?: string;
  /** Its files in the lab folder (overlay, seed, console log). */
  files: string[];
}

/** A leaving node's plan: out of etcd's membership, then its domain and files removed. */
export interface LeavePlan extends LeavingNode {
  actions: ('leave-etcd' | 'destroy' | 'undefine' | 'delete-files')[];
  reasons: string[];
  /**
   * Must go before the nodes converge: a node of the Labfile takes its address (a rename),
   * which must be free before that node boots. Others leave after the nodes have converged,
   * when the members that stay (and any that joined) answer.
   */
  first: boolean;
}

/**
 * The plan for the nodes that leave: etcd first (the member removed by its peers; lab tells
 * then whether it was one), then the domain, then the files. Pure.
 */
export function planLeaving(lab: LabSpec, leaving: readonly LeavingNode[]): LeavePlan[] {
  const ips = new Set(lab.nodes.map((n) => n.ip));
  return leaving.map((l) => {
    const actions: LeavePlan['actions'] = [];
    const reasons: string[] = [];
    const add = (a: LeavePlan['actions'][number], why: string) => {
      actions.push(a);
      reasons.push(why);
    };
    if (l.domain && l.ip) add('leave-etcd', 'not in the Labfile: out of etcd first, when a member');
    if (l.domain && /^(running|paused|idle|blocked|in shutdown|pmsuspended)$/.test(l.state))
      add('destroy', 'not in the Labfile');
    if (l.domain) add('undefine', 'not in the Labfile');
    if (l.files.length) add('delete-files', `${l.files.length} file(s) left in the lab folder`);
    return { ...l, actions, reasons, first: l.ip !== undefined && ips.has(l.ip) };
  });
}

/**
 * Desired vs observed -> the mutating actions. `[]` for every node of a healthy lab,
 * so a re-run is a no-op. Pure.
 */
export function planLab(
  lab: LabSpec,
  desired: readonly PlannedNode[],
  observed: Map<string, ObservedNode>,
  network?: { exists: boolean; active: boolean },
  leaving: readonly LeavingNode[] = [],
): LabPlan {
  const net: LabPlan['network'] = [];
  if (lab.network.mode === 'managed' && network) {
    if (!network.exists) net.push('define-network');
    if (!network.active) net.push('start-network');
  }
  // The nodes a schema-1 lab has: its member list when it was made (no node joined since).
  const schema1 = desired
    .map((d) => d.spec.name)
    .filter((n) => {
      const o = observed.get(n);
      return o !== undefined && o.owned && o.state !== 'missing' && (o.schema ?? 1) < 2;
    });
  const nodes = desired.map((d): NodePlan => {
    const o = observed.get(d.spec.name) ?? {
      state: 'missing',
      owned: false,
      diskExists: false,
      seedExists: false,
    };
    const actions: Action[] = [];
    const reasons: string[] = [];
    const add = (a: Action, why: string) => {
      actions.push(a);
      reasons.push(why);
    };
    if (o.state !== 'missing' && !o.owned) {
      return {
        node: d.spec.name,
        actions: [],
        reasons: [],
        conflict: `a domain named ${d.spec.domain} exists but does not belong to lab ${lab.name}; lab will not touch it`,
      };
    }
    if (o.state === 'missing') {
      if (!o.diskExists) add('create-disk', 'no disk');
      if (!o.seedExists || !o.diskExists) add('write-seed', 'no seed');
      else add('write-seed', 'seed refreshed for the new domain');
      add('define', 'no domain');
      add('start', 'not running');
      return { node: d.spec.name, actions, reasons };
    }
    // A domain of schema 1 carries the hash of the layout before etcd's member list left
    // the first-boot config: the same node's hash in that layout stands for this one.
    const legacySame =
      (o.schema ?? 1) < 2 && o.configHash !== undefined && o.configHash === d.legacyConfigHash?.(schema1);
    if (o.configHash !== d.configHash && !legacySame) {
      // First-boot config changed: only a fresh disk applies it reliably.
      add(
        'replace',
        `provisioning config changed (${o.configHash?.slice(0, 8) ?? 'none'} -> ${d.configHash.slice(0, 8)})`,
      );
      add('create-disk', 'fresh disk for the new config');
      add('write-seed', 'new config');
      add('define', 'redefine');
      add('start', 'boot with the new config');
      return { node: d.spec.name, actions, reasons };
    }
    if (!o.diskExists) {
      add('replace', 'disk is gone');
      add('create-disk', 'no disk');
      add('write-seed', 'seed for the fresh disk');
      add('define', 'redefine');
      add('start', 'not running');
      return { node: d.spec.name, actions, reasons };
    }
    if (!o.seedExists) add('write-seed', 'seed is gone');
    const shapeChanged =
      o.memoryMiB !== d.spec.memoryMiB ||
      o.vcpus !== d.spec.cpus ||
      o.type !== d.type ||
      o.mac !== d.spec.mac ||
      (o.uuid !== undefined && o.uuid !== d.spec.uuid) ||
      (d.type === 'qemu' && o.tbCacheMiB !== undefined && o.tbCacheMiB !== lab.tcg.tbCacheMiB);
    if (shapeChanged)
      add(
        'define',
        'machine shape changed (memory, cpus, accelerator, MAC or TCG cache): takes effect at next start',
      );
    if (o.state === 'paused') add('resume', 'domain is paused');
    else if (o.state !== 'running') add('start', `domain is ${o.state}`);
    if (o.linkDown && (o.state === 'running' || o.state === 'paused'))
      add('link-up', 'its network link is down');
    return { node: d.spec.name, actions, reasons };
  });
  return { network: net, nodes, leaving: planLeaving(lab, leaving) };
}

/** True when nothing would change. */
export function isNoop(plan: LabPlan): boolean {
  return (
    plan.network.length === 0 &&
    plan.nodes.every((n) => n.actions.length === 0 && !n.conflict) &&
    plan.leaving.every((l) => l.actions.length === 0)
  );
}

/** What a node's plan means for etcd's membership (shown by `lab plan`). */
export type MemberChange = 'bootstrap' | 'join' | 'rebuild member' | 'leave';

/**
 * Each etcd node's membership change in the plan. With a static bootstrap: a re-created
 * member leaves and joins again (`rebuild member`); a node with a fresh disk joins as a
 * learner when another member exists and stays as it is, else it bootstraps with the
 * others. Pure.
 */
export function memberChanges(
  lab: LabSpec,
  plan: LabPlan,
  observed: ReadonlyMap<string, ObservedNode>,
): Map<string, MemberChange> {
  const out = new Map<string, MemberChange>();
  // Whether a leaving node is a member is etcd's to say (the Labfile no longer has its
  // services): the plan says it leaves when it may be one. Any bootstrap: a member is
  // removed through its peers however it first met them.
  for (const l of plan.leaving) if (l.actions.includes('leave-etcd')) out.set(l.node, 'leave');
  if (lab.etcd.bootstrap !== 'static') return out;
  const etcd = lab.nodes.filter((n) => n.services.includes('etcd')).map((n) => n.name);
  const actionsOf = (n: string) => plan.nodes.find((p) => p.node === n)?.actions ?? [];
  const staying = etcd.filter((n) => {
    const o = observed.get(n);
    return o?.owned === true && o.diskExists && !actionsOf(n).includes('create-disk');
  });
  for (const n of etcd) {
    const actions = actionsOf(n);
    if (actions.includes('replace')) out.set(n, 'rebuild member');
    else if (actions.includes('create-disk')) out.set(n, staying.length > 0 ? 'join' : 'bootstrap');
  }
  return out;
}

/**
 * Why a discovery-bootstrapped lab cannot take this plan, or undefined: a discovery URL
 * admits the cluster's first members only, so lab cannot add or rebuild a member of a
 * running one (a fresh member would register again and be refused). Pure.
 */
export function discoveryRefusal(
  lab: LabSpec,
  plan: LabPlan,
  observed: ReadonlyMap<string, ObservedNode>,
): string | undefined {
  if (lab.etcd.bootstrap !== 'discovery') return undefined;
  const changes = memberChanges({ ...lab, etcd: { ...lab.etcd, bootstrap: 'static' } }, plan, observed);
  const blocked = [...changes].filter(([, c]) => c !== 'bootstrap' && c !== 'leave');
  if (blocked.length === 0) return undefined;
  return `etcd bootstrap discovery cannot change the members of a running cluster (${blocked
    .map(([n, c]) => `${n}: ${c}`)
    .join(', ')}): use etcd.bootstrap static, whose members lab adds and rebuilds one at a time`;
}
