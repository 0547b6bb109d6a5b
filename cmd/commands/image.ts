import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { buildImage, imageLocation, imageReady } from '../../lab/providers/images.js';
import { loadTemplateOrThrow, listTemplateNames } from '../../lab/templates/load.js';
import { cacheRoot } from '../../lab/store/lab-dir.js';
import { parseFlags, UsageError } from '../args.js';
import { plainEventPrinter } from '../output.js';

const HELP = `Usage: lab image build NAME | lab image list

  build NAME   build a template's image from Debian packages into the cache
               (debian-12-lab: mmdebstrap, mkfs.ext4 -d, qemu-img convert; root)
  list         templates and whether their image is in the cache (${'$'}LAB_CACHE_DIR)

Example:
  lab image build debian-12-lab
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {}, HELP);
  if (!flags) return 0;
  const [verb, name] = flags.positionals;
  if (verb === 'list') {
    for (const t of listTemplateNames()) {
      const { template } = loadTemplateOrThrow(t, process.cwd());
      const loc = imageLocation(template);
      process.stdout.write(`${t.padEnd(20)} ${imageReady(template) ? 'cached ' : 'missing'} ${loc.disk}\n`);
    }
    const root = cacheRoot();
    if (existsSync(root)) process.stdout.write(`cache: ${root} (${readdirSync(root).length} entries)\n`);
    return 0;
  }
  if (verb === 'build' && name) {
    const { template } = loadTemplateOrThrow(name, process.cwd());
    if (!('build' in template.image)) throw new UsageError(`template ${name} is downloaded, not built`);
    const out = await buildImage(template.image.build, { onEvent: plainEventPrinter({ debug: true }) });
    process.stdout.write(`built ${name} into ${path.resolve(out)}\n`);
    return 0;
  }
  throw new UsageError('expected: lab image build NAME | lab image list', { hint: HELP.split('\n')[0] });
}
