import { LabError } from '../errors.js';
import type { Dialect } from '../templates/schema.js';
import { renderCloudInit } from './cloud-init.js';
import type { ProvisioningBundle, ProvisioningRenderer, RenderInput } from './types.js';

/** One pure renderer per provisioning dialect; a new dialect is one entry here. */
export const renderers: Record<Dialect, ProvisioningRenderer | undefined> = {
  'cloud-init': renderCloudInit,
  'coreos-cloudinit': undefined,
  ignition: undefined,
};

// How users know the dialects (the error below names them).
const DIALECT_NAMES: Record<Dialect, string> = {
  'cloud-init': 'cloud-init',
  'coreos-cloudinit': 'CoreOS cloud-config (coreos-cloudinit)',
  ignition: 'Ignition',
};

/** The node's provisioning files in its template's dialect. */
export function renderProvisioning(input: RenderInput): ProvisioningBundle {
  const dialect = input.node.template.provisioning.dialect;
  const renderer = renderers[dialect];
  if (!renderer) {
    throw new LabError(
      `template ${input.node.template.name} uses the ${DIALECT_NAMES[dialect]} dialect, which this version of lab cannot render yet`,
      {
        hint: 'use a cloud-init template such as debian-12-lab',
      },
    );
  }
  return renderer(input);
}
