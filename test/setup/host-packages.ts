// The unit project's globalSetup (vitest.config.ts): before any test runs, the host programs
// the unit tests run for real are looked for on PATH, and when some are missing the run
// stops with one line naming their packages and the command that installs them. Without
// it, a fresh machine fails some twenty tests one by one, each with its own message.
// Dependency-free on purpose (node:fs and node:path): it runs before anything else.
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';

/** A program the unit tests run, its Debian package, and a test that runs it. */
export interface HostProgram {
  program: string;
  package: string;
  usedBy: string;
}

/**
 * The programs, with packages as scripts/install-host-deps.sh names them (`dpkg -S` on
 * Debian 12; gpg and gpgconf come with gnupg, /usr/bin/python3 with python3). Left out:
 * what Debian's essential and required packages always have (flock, prlimit, setpriv,
 * mount, bash, coreutils, dpkg-query), and what the tests fake (mmdebstrap).
 */
export const HOST_PROGRAMS: readonly HostProgram[] = [
  { program: 'qemu-img', package: 'qemu-utils', usedBy: 'test/unit/providers/images-format.test.ts' },
  { program: 'qemu-system-x86_64', package: 'qemu-system-x86', usedBy: 'test/unit/doctor/cli.test.ts' },
  { program: 'virsh', package: 'libvirt-clients', usedBy: 'test/unit/doctor/cli.test.ts' },
  { program: 'virt-xml-validate', package: 'libvirt-clients', usedBy: 'test/contract/validate.test.ts' },
  { program: 'xmllint', package: 'libxml2-utils', usedBy: 'test/contract/validate.test.ts' },
  { program: 'xorriso', package: 'xorriso', usedBy: 'test/unit/providers/iso.test.ts' },
  { program: 'mkfs.ext4', package: 'e2fsprogs', usedBy: 'test/unit/providers/image-build-interrupt.test.ts' },
  { program: 'gpg', package: 'gnupg', usedBy: 'test/unit/providers/signature.test.ts' },
  { program: 'gpgconf', package: 'gnupg', usedBy: 'test/unit/providers/signature.test.ts' },
  { program: 'gpgv', package: 'gpgv', usedBy: 'test/unit/providers/signature.test.ts' },
  { program: 'xz', package: 'xz-utils', usedBy: 'test/unit/providers/images-format.test.ts' },
  { program: 'bzip2', package: 'bzip2', usedBy: 'test/unit/providers/images-format.test.ts' },
  // test/contract/tools/cloud-init-schema.sh runs cloud-init with the distribution's python3.
  { program: '/usr/bin/python3', package: 'python3', usedBy: 'test/contract/validate.test.ts' },
  { program: 'strace', package: 'strace', usedBy: 'test/unit/providers/images-processes.test.ts' },
  { program: 'pgrep', package: 'procps', usedBy: 'test/unit/runtime/exec.test.ts' },
];

const ROOT = path.join(import.meta.dirname, '../..');
export const INSTALL_SCRIPT = 'scripts/install-host-deps.sh';

/** Whether `program` (a name looked for in PATH's absolute folders, or an absolute path) can run. */
export function hasProgram(program: string, pathEnv: string): boolean {
  const candidates = path.isAbsolute(program)
    ? [program]
    : pathEnv
        .split(path.delimiter)
        .filter((d) => path.isAbsolute(d))
        .map((d) => path.join(d, program));
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The packages whose programs are missing, each once, in the table's order. */
export function missingPackages(pathEnv: string, programs: readonly HostProgram[] = HOST_PROGRAMS): string[] {
  return [...new Set(programs.filter((p) => !hasProgram(p.program, pathEnv)).map((p) => p.package))];
}

/** The packages the install script installs: its `pkgs=( ... )` list. */
export function scriptPackages(scriptText: string): string[] {
  const list = /^pkgs=\(([^)]*)\)/m.exec(scriptText)?.[1];
  if (list === undefined) throw new Error(`${INSTALL_SCRIPT}: no pkgs=( ... ) list in it`);
  return list.split(/\s+/).filter(Boolean);
}

/**
 * The one line to print when packages are missing, else undefined. The install script is
 * the command when it installs them all; a package it lacks is named to apt-get beside it.
 */
export function missingPackagesLine(
  missing: readonly string[],
  installable: readonly string[],
): string | undefined {
  if (missing.length === 0) return undefined;
  const other = missing.filter((p) => !installable.includes(p));
  const commands = [
    ...(other.length < missing.length ? [`sudo bash ${INSTALL_SCRIPT}`] : []),
    ...(other.length ? [`sudo apt-get install ${other.join(' ')}`] : []),
  ];
  return `lab tests: missing host packages: ${missing.join(' ')} — install them with: ${commands.join(' && ')}`;
}

/**
 * vitest's globalSetup: the one line on stderr, then exit 1, before any test file runs.
 * Not a throw: vitest would print it as an "Unhandled Error" after "No test files found".
 */
export default function setup(): void {
  const missing = missingPackages(process.env.PATH ?? '');
  if (missing.length === 0) return;
  const script = readFileSync(path.join(ROOT, INSTALL_SCRIPT), 'utf8');
  process.stderr.write(`${missingPackagesLine(missing, scriptPackages(script))}\n`);
  process.exit(1);
}
