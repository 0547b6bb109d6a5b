// Runs one downloadImage in its own process (locks and failpoints work across processes):
// argv[2] is JSON { template, target, options?, key? }. Prints each event as a JSON line,
// then { done, sha256 } or { error }.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { LabEvent } from '../../../lab/events.js';
import { downloadImage, type DownloadOptions } from '../../../lab/providers/images.js';
import type { TrustedKey } from '../../../lab/providers/signature.js';
import type { Template } from '../../../lab/templates/schema.js';

const job = JSON.parse(process.argv[2]!) as {
  template: Template;
  target: string;
  options?: Partial<DownloadOptions>;
  key?: TrustedKey;
};
const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
say({ started: process.pid });
try {
  await downloadImage(job.template, job.target, {
    ...job.options,
    onEvent: (event: LabEvent) => {
      if (event.kind !== 'progress') say({ event });
    },
    ...(job.key ? { trustedKey: () => job.key! } : {}),
  });
  say({ done: true, sha256: createHash('sha256').update(readFileSync(job.target)).digest('hex') });
} catch (err) {
  say({ error: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
}
