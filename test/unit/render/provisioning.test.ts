import { describe, expect, it } from 'vitest';
import { nodeKeys } from '../../../lab/render/node.js';
import { renderCloudInit } from '../../../lab/render/cloud-init.js';
import { renderCoreosCloudinit } from '../../../lab/render/coreos-cloudinit.js';
import { renderIgnition } from '../../../lab/render/ignition.js';
import { renderProvisioning, renderers } from '../../../lab/render/provisioning.js';
import { labSpec } from '../../support/lab-spec.js';

const secret = Buffer.alloc(32, 1);

const labWith = (template: string) =>
  labSpec({ template, extra: 'defaults: { memory: 2GiB }\n', nodes: '  - { name: a, ip: 10.9.0.2 }\n' });

describe('renderProvisioning', () => {
  it('has one renderer per dialect', () => {
    expect(renderers).toEqual({
      'cloud-init': renderCloudInit,
      'coreos-cloudinit': renderCoreosCloudinit,
      ignition: renderIgnition,
    });
  });

  it.each([
    ['debian-12-lab', 'cloud-init', 'nocloud', 'cidata', ['meta-data', 'network-config', 'user-data']],
    ['flatcar-stable', 'ignition', 'fwcfg', undefined, ['config.ign']],
    ['fedora-coreos-stable', 'ignition', 'fwcfg', undefined, ['config.ign']],
    [
      'flatcar-stable-cloudconfig',
      'coreos-cloudinit',
      'config-drive',
      'config-2',
      ['openstack/latest/user_data'],
    ],
    ['coreos-alpha', 'coreos-cloudinit', 'config-drive', 'config-2', ['openstack/latest/user_data']],
  ])('renders %s in its dialect (%s over %s)', (template, dialect, delivery, label, files) => {
    const l = labWith(template);
    const input = { lab: l, node: l.nodes[0]!, keys: nodeKeys(l, l.nodes[0]!, secret) };
    const bundle = renderProvisioning(input);
    expect(bundle.dialect).toBe(dialect);
    expect(bundle.delivery).toBe(delivery);
    expect(bundle.volumeLabel).toBe(label);
    expect(Object.keys(bundle.files).sort()).toEqual(files);
    expect(bundle).toEqual(renderers[l.nodes[0]!.template.provisioning.dialect](input));
  });
});
