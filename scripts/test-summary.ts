// tsx scripts/test-summary.ts REPORT.json... — from vitest JSON reports: a line per e2e
// file with its duration and results, then one closing line "tests: N passed, N failed,
// N skipped". A skipped e2e test is a failed promise, so CI reads the skipped count too.
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of process.argv.slice(2)) {
  const r = JSON.parse(readFileSync(file, 'utf8')) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests?: number;
    testResults?: {
      name: string;
      startTime?: number;
      endTime?: number;
      assertionResults?: { status: string }[];
    }[];
  };
  for (const t of r.testResults ?? []) {
    if (!/\/test\/e2e\//.test(t.name) || t.startTime === undefined || t.endTime === undefined) continue;
    const count = (s: string) => (t.assertionResults ?? []).filter((a) => a.status === s).length;
    console.log(
      `e2e ${((t.endTime - t.startTime) / 1000).toFixed(0).padStart(5)} s  ${t.name.slice(t.name.indexOf('test/e2e/'))}  (${count('passed')} passed, ${count('failed')} failed)`,
    );
  }
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
