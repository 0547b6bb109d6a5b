import { hostKey, userKey } from '../plan/identity.js';
import type { LabSpec, NodeSpec } from '../plan/model.js';
import { canonicalJson, sha256 } from '../plan/hash.js';
import { renderDomainXml } from './domain-xml.js';
import { renderProvisioning } from './provisioning.js';
import type { DomainType, NodeKeys, NodePaths, ProvisioningBundle } from './types.js';

/**
 * What one node should be: everything `lab up` writes for it, rendered from the spec.
 * `lab plan` compares its config hash and shape with what libvirt has, `lab render`
 * writes its files out, `lab up` applies it.
 */
export interface DesiredNode {
  spec: NodeSpec;
  /** Where its files go on the host (decided by the shell). */
  paths: NodePaths;
  /** Its first-boot provisioning files (seed or Ignition). */
  bundle: ProvisioningBundle;
  /** sha256 of the canonical provisioning files: a change means a fresh first boot. */
  configHash: string;
  /**
   * The hash the same node had in the layout of labs made before (schema 1), when the lab
   * had the nodes `members` (default: the Labfile's).
   */
  legacyConfigHash: (members?: readonly string[]) => string;
  /** How the domain is accelerated. */
  type: DomainType;
  /** The libvirt domain XML. */
  xml: string;
}

/** The keys one node is provisioned with: the lab's login key and the node's own host key. */
export function nodeKeys(lab: LabSpec, node: NodeSpec, secret: Buffer): NodeKeys {
  const hk = hostKey(secret, lab.name, node.name);
  return {
    authorizedKeys: [userKey(secret, lab.name).publicKey, ...lab.ssh.authorizedKeys],
    hostKey: { privateKey: hk.privateKey, publicKey: hk.publicKey },
  };
}

/**
 * One node's render, in the one order every command uses: provisioning from the spec and
 * the keys, its hash, then the domain XML that records the hash. Pure: same input, same bytes.
 */
export function renderNode(input: {
  lab: LabSpec;
  node: NodeSpec;
  paths: NodePaths;
  secret: Buffer;
  type: DomainType;
}): DesiredNode {
  const { lab, node, paths, type } = input;
  const keys = nodeKeys(lab, node, input.secret);
  const bundle = renderProvisioning({ lab, node, keys });
  const configHash = sha256(canonicalJson(bundle.files));
  const xml = renderDomainXml({ lab, node, paths, type, configHash });
  // Labs made before the member list left the first-boot config: their domains carry the
  // hash of that layout, which stands for this one (no replace on upgrade, plan.ts).
  // `members`: the nodes the lab had when it was made (its member list then).
  const legacyConfigHash = (members?: readonly string[]) => {
    const then = members ? { ...lab, nodes: lab.nodes.filter((n) => members.includes(n.name)) } : lab;
    return sha256(canonicalJson(renderProvisioning({ lab: then, node, keys, legacy: true }).files));
  };
  return { spec: node, paths, bundle, configHash, legacyConfigHash, type, xml };
}
