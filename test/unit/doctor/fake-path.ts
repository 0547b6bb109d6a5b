// A PATH for the doctor's tests: a folder of symbolic links to this host's programs,
// leaving out the ones a test hides, and fake ones a test writes.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findProgram } from '../../../lab/doctor/doctor.js';
import { PROGRAMS } from '../../../lab/doctor/checks.js';

/** Every program the doctor looks for, as this host has them (the real PATH). */
export function hostPrograms(): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of PROGRAMS.flatMap((s) => s.programs)) {
    const found = findProgram([p], process.env.PATH);
    if (found) out.set(p, found);
  }
  return out;
}

/** A fresh bin folder linking every program the doctor looks for but `hide`. */
export function fakePath(parent: string, hide: string[] = []): string {
  const bin = mkdtempSync(path.join(parent, 'bin-'));
  for (const [name, file] of hostPrograms())
    if (!hide.includes(name)) symlinkSync(file, path.join(bin, name));
  return bin;
}

/** Writes an executable shell script `name` into `bin` (a link there is removed, never written through). */
export function writeProgram(bin: string, name: string, script: string): void {
  mkdirSync(bin, { recursive: true });
  rmSync(path.join(bin, name), { force: true });
  writeFileSync(path.join(bin, name), script);
  chmodSync(path.join(bin, name), 0o755);
}
