// The public entry of the image cache: where a template's base image lives, and getting
// it there. The work is in lab/providers/images/: download.ts (lock, quarantine, checks),
// resumable-fetch.ts (HTTP with resume and limits), verify.ts (digest and signature),
// unpack.ts, quarantine.ts, build.ts (the template's build.sh).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LabError } from '../errors.js';
import { cacheRoot } from '../store/lab-dir.js';
import type { Template } from '../templates/schema.js';
import { buildImage } from './images/build.js';
import { downloadImage } from './images/download.js';
import type { DownloadOptions } from './images/options.js';

export { buildImage } from './images/build.js';
export { downloadImage } from './images/download.js';
export type { DownloadOptions } from './images/options.js';

/** A base image in the cache, ready to back overlays. */
export interface BaseImage {
  disk: string;
  format: 'qcow2' | 'raw';
  kernel?: string;
  initrd?: string;
}

/** Where a template's image lives in the cache (no I/O). */
export function imageLocation(template: Template): BaseImage {
  const boot = 'kernel' in template.boot ? template.boot : undefined;
  if ('build' in template.image) {
    const dir = path.join(cacheRoot(), template.image.build);
    return {
      disk: path.join(dir, 'disk.qcow2'),
      format: template.image.format,
      ...(boot
        ? {
            kernel: path.join(dir, boot.kernel),
            ...(boot.initrd ? { initrd: path.join(dir, boot.initrd) } : {}),
          }
        : {}),
    };
  }
  const dir = path.join(cacheRoot(), template.name);
  return { disk: path.join(dir, `disk.${template.image.format}`), format: template.image.format };
}

/** Whether every file of the template's image (disk, kernel, initrd) is in the cache. */
export function imageReady(template: Template): boolean {
  const loc = imageLocation(template);
  return [loc.disk, loc.kernel, loc.initrd].every((f) => f === undefined || existsSync(f));
}

/** Resolves the template's image into the cache: builds or downloads it when missing. */
export async function ensureImage(template: Template, opts: DownloadOptions): Promise<BaseImage> {
  const loc = imageLocation(template);
  if (imageReady(template)) return loc;
  if ('build' in template.image) {
    await buildImage(template.image.build, opts);
  } else {
    await downloadImage(template, loc.disk, opts);
  }
  if (!imageReady(template))
    throw new LabError(`image of template ${template.name} is still missing after preparing it`);
  return loc;
}
