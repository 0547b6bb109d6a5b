import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from '../lab/apply/locking.js';
import { observeCommands } from '../lab/runtime/exec.js';
import { findLabfile } from './find-lab.js';
import { didYouMean } from './suggest.js';
import { UsageError } from './usage-error.js';

export { UsageError };

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON: Options = {
  file: { type: 'string', short: 'f' },
  lab: { type: 'string' },
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
    throw new UsageError(usageMessage(err as Error & { code?: string }, { ...COMMON, ...options }), {
      hint: `${help.split('\n')[0]} (more: --help)`,
    });
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

/**
 * The Labfile to use (find-lab.ts): -f, --lab NAME, the current folder or a parent,
 * LAB_FILE, the lab made from this folder; `reads`: also the only lab on this host.
 * Takes the parsed flags (or, as before, the value of -f alone).
 */
export function labfilePath(flags: unknown, opts: { reads?: boolean } = {}): string {
  const values = flags !== null && typeof flags === 'object' ? (flags as Flags['values']) : { file: flags };
  return findLabfile(values, opts);
}

/** A command's own words, and the command it runs after `--` (lab ssh, lab exec). */
export function splitAtDashes(argv: string[]): { own: string[]; command: string[] } {
  const dash = argv.indexOf('--');
  return dash >= 0 ? { own: argv.slice(0, dash), command: argv.slice(dash + 1) } : { own: argv, command: [] };
}

/** A positive duration flag (`--timeout 30s`), or `fallbackMs` when it is not given. */
export function durationFlag(name: string, value: unknown, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const ms = typeof value === 'string' ? parseDuration(value) : undefined;
  if (ms === undefined || ms <= 0)
    throw new UsageError(`--${name} ${JSON.stringify(value)}: expected a duration such as 30s or 10m`);
  return ms;
}

/** node:util parseArgs's error, said the way lab says usage errors, with a suggestion. */
function usageMessage(err: Error & { code?: string }, options: Options): string {
  const flags = Object.entries(options).flatMap(([name, o]) => [
    `--${name}`,
    ...(o.short ? [`-${o.short}`] : []),
  ]);
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const opt = /'([^']+)'/.exec(err.message)?.[1] ?? '';
      return `unknown option ${opt}${didYouMean(opt, flags)}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const word = /'([^']*)'/.exec(err.message)?.[1] ?? '';
      return `unexpected argument ${JSON.stringify(word)}: this command takes none`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const opt = /--[a-z-]+/.exec(err.message)?.[0] ?? '';
      return /does not take/.test(err.message) ? `${opt} takes no value` : `${opt} needs a value`;
    }
    default:
      return err.message;
  }
}
