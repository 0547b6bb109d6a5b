import { describe, expect, it } from 'vitest';
import { configChanges, maskSecrets, renderingSecrets } from '../../../lab/plan/config-changes.js';
import { hostKey } from '../../../lab/plan/identity.js';
import { renderNode } from '../../../lab/render/node.js';
import type { NodePaths } from '../../../lab/render/types.js';
import { labSpec } from '../../support/lab-spec.js';

const secret = Buffer.alloc(32, 7);
const paths: NodePaths = { disk: '/d/a.qcow2', seed: '/d/a.iso', fwcfg: '/d/a.ign', console: '/d/a.log' };

/** Every form a node's private host key could take in a file: its PEM body lines, encoded or not. */
function keyMaterial(lab: string, node: string, s = secret): string[] {
  const pem = hostKey(s, lab, node).privateKey;
  const body = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
  return [...body, ...body.map(encodeURIComponent), 'PRIVATE KEY', 'PRIVATE%20KEY', s.toString('hex')];
}

describe('maskSecrets', () => {
  // One template per provisioning dialect: the host key in a YAML block, in write_files, in a data URL.
  it.each(['debian-12-lab', 'flatcar-stable-cloudconfig', 'fedora-coreos-stable'])(
    'leaves no private key material in a %s rendering, and names the host key',
    (template) => {
      const lab = labSpec({ template, extra: 'defaults: { memory: 2GiB }\n' });
      const node = lab.nodes[0]!;
      const { bundle } = renderNode({ lab, node, paths, secret, type: 'qemu' });
      const text = Object.values(bundle.files).join('\n');
      expect(text).toContain(keyMaterial(lab.name, node.name)[0]); // it was there
      const masked = maskSecrets(text, renderingSecrets(secret, lab.name, node.name));
      for (const m of keyMaterial(lab.name, node.name)) expect(masked).not.toContain(m);
      expect(masked).toContain('<secret: host key>');
      // The public half stays (percent-encoded in a data URL): a new key shows as a changed line.
      const pub = hostKey(secret, lab.name, node.name).publicKey.split(' ')[1]!;
      expect(masked.includes(pub) || masked.includes(encodeURIComponent(pub))).toBe(true);
    },
  );

  it.each([
    [
      'a PEM block',
      '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n',
      '<secret: private key>\n',
    ],
    [
      'an indented one',
      'key: |\n  -----BEGIN PRIVATE KEY-----\n  MIIE\n  -----END PRIVATE KEY-----\n',
      'key: |\n  <secret: private key>\n',
    ],
    [
      'a percent-encoded one',
      'data:,-----BEGIN%20EC%20PRIVATE%20KEY-----%0AMHc%0A-----END%20EC%20PRIVATE%20KEY-----%0A',
      'data:,<secret: private key>%0A',
    ],
    [
      'a PGP one',
      '-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n-----END PGP PRIVATE KEY BLOCK-----',
      '<secret: private key>',
    ],
    ['a public key', 'ssh-ed25519 AAAAC3Nza lab', 'ssh-ed25519 AAAAC3Nza lab'],
  ])('masks any private key, unknown to lab: %s', (_, text, want) => {
    expect(maskSecrets(text)).toBe(want);
  });

  it('masks the lab secret and its base64', () => {
    const known = renderingSecrets(secret, 'r', 'a');
    const b64 = Buffer.from(secret.toString('hex')).toString('base64');
    expect(maskSecrets(`s=${secret.toString('hex')} t=${b64}`, known)).toBe(
      's=<secret: lab secret> t=<secret: lab secret>',
    );
  });
});

describe('configChanges', () => {
  const render = (extra: string, s = secret) => {
    const lab = labSpec({ extra });
    const d = renderNode({ lab, node: lab.nodes[0]!, paths, secret: s, type: 'qemu' });
    return { lab, d, known: renderingSecrets(s, lab.name, 'a') };
  };

  it('diffs each changed file, applied against Labfile, in unified form', () => {
    const before = render('services: [etcd]\n');
    const after = render('services: [etcd, docker]\n');
    const c = configChanges({
      node: 'a',
      stored: { configHash: before.d.configHash, files: before.d.bundle.files },
      appliedHash: before.d.configHash,
      desired: after.d.bundle.files,
      known: after.known,
    });
    expect(c.note).toBeUndefined();
    // cloud-init's instance-id follows the config: meta-data changes too.
    expect(c.changes!.map((f) => f.file)).toEqual(['meta-data', 'user-data']);
    const diff = c.changes![1]!.diff;
    expect(diff).toMatch(
      /^--- a user-data \(applied\)\n\+\+\+ a user-data \(Labfile\)\n@@ -\d+,\d+ \+\d+,\d+ @@\n/,
    );
    expect(diff).toMatch(/^\+.*docker/m);
  });

  it('shows a new secret as its public key changed, never the private one', () => {
    const before = render('');
    const other = Buffer.alloc(32, 9);
    const after = render('', other);
    const c = configChanges({
      node: 'a',
      stored: { configHash: before.d.configHash, files: before.d.bundle.files },
      appliedHash: before.d.configHash,
      desired: after.d.bundle.files,
      known: [...before.known, ...after.known],
    });
    const diffs = c.changes!.map((f) => f.diff).join('');
    expect(diffs).toContain('<secret: host key>');
    expect(diffs).toMatch(/^-.*ssh-ed25519 /m);
    for (const m of [...keyMaterial('r', 'a'), ...keyMaterial('r', 'a', other)])
      expect(diffs).not.toContain(m);
  });

  it('says so when nothing is stored, and when the stored rendering is not the applied one', () => {
    const { d, known } = render('');
    expect(
      configChanges({ node: 'a', stored: undefined, appliedHash: 'x', desired: d.bundle.files, known }),
    ).toEqual({
      note: 'no earlier rendering stored; made by an older lab',
    });
    const c = configChanges({
      node: 'a',
      stored: { configHash: 'b'.repeat(64), files: d.bundle.files },
      appliedHash: 'a'.repeat(64),
      desired: d.bundle.files,
      known,
    });
    expect(c).toEqual({
      changes: [],
      note: 'the stored rendering is of config bbbbbbbb, the domain has aaaaaaaa: the diff may be off',
    });
  });
});
