import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LabError } from '../lab/errors.js';
import { LABFILE_NAMES } from '../lab/spec/load.js';
import { observeCommands } from '../lab/runtime/exec.js';

/** A usage mistake: exit 2, with the command's help as the hint. */
export class UsageError extends LabError {
  override exitCode = 2;
}

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON: Options = {
  file: { type: 'string', short: 'f' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/** Parses a command's flags; `--help` prints `help` and returns undefined. */
export interface Flags {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parseFlags(
  argv: string[],
  options: Options,
  help: string,
  allowPositionals = true,
): Flags | undefined {
  let parsed: Flags;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...COMMON, ...options },
      allowPositionals,
      strict: true,
    }) as Flags;
  } catch (err) {
    throw new UsageError((err as Error).message, { hint: help.split('\n')[0] });
  }
  if (parsed.values.help) {
    process.stdout.write(help);
    return undefined;
  }
  if (parsed.values.debug) {
    observeCommands((argv, r) =>
      process.stderr.write(
        r.detached
          ? `debug: ${argv.join(' ')} -> started, detached\n`
          : `debug: ${argv.join(' ')} -> ${r.exitCode} (${Math.round(r.ms)} ms)\n`,
      ),
    );
  }
  return parsed;
}

/** The Labfile to use: -f, else Labfile.yaml (or .yml) in the current folder. */
export function labfilePath(file: unknown): string {
  if (typeof file === 'string') return file;
  const found = LABFILE_NAMES.find((n) => existsSync(n));
  if (!found) throw new UsageError('no Labfile.yaml in this folder', { hint: 'pass one with -f FILE' });
  return found;
}
