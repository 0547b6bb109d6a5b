import { printable } from '../errors.js';
import type { CheckStatus, DoctorReport } from './checks.js';

const LABELS: Record<CheckStatus, string> = { ok: 'ok', fail: 'FAIL', warn: 'warn', skip: 'skip' };

/**
 * `lab doctor`'s text: a line per check (`ok    what: detail`), its fix below it, then the
 * counts and one apt-get line for every package a failed check names. Pure.
 */
export function formatReport(r: DoctorReport): string {
  const out: string[] = [];
  for (const c of r.checks) {
    // Details may quote a Labfile or a program's error output.
    out.push(`${LABELS[c.status].padEnd(6)}${printable(c.what)}: ${printable(c.detail)}`);
    if (c.status === 'ok') continue;
    if (c.package && c.status !== 'skip') out.push(`      fix: apt-get install ${c.package}`);
    if (c.hint && c.status !== 'skip') out.push(`      hint: ${printable(c.hint)}`);
  }
  const count = (s: CheckStatus) => r.checks.filter((c) => c.status === s).length;
  out.push(
    `${r.ok ? 'ok' : 'FAIL'}: ${count('ok')} ok, ${count('fail')} failed, ${count('warn')} warning(s), ${count('skip')} skipped`,
  );
  const packages = [
    ...new Set(r.checks.filter((c) => c.status === 'fail' && c.package).map((c) => c.package!)),
  ];
  if (packages.length > 1) out.push(`to install what is missing: apt-get install ${packages.join(' ')}`);
  return `${out.join('\n')}\n`;
}
