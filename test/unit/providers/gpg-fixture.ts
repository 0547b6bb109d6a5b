// Throwaway OpenPGP keys for the signature tests: each in its own GNUPGHOME under the
// test's temp dir, no passphrase, its gpg-agent stopped afterwards.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../../lab/runtime/exec.js';

/** Fails (never skips) the calling test file when gpg or gpgv is missing. */
export async function requireGpg(): Promise<void> {
  for (const [tool, pkg] of [
    ['gpg', 'gnupg'],
    ['gpgv', 'gpgv'],
    ['gpgconf', 'gnupg'],
  ] as const) {
    try {
      await run(tool, ['--version'], { timeoutMs: 10_000 });
    } catch (err) {
      throw new Error(
        `${tool} is needed by the image-signature tests: apt-get install ${pkg} (scripts/install-host-deps.sh installs it)`,
        { cause: err },
      );
    }
  }
}

export interface TestKey {
  fingerprint: string;
  /** The armored public key, as vm-templates/keys/ holds one. */
  publicKey: string;
  /** Writes a detached binary signature of `file` to `out`. */
  sign(file: string, out: string): Promise<void>;
}

/** A temp folder for keys, with a cleanup that stops every agent started in it. */
export function gpgWorkspace(): { dir: string; makeKey: typeof makeKey; cleanup: () => Promise<void> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-gpgtest-'));
  const homes: string[] = [];
  let n = 0;
  return {
    dir,
    makeKey: (uid, opts) => {
      const home = path.join(dir, `home${n++}`);
      homes.push(home);
      return makeKey(uid, { ...opts, home });
    },
    cleanup: async () => {
      for (const home of homes)
        await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { timeoutMs: 10_000 }).catch(
          () => undefined,
        );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * An ed25519 signing key. `fakedTime` (gpg's YYYYMMDDTHHMMSS) makes it and its signatures
 * at that moment, so with a short `expire` the key has expired by now.
 */
async function makeKey(
  uid: string,
  opts: { home?: string; expire?: string; fakedTime?: string } = {},
): Promise<TestKey> {
  const home = opts.home ?? mkdtempSync(path.join(os.tmpdir(), 'lab-gpgtest-'));
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const gpg = (args: string[]) =>
    run(
      'gpg',
      [
        '--homedir',
        home,
        '--batch',
        '--yes',
        '--passphrase',
        '',
        '--pinentry-mode',
        'loopback',
        ...(opts.fakedTime ? ['--faked-system-time', opts.fakedTime] : []),
        ...args,
      ],
      { timeoutMs: 60_000 },
    );
  await gpg(['--quick-gen-key', uid, 'ed25519', 'sign', opts.expire ?? 'never']);
  const listing = (await gpg(['--list-keys', '--with-colons'])).stdout;
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listing)?.[1];
  if (!fingerprint) throw new Error(`no fingerprint in gpg --list-keys output:\n${listing}`);
  const publicKey = (await gpg(['--export', '--armor', fingerprint])).stdout;
  return {
    fingerprint,
    publicKey,
    sign: async (file, out) => {
      await gpg(['--local-user', fingerprint, '--detach-sign', '--output', out, file]);
    },
  };
}
