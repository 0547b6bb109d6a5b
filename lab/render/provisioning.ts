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

/** The node's provisioning files in its template's dialect. */
export function renderProvisioning(input: RenderInput): ProvisioningBundle {
  const dialect = input.node.template.provisioning.dialect;
  const renderer = renderers[dialect];
  if (!renderer) {
    throw new LabError(
      `template ${input.node.template.name} uses the ${dialect} dialect, which this version of lab cannot render yet`,
      {
        hint: 'use a cloud-init template such as debian-12-lab',
      },
    );
  }
  return renderer(input);
}
