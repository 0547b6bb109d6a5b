import { readdirSync, readFileSync } from 'node:fs';
import { LAB_NAME_RE } from '../labfile/schema.js';
import { LabDir, stateRoot } from './lab-dir.js';
import { parseState, type LabState } from './state-file.js';

/**
 * Every lab under this user's state root with a readable state file (or its backup), by
 * name: what `--lab NAME`, completion, ssh-config and `lab list` know of the labs here.
 */
export function labStates(): { name: string; state: LabState }[] {
  let names: string[];
  try {
    names = readdirSync(stateRoot());
  } catch {
    return [];
  }
  return names
    .filter((n) => LAB_NAME_RE.test(n))
    .flatMap((name) => {
      const file = new LabDir(name).stateFile;
      const state = parseState(readText(file) ?? '') ?? parseState(readText(`${file}.bak`) ?? '');
      return state ? [{ name, state }] : [];
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
