import { formatIssue } from '../lab/errors.js';
import type { LabEvent } from '../lab/events.js';
import type { LabSpec } from '../lab/plan/model.js';

/** What lab repaired in the Labfile (a dashed cloud-config key), on stderr, located. */
export function printWarnings(lab: LabSpec): void {
  for (const w of lab.warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
}

/** Plain, timestamped progress lines on stderr: readable in CI logs and pipes. */
export function plainEventPrinter(opts: { debug: boolean }) {
  const t0 = Date.now();
  let lastProgress = 0;
  return (e: LabEvent) => {
    const ts = `[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s]`;
    if (e.kind === 'log') {
      if (e.level === 'debug' && !opts.debug) return;
      process.stderr.write(`${ts} ${e.level === 'warn' ? 'warning: ' : ''}${e.message}\n`);
    } else if (e.kind === 'node') {
      if (e.status === 'skip' && !opts.debug) return;
      const detail = e.detail ? ` (${e.detail})` : '';
      process.stderr.write(`${ts} ${e.node.padEnd(12)} ${String(e.step).padEnd(9)} ${e.status}${detail}\n`);
    } else if (Date.now() - lastProgress > 2000 || (e.total !== undefined && e.done === e.total)) {
      lastProgress = Date.now();
      const pct = e.total ? ` ${((100 * e.done) / e.total).toFixed(0)}%` : '';
      process.stderr.write(`${ts} ${e.step}: ${(e.done / 1024 ** 2).toFixed(1)} MiB${pct}\n`);
    }
  };
}

/** A fixed-width table: columns padded to their widest cell. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') +
    '\n'
  );
}
