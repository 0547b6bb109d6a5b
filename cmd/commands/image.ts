import path from 'node:path';
import { buildImage, imageLocation, imageReady } from '../../lab/providers/images.js';
import { verifiedBuild } from '../../lab/providers/images/build.js';
import {
  findLeftovers,
  overlaysOn,
  pruneLeftovers,
  sizeOf,
  type Leftover,
} from '../../lab/providers/images/leftovers.js';
import { loadTemplateOrThrow, listTemplateNames } from '../../lab/templates/load.js';
import type { Template } from '../../lab/templates/schema.js';
import { cacheRoot } from '../../lab/store/lab-dir.js';
import { LabError } from '../../lab/errors.js';
import { parseFlags, UsageError } from '../args.js';
import { plainEventPrinter, table } from '../output.js';
import { interruptible } from '../signals.js';

const HELP = `Usage: lab image build NAME [--force] | lab image list [--json] | lab image prune [--dry-run] [--json]

  build NAME   build a template's image from Debian packages into the cache
               (debian-12-lab: mmdebstrap, mkfs.ext4 -d, qemu-img convert; root).
               A cached image whose files match their manifest is kept (nothing to
               do); --force builds it again, unless a lab's disk is backed by it.
               Ctrl-C or SIGTERM stops it and removes its work folder (exit 130, 143)
  list         templates and whether their image is in the cache (${'$'}LAB_CACHE_DIR),
               then what else the cache holds: work folders of builds cut short,
               partial downloads, entries no template names any more
  prune        removes those leftovers, except what a running build or download or a
               lab's disk still uses; --dry-run only says what it would remove

Examples:
  lab image build debian-12-lab
  lab image list
  lab image prune --dry-run
`;

const USAGE = 'expected: lab image build NAME | lab image list | lab image prune';

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    { json: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, force: { type: 'boolean' } },
    HELP,
  );
  if (!flags) return 0;
  const [verb, name, ...rest] = flags.positionals;
  if (rest.length > 0 || (verb !== 'build' && name !== undefined))
    throw new UsageError(`unexpected argument ${JSON.stringify(rest[0] ?? name)}: ${USAGE}`, {
      hint: HELP.split('\n')[0],
    });
  if (verb === 'list') return list(Boolean(flags.values.json));
  if (verb === 'prune') return prune(Boolean(flags.values.json), Boolean(flags.values['dry-run']));
  if (verb === 'build' && name) return build(name, Boolean(flags.values.force));
  throw new UsageError(USAGE, { hint: HELP.split('\n')[0] });
}

function templates(): Template[] {
  return listTemplateNames().map((t) => loadTemplateOrThrow(t, process.cwd()).template);
}

/** The cache entries (folder names) the templates use. */
function knownEntries(ts: Template[]): Set<string> {
  return new Set(ts.map((t) => path.basename(path.dirname(imageLocation(t).disk))));
}

const KIND: Record<Leftover['kind'], string> = {
  'build-work': 'build cut short',
  'partial-download': 'partial download',
  'unknown-entry': 'no template names it',
};

function mib(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(bytes < 10 * 1024 ** 2 ? 1 : 0)} MiB`;
}

async function list(json: boolean): Promise<number> {
  const ts = templates();
  const images = ts.map((t) => {
    const loc = imageLocation(t);
    const cached = imageReady(t);
    // Not cached: it is built here, downloaded on first use, or gone for good.
    const status = cached
      ? 'cached'
      : 'unavailable' in t.image && t.image.unavailable
        ? 'unavailable'
        : 'missing';
    return {
      template: t.name,
      cached,
      status,
      disk: loc.disk,
      bytes: cached ? sizeOf(path.dirname(loc.disk)) : 0,
    };
  });
  const leftovers = await findLeftovers(knownEntries(ts));
  if (json) {
    process.stdout.write(`${JSON.stringify({ cache: cacheRoot(), images, leftovers }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    table([
      ['TEMPLATE', 'IMAGE', 'SIZE', 'PATH'],
      ...images.map((i) => [i.template, i.status, i.cached ? mib(i.bytes) : '-', i.disk]),
    ]),
  );
  if (leftovers.length === 0) {
    process.stdout.write(`\ncache ${cacheRoot()}: no leftovers\n`);
    return 0;
  }
  process.stdout.write(`\nleftovers in ${cacheRoot()}:\n`);
  process.stdout.write(
    table([
      ['WHAT', 'SIZE', 'STATE', 'PATH'],
      ...leftovers.map((l) => [
        KIND[l.kind],
        mib(l.bytes),
        l.inUse ? `in use: ${l.inUse}` : 'unused',
        l.path,
      ]),
    ]),
  );
  const free = leftovers.filter((l) => !l.inUse).reduce((n, l) => n + l.bytes, 0);
  if (free > 0) process.stdout.write(`lab image prune frees ${mib(free)}\n`);
  return 0;
}

async function prune(json: boolean, dryRun: boolean): Promise<number> {
  const leftovers = await findLeftovers(knownEntries(templates()));
  const removed = dryRun ? leftovers.filter((l) => !l.inUse) : await pruneLeftovers(leftovers);
  const kept = leftovers.filter((l) => l.inUse);
  if (json) {
    process.stdout.write(`${JSON.stringify({ dryRun, removed, kept }, null, 2)}\n`);
    return 0;
  }
  const verb = dryRun ? 'would remove' : 'removed';
  for (const l of removed) process.stdout.write(`${verb} ${l.path} (${KIND[l.kind]}, ${mib(l.bytes)})\n`);
  for (const l of kept) process.stdout.write(`kept ${l.path}: in use, ${l.inUse}\n`);
  const freed = removed.reduce((n, l) => n + l.bytes, 0);
  process.stdout.write(
    removed.length === 0 ? 'nothing to remove\n' : `${verb} ${removed.length}, ${mib(freed)}\n`,
  );
  return 0;
}

async function build(name: string, force: boolean): Promise<number> {
  const { template } = loadTemplateOrThrow(name, process.cwd());
  if (!('build' in template.image)) throw new UsageError(`template ${name} is downloaded, not built`);
  const entry = template.image.build;
  const dir = path.dirname(imageLocation(template).disk);
  if (!force) {
    const built = await verifiedBuild(entry);
    if (built) {
      process.stdout.write(
        `${name}: cached in ${dir}, built ${built}, every file matches its manifest: nothing to do (--force builds it again)\n`,
      );
      return 0;
    }
  } else {
    // The new build replaces the folder: overlays backed by the old disk would break.
    const users = overlaysOn(dir);
    if (users.length)
      throw new LabError(
        `${name}: ${users.length} lab disk(s) are backed by this image: ${users.join(', ')}`,
        {
          hint: 'lab down those labs first (lab image list shows the cache)',
        },
      );
  }
  const stop = interruptible('stopping the build and removing its work folder');
  try {
    const out = await buildImage(entry, {
      onEvent: plainEventPrinter({ debug: true }),
      signal: stop.signal,
    });
    process.stdout.write(`built ${name} into ${path.resolve(out)}\n`);
    return 0;
  } catch (err) {
    if (!stop.signal.aborted) throw err;
    const left = (await findLeftovers(knownEntries(templates()))).filter(
      (l) => l.kind === 'build-work' && path.basename(l.path).startsWith(`.${entry}.build.`),
    );
    process.stderr.write(
      left.length === 0
        ? `${stop.reason().message}: the build of ${name} stopped; no work folder is left\n`
        : `${stop.reason().message}: the build of ${name} stopped; left behind: ${left.map((l) => l.path).join(', ')} (lab image prune removes it)\n`,
    );
    return stop.reason().exitCode;
  } finally {
    stop.dispose();
  }
}
