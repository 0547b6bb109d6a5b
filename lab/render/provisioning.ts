import type { Dialect } from '../templates/schema.js';
import { renderCloudInit } from './cloud-init.js';
import { renderCoreosCloudinit } from './coreos-cloudinit.js';
import { renderIgnition } from './ignition.js';
import type { ProvisioningBundle, ProvisioningRenderer, RenderInput } from './types.js';

/** One pure renderer per provisioning dialect; a new dialect is one entry here. */
export const renderers: Record<Dialect, ProvisioningRenderer> = {
  'cloud-init': renderCloudInit,
  'coreos-cloudinit': renderCoreosCloudinit,
  ignition: renderIgnition,
};

/** The node's provisioning files in its template's dialect. */
export function renderProvisioning(input: RenderInput): ProvisioningBundle {
  return renderers[input.node.template.provisioning.dialect](input);
}
