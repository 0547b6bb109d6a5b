// The seeds lab writes, read back with xorriso: the volume label and the paths each
// dialect's reader looks for (cloud-init's NoCloud `cidata`, coreos-cloudinit's config
// drive `config-2` with openstack/latest/user_data), owner-only permissions.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeKeys } from '../../../lab/render/node.js';
import { writeSeedIso } from '../../../lab/providers/iso.js';
import { renderProvisioning } from '../../../lab/render/provisioning.js';
import { labSpec } from '../../support/lab-spec.js';

function bundleFor(template: string) {
  const lab = labSpec({
    name: 'iso',
    template,
    extra: 'defaults: { memory: 2GiB }\nservices: [etcd, docker]\n',
    nodes: '  - { name: a, ip: 10.9.0.2 }\n',
  });
  const node = lab.nodes[0]!;
  return renderProvisioning({ lab, node, keys: nodeKeys(lab, node, Buffer.alloc(32, 3)) });
}

/** Volume id and every file of an ISO, with the content of one, by xorriso. */
async function readIso(iso: string, file: string) {
  const info = await execa('xorriso', ['-indev', iso, '-pvd_info'], { all: true });
  const volume = /Volume Id\s*:\s*(\S+)/.exec(info.all)?.[1];
  const found = await execa('xorriso', ['-indev', iso, '-find', '/', '-type', 'f'], { all: true });
  const files = [...found.stdout.matchAll(/^'(.+)'$/gm)].map((m) => m[1]!).sort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-iso-out-'));
  await execa('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', file, path.join(dir, 'out')]);
  return { volume, files, content: readFileSync(path.join(dir, 'out'), 'utf8') };
}

describe('writeSeedIso', () => {
  it.each([
    ['debian-12-lab', 'cidata', ['/meta-data', '/network-config', '/user-data'], '/user-data'],
    [
      'flatcar-stable-cloudconfig',
      'config-2',
      ['/openstack/latest/user_data'],
      '/openstack/latest/user_data',
    ],
  ])('%s: label %s, the files its reader looks for, 0600', async (template, label, files, main) => {
    const bundle = bundleFor(template);
    expect(bundle.volumeLabel).toBe(label);
    const iso = path.join(mkdtempSync(path.join(os.tmpdir(), 'lab-iso-')), 'seed.iso');
    await writeSeedIso(iso, bundle.volumeLabel!, bundle.files);
    expect(statSync(iso).mode & 0o777).toBe(0o600);
    const got = await readIso(iso, main);
    expect(got.volume).toBe(label);
    expect(got.files).toEqual(files);
    expect(got.content).toBe(bundle.files[main.slice(1)]);
  });
});
