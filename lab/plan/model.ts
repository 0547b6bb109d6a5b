import type { FileSpec, ServiceName } from '../labfile/schema.js';
import type { Issue } from '../errors.js';
import type { Template } from '../templates/schema.js';
import type { UnitSpec } from './units.js';

/** A Labfile with every default filled in and every cross-field rule checked. */
export interface LabSpec {
  name: string;
  /** From the Labfile; the shell falls back to LIBVIRT_DEFAULT_URI, then qemu:///system. */
  uri?: string;
  accelerator: 'auto' | 'kvm' | 'tcg';
  /** QEMU's translation cache per guest when it runs under TCG (`tcg.tbCache`). */
  tcg: { tbCacheMiB: number };
  network: NetworkSpec;
  ssh: { user: string; authorizedKeys: string[] };
  etcd: { bootstrap: 'static' | 'discovery'; discovery?: string; api: 'v2' | 'v3'; token: string };
  nodes: NodeSpec[];
  /** Units scheduled across the nodes (fleet semantics), in Labfile order. */
  units: UnitSpec[];
  /** Problems lab repaired (a dashed cloud-config key rewritten): shown, not refused. */
  warnings: Issue[];
  /** sha256 of the canonical Labfile: recorded in each domain's metadata. */
  labfileHash: string;
  /** The Labfile's absolute path, when read from a file: recorded in the state for --lab NAME. */
  source?: string;
}

export interface NetworkSpec {
  mode: 'bridge' | 'managed';
  /** Host bridge to attach to (bridge mode) or to create (managed mode). */
  bridge: string;
  /** libvirt network name (managed mode only). */
  libvirtName?: string;
  cidr: string;
  prefix: number;
  netmask: string;
  gateway?: string;
  /** The host's own address on a managed network. */
  hostIp?: string;
  dns: string[];
  forward: 'none' | 'nat';
}

/**
 * One node as the Labfile wants it, every default filled in and its identity derived.
 * (The node family: NodeSpec wanted, DesiredNode rendered, ObservedNode found in libvirt,
 * NodePlan the difference, NodeResult what `up` did, NodeRecord the state file's entry,
 * NodeHealth one probe's answers, NodeStatus what `status` reports, NodeView the live screen's row.)
 */
export interface NodeSpec {
  name: string;
  /** libvirt domain name: `<lab>-<node>`. */
  domain: string;
  ip: string;
  mac: string;
  uuid: string;
  /** What the guest's /etc/machine-id will be: the UUID without dashes. */
  machineId: string;
  cpus: number;
  memoryMiB: number;
  diskBytes: number;
  templateRef: string;
  template: Template;
  services: ServiceName[];
  files: FileSpec[];
  /** The Labfile's cloud-config fragments (lab-wide, then the node's), in the parser's spelling. */
  cloudConfig?: Record<string, unknown>;
}
