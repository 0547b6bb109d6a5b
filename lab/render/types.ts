import type { LabSpec, NodeSpec } from '../plan/model.js';

/** Host-side paths of one node's files, decided by the shell (state dir, cache). */
export interface NodePaths {
  /** qcow2 overlay (the node's disk). */
  disk: string;
  /** Seed/config ISO (NoCloud `cidata` or config-drive `config-2`), when the delivery uses one. */
  seed?: string;
  /** Ignition config file for fw_cfg delivery. */
  fwcfg?: string;
  /** Serial console log (virtlogd writes it). */
  console: string;
  /** Direct kernel boot files of the template's image, when it boots that way. */
  kernel?: string;
  initrd?: string;
}

/** Keys a node's provisioning needs: the lab's login key and the node's own host key. */
export interface NodeKeys {
  /** OpenSSH public key lines allowed to log in (the lab's key first). */
  authorizedKeys: string[];
  hostKey: { privateKey: string; publicKey: string };
}

/** Everything a renderer sees. Pure data. */
export interface RenderInput {
  lab: LabSpec;
  node: NodeSpec;
  keys: NodeKeys;
  /**
   * The layout of labs made before etcd's membership became a runtime fact (the member list
   * inside the first-boot config): rendered only to recognise such a lab's config hash.
   */
  legacy?: boolean;
}

/** A rendered provisioning config: the files that go on the seed (by their path in it). */
export interface ProvisioningBundle {
  dialect: 'cloud-init' | 'coreos-cloudinit' | 'ignition';
  delivery: 'nocloud' | 'config-drive' | 'fwcfg';
  /** ISO volume label for seed deliveries: `cidata` or `config-2`. */
  volumeLabel?: string;
  /** path inside the seed (or the fw_cfg payload name) -> content. Sorted, stable bytes. */
  files: Record<string, string>;
}

/** A provisioning dialect: one pure function. New dialects plug in here. */
export type ProvisioningRenderer = (input: RenderInput) => ProvisioningBundle;

/** How the domain is accelerated: decided by the shell after probing the host. */
export type DomainType = 'kvm' | 'qemu';

export interface DomainInput {
  lab: LabSpec;
  node: NodeSpec;
  paths: NodePaths;
  type: DomainType;
  /** sha256 of the node's rendered provisioning: recorded in metadata to detect changes. */
  configHash: string;
  /** QEMU binary, as libvirt's capabilities name it (default /usr/bin/qemu-system-x86_64). */
  emulator?: string;
}

/** The XML namespace of lab's <metadata> element. */
export const LAB_XMLNS = 'https://lab.invalid/xmlns/lab/1';
