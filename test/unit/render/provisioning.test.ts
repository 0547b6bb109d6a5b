import { describe, expect, it } from 'vitest';
import { nodeKeys } from '../../../lab/apply/context.js';
import { LabError } from '../../../lab/errors.js';
import { checkLabfileText } from '../../../lab/load.js';
import { renderCloudInit } from '../../../lab/render/cloud-init.js';
import { renderProvisioning, renderers } from '../../../lab/render/provisioning.js';

const secret = Buffer.alloc(32, 1);

function labWith(template: string) {
  const r = checkLabfileText(
    `name: r\ntemplate: ${template}\nnetwork: { mode: bridge, bridge: br0, cidr: 10.9.0.0/24 }\nnodes:\n  - { name: a, ip: 10.9.0.2 }\n`,
    'L',
  );
  if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('; '));
  return r.lab;
}

describe('renderProvisioning', () => {
  it('has a cloud-init renderer and none yet for the CoreOS dialects', () => {
    expect(renderers).toEqual({
      'cloud-init': renderCloudInit,
      'coreos-cloudinit': undefined,
      ignition: undefined,
    });
  });

  it('renders a cloud-init template with the cloud-init renderer', () => {
    const l = labWith('debian-12-lab');
    const input = { lab: l, node: l.nodes[0]!, keys: nodeKeys(l, l.nodes[0]!, secret) };
    expect(renderProvisioning(input)).toEqual(renderCloudInit(input));
  });

  it('refuses a dialect it cannot render with a LabError that names the template', () => {
    const l = labWith('flatcar-stable');
    const input = { lab: l, node: l.nodes[0]!, keys: nodeKeys(l, l.nodes[0]!, secret) };
    let error: unknown;
    try {
      renderProvisioning(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LabError);
    expect((error as LabError).message).toBe(
      'template flatcar-stable uses the Ignition dialect, which this version of lab cannot render yet',
    );
    expect((error as LabError).hint).toMatch(/debian-12-lab/);
  });
});
