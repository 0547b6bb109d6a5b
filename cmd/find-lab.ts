/**
 * Which lab a command is about, as git finds its repository: `-f FILE`, `--lab NAME` (the
 * Labfile its state recorded), a Labfile in the current folder or a parent, `LAB_FILE`, the
 * one lab made from a Labfile of this folder, and (for commands that only read) the one
 * lab on this host. A Labfile found by walking up that belongs to another user is refused:
 * anyone may plant one in /tmp.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { LabError } from '../lab/errors.js';
import { LAB_NAME_RE } from '../lab/labfile/schema.js';
import { LABFILE_NAMES } from '../lab/spec/load.js';
import { labStates } from '../lab/store/known-labs.js';
import { UsageError } from './usage-error.js';

/** A lab this user has on this host, from its state file. */
export interface KnownLab {
  name: string;
  /** The Labfile it was last brought up from (absolute), when recorded. */
  labfile?: string;
}

/** The labs under the state root that have a readable state file, by name. */
export function knownLabs(): KnownLab[] {
  return labStates().map(({ name, state }) => ({
    name,
    ...(state.labfile ? { labfile: state.labfile } : {}),
  }));
}

/** The Labfile in `dir` or the nearest parent, or undefined. */
export function labfileAbove(dir: string): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    for (const name of LABFILE_NAMES) {
      const f = path.join(d, name);
      if (isFile(f)) return f;
    }
    if (path.dirname(d) === d) return undefined;
  }
}

function isFile(f: string): boolean {
  try {
    return statSync(f).isFile();
  } catch {
    return false;
  }
}

/** The Labfile a command uses; `reads`: the command only reads a lab (the only lab will do). */
export function findLabfile(
  values: { file?: unknown; lab?: unknown },
  opts: { reads?: boolean; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  if (typeof values.file === 'string') {
    if (typeof values.lab === 'string') throw new UsageError('give either -f FILE or --lab NAME, not both');
    return values.file;
  }
  if (typeof values.lab === 'string') return recordedLabfile(values.lab);
  const above = labfileAbove(cwd);
  if (above) {
    const owner = statSync(above).uid;
    const me = process.getuid?.() ?? owner;
    if (owner !== me && owner !== 0)
      throw new LabError(
        `${above} belongs to uid ${owner}, not to you: lab does not use a Labfile another user could have put there`,
        { hint: `if you trust it, name it: -f ${above}` },
      );
    return path.relative(cwd, above) || above;
  }
  if (env.LAB_FILE) return env.LAB_FILE;
  const labs = knownLabs();
  const here = labs.filter(
    (l) => l.labfile && isWithin(cwd, path.dirname(l.labfile)) && existsSync(l.labfile),
  );
  if (here.length === 1) return here[0]!.labfile!;
  if (opts.reads && labs.length === 1 && labs[0]!.labfile && existsSync(labs[0]!.labfile))
    return labs[0]!.labfile;
  const where = `no Labfile.yaml in ${cwd} or a parent folder, and LAB_FILE is not set`;
  const candidates = here.length > 1 ? here : labs;
  if (candidates.length === 0) throw new UsageError(where, { hint: 'pass one with -f FILE' });
  throw new UsageError(
    `${where}; ${here.length > 1 ? 'labs made from this folder' : 'labs on this host'}: ${candidates
      .map((l) => `${l.name}${l.labfile ? ` (${l.labfile})` : ''}`)
      .join(', ')}`,
    { hint: 'name one: --lab NAME, or -f FILE' },
  );
}

/** The Labfile lab NAME was last brought up from. */
export function recordedLabfile(name: string): string {
  if (!LAB_NAME_RE.test(name))
    throw new UsageError(`--lab ${JSON.stringify(name)}: not a lab name (lowercase letters, digits and -)`);
  const lab = knownLabs().find((l) => l.name === name);
  if (!lab) {
    const names = knownLabs().map((l) => l.name);
    throw new UsageError(`no lab ${name} on this host${names.length ? ` (labs: ${names.join(', ')})` : ''}`, {
      hint: names.length ? 'lab status --lab NAME with one of them' : 'lab up -f FILE makes one',
    });
  }
  if (!lab.labfile || !existsSync(lab.labfile))
    throw new LabError(
      lab.labfile
        ? `lab ${name} was brought up from ${lab.labfile}, which is gone`
        : `lab ${name} has no recorded Labfile (brought up by an older lab)`,
      { hint: 'name its Labfile: -f FILE (the next lab up records it)' },
    );
  return lab.labfile;
}

const isWithin = (dir: string, ancestor: string) =>
  dir === ancestor || dir.startsWith(ancestor.endsWith(path.sep) ? ancestor : ancestor + path.sep);
