// Takes the lock given as argv[2] (argv[3] `shared` for a host-wide one) and reports:
// `hold` (argv[4]) says `held` on stdout and waits until killed; `try` prints the outcome
// as one JSON line and exits. The lock tests run it as other users (setpriv).
import { acquireLock } from '../../../lab/store/lock.js';

const [file, kind, mode = 'hold'] = process.argv.slice(2);
try {
  const lock = await acquireLock(file!, 'lab t', { shared: kind === 'shared' });
  if (mode === 'try') {
    await lock.release();
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
    process.exit(0);
  }
  process.stdout.write('held\n');
  setInterval(() => {}, 60_000);
} catch (err) {
  const e = err as Error & { exitCode?: number };
  process.stdout.write(
    `${JSON.stringify({ ok: false, name: e.constructor.name, message: e.message, exitCode: e.exitCode })}\n`,
  );
  process.exit(mode === 'try' ? 0 : 1);
}
