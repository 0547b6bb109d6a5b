import { CommandError, run } from '../runtime/exec.js';

/** Spec versions upstream Ignition 2.14's `ignition-validate` reads (Debian 12's `ignition`). */
export const IGNITION_VALIDATE_VERSIONS = /^3\.[0-3]\.0$/;

/** One finding of ignition-validate: where in the config (a JSON path), and what. */
export interface IgnitionFinding {
  level: 'error' | 'warning';
  /** `$.storage.files.5.path` as ignition-validate prints it, split: storage, files, 5, path. */
  at: string[];
  message: string;
}

/**
 * `error at $.storage.files.1, line 1 col 104: duplicate entry defined` -> a finding.
 * Lines of another shape (a config it cannot parse) are errors about the whole config. Pure.
 */
export function parseIgnitionValidate(output: string): IgnitionFinding[] {
  const out: IgnitionFinding[] = [];
  for (const line of output.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const m = /^(error|warning) at \$((?:\.[^.,\s]+)*)(?:, line \d+ col \d+)?: (.*)$/.exec(t);
    if (m) out.push({ level: m[1] as 'error' | 'warning', at: m[2]!.split('.').slice(1), message: m[3]! });
    else out.push({ level: 'error', at: [], message: t });
  }
  return out;
}

/**
 * Runs upstream's `ignition-validate` on a rendered config (stdin). `undefined` when the
 * program is not installed (`apt install ignition`) or does not read the config's spec
 * version: the caller says so, it is not a finding.
 */
export async function ignitionValidate(config: string): Promise<IgnitionFinding[] | undefined> {
  const version = (JSON.parse(config) as { ignition?: { version?: string } }).ignition?.version ?? '';
  if (!IGNITION_VALIDATE_VERSIONS.test(version)) return undefined;
  try {
    const r = await run('ignition-validate', ['-'], { input: config, okExitCodes: [1], timeoutMs: 30_000 });
    return parseIgnitionValidate(`${r.stdout}\n${r.stderr}`);
  } catch (err) {
    if (err instanceof CommandError && /not found/.test(err.message)) return undefined;
    throw err;
  }
}
