import { InterruptedError, TerminatedError } from '../lab/errors.js';
import { killChildren } from '../lab/runtime/exec.js';

/** What a command does with Ctrl-C and SIGTERM while it works. */
export interface Interruptible {
  /** Aborted at the first signal, with an InterruptedError (130) or TerminatedError (143). */
  signal: AbortSignal;
  /** The reason of the abort, once aborted. */
  reason: () => InterruptedError;
  /** Stops listening (the command's work is over). */
  dispose(): void;
}

/**
 * The first SIGINT or SIGTERM asks the work to stop cleanly (`what` says how) and aborts
 * `signal`; a second ends lab at once, and every program it runs (killChildren).
 */
export function interruptible(what: string): Interruptible {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      killChildren();
      process.exit(sig === 'SIGTERM' ? 143 : 130);
    }
    process.stderr.write(`${sig}: ${what} (again to stop at once)\n`);
    controller.abort(
      sig === 'SIGTERM' ? new TerminatedError('terminated (SIGTERM)') : new InterruptedError('interrupted'),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    reason: () => controller.signal.reason as InterruptedError,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
