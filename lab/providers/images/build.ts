import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { HostError, LabError } from '../../errors.js';
import type { EventSink } from '../../events.js';
import { spawnProgram } from '../../runtime/exec.js';
import { cacheRoot } from '../../store/lab-dir.js';
import { templatesDir } from '../../templates/load.js';

/** Runs vm-templates/NAME/build.sh into the cache (mmdebstrap; needs root and Debian mirrors). */
export async function buildImage(
  name: string,
  opts: { onEvent: EventSink; signal?: AbortSignal },
): Promise<string> {
  const script = path.join(templatesDir(), name, 'build.sh');
  if (!existsSync(script)) throw new LabError(`template image ${name} has no build script (${script})`);
  const out = path.join(cacheRoot(), name);
  await mkdir(path.dirname(out), { recursive: true, mode: 0o755 });
  opts.onEvent({
    kind: 'log',
    level: 'info',
    message: `building image ${name} into ${out} (a few minutes; needs Debian mirrors)`,
  });
  const child = spawnProgram('bash', [script, out], {
    all: true,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    stdin: 'ignore',
    timeout: 40 * 60_000,
  });
  for await (const line of child.iterable({ from: 'all' })) {
    opts.onEvent({ kind: 'log', level: 'debug', message: `image ${name}: ${String(line)}` });
  }
  const r = await child;
  if (r.exitCode !== 0)
    throw new HostError(`building image ${name} failed (exit ${r.exitCode ?? 'signal'})`, {
      hint: `run bash ${script} ${out} to see the whole output`,
    });
  return out;
}
