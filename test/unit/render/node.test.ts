import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256 } from '../../../lab/plan/hash.js';
import { parseLabMetadata } from '../../../lab/render/domain-xml.js';
import { nodeKeys, renderNode } from '../../../lab/render/node.js';
import { renderProvisioning } from '../../../lab/render/provisioning.js';
import type { NodePaths } from '../../../lab/render/types.js';
import { labSpec } from '../../support/lab-spec.js';

const secret = Buffer.alloc(32, 7);
const paths: NodePaths = { disk: '/d/a.qcow2', seed: '/d/a.iso', console: '/d/a.log' };

describe('renderNode (the one per-node render of lab plan, lab render and lab up)', () => {
  const lab = labSpec({ extra: 'services: [etcd, docker]\n' });
  const node = lab.nodes[0]!;

  it('hashes the provisioning files it renders and records that hash in the domain XML', () => {
    const d = renderNode({ lab, node, paths, secret, type: 'qemu' });
    const bundle = renderProvisioning({ lab, node, keys: nodeKeys(lab, node, secret) });
    expect(d.bundle).toEqual(bundle);
    expect(d.configHash).toBe(sha256(canonicalJson(bundle.files)));
    expect(parseLabMetadata(d.xml)).toMatchObject({
      lab: lab.name,
      node: node.name,
      configHash: d.configHash,
    });
    expect(d).toMatchObject({ spec: node, paths, type: 'qemu' });
    expect(d.xml).toContain("type='qemu'".replace(/'/g, '"'));
  });

  it('the accelerator changes the XML, never the first-boot config', () => {
    const q = renderNode({ lab, node, paths, secret, type: 'qemu' });
    const k = renderNode({ lab, node, paths, secret, type: 'kvm' });
    expect(k.configHash).toBe(q.configHash);
    expect(k.xml).not.toBe(q.xml);
  });

  it('is deterministic, and another secret is another host key, hence another config', () => {
    // The legacy hash is a function: compared by what it gives.
    const bytes = ({ legacyConfigHash, ...d }: ReturnType<typeof renderNode>) => ({
      ...d,
      legacy: legacyConfigHash(),
    });
    const a = renderNode({ lab, node, paths, secret, type: 'qemu' });
    expect(bytes(renderNode({ lab, node, paths, secret, type: 'qemu' }))).toEqual(bytes(a));
    const b = renderNode({ lab, node, paths, secret: Buffer.alloc(32, 8), type: 'qemu' });
    expect(b.configHash).not.toBe(a.configHash);
  });

  it("nodeKeys: the lab's login key first, then the Labfile's keys; the node's own host key", () => {
    const k = nodeKeys(lab, node, secret);
    expect(k.authorizedKeys[0]).toMatch(/^ssh-ed25519 /);
    expect(k.hostKey.publicKey).toMatch(/^ssh-ed25519 /);
    expect(nodeKeys(lab, lab.nodes[1]!, secret).hostKey.publicKey).not.toBe(k.hostKey.publicKey);
    expect(nodeKeys(lab, lab.nodes[1]!, secret).authorizedKeys).toEqual(k.authorizedKeys);
  });
});
