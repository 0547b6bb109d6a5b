import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // A missing or different golden fails, in CI and out of it: vitest would otherwise
    // write a missing one and pass outside CI. `npm run golden:update` rewrites them (-u).
    update: 'none',
    projects: [
      {
        test: {
          name: 'unit',
          // Stops the run before any test when a host program the tests run is missing,
          // with one line naming the packages and the command that installs them.
          globalSetup: ['test/setup/host-packages.ts'],
          include: [
            'test/unit/**/*.test.ts',
            'test/golden/**/*.test.ts',
            'test/contract/**/*.test.ts',
            'test/ui/**/*.test.tsx',
          ],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // One booted lab is shared by the read-only tests: run files one after another.
          fileParallelism: false,
          // Sized from measured times (2 cores, TCG; scripts/test-summary.ts prints them
          // per file): a test that repeats a scenario (soak, concurrent) sets its own, per
          // round; every other one ends well within 10 min, a hook (a lab up) within 15.
          testTimeout: 10 * 60_000,
          hookTimeout: 15 * 60_000,
        },
      },
    ],
  },
});
