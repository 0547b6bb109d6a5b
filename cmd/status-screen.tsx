import { render } from 'ink';
import type { StatusMonitor } from '../lab/apply/monitor.js';
import { describeError } from '../lab/errors.js';
import { StatusApp } from '../lab/ui/status/StatusApp.js';

/**
 * The live `lab status` screen. Loaded only by `lab status` in a terminal, so ink and react
 * stay out of every other command's start-up. `s` leaves the screen for a shell on the
 * selected node and comes back to it, selection kept, when the shell exits.
 */
export async function runStatusScreen(monitor: StatusMonitor): Promise<number> {
  const color = !process.env.NO_COLOR;
  let selected = 0;
  await monitor.start();
  monitor.run();
  try {
    for (;;) {
      let shellFor: string | undefined;
      const app = render(
        <StatusApp
          source={monitor}
          color={color}
          initialSelected={selected}
          onShell={(node, index) => {
            shellFor = node;
            selected = index;
          }}
        />,
      );
      await app.waitUntilExit();
      if (!shellFor) return 0;
      process.stdout.write(`lab: a shell on ${shellFor}; exit it to come back to the status screen\n`);
      // ink unref'd stdin when it let go of the terminal; the shell reads it now.
      process.stdin.ref();
      try {
        await monitor.shell(shellFor);
      } catch (err) {
        process.stderr.write(`lab: shell on ${shellFor}: ${describeError(err)}\n`);
      }
    }
  } finally {
    monitor.stop();
  }
}
