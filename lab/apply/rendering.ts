import { describeError } from '../errors.js';
import { renderingSecrets } from '../plan/config-changes.js';
import type { DesiredNode } from '../render/node.js';
import { saveRendering } from '../store/rendered.js';
import type { LabContext } from './context.js';

/**
 * Keeps the first-boot files a node's seed was just written with, which `lab plan` diffs
 * the next rendering against (`lab up` and `lab rotate-keys` write seeds). Best effort:
 * the seed is what counts, a lost copy only makes plan say less.
 */
export async function keepRendering(
  ctx: Pick<LabContext, 'dir' | 'lab' | 'onEvent'>,
  rendered: Pick<DesiredNode, 'spec' | 'configHash' | 'bundle'>,
  secret: Buffer,
): Promise<void> {
  const name = rendered.spec.name;
  const known = renderingSecrets(secret, ctx.lab.name, name);
  await saveRendering(
    ctx.dir,
    name,
    { configHash: rendered.configHash, files: rendered.bundle.files },
    known,
  ).catch((err: unknown) =>
    ctx.onEvent({
      kind: 'log',
      level: 'warn',
      message: `${name}: its first-boot files were not kept for lab plan: ${describeError(err)}`,
    }),
  );
}
