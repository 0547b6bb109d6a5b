/**
 * Quotes argv for the remote POSIX shell: every word in single quotes, `'` as `'\''`.
 * sshd runs the command through the user's shell, so this is the only way an argument
 * reaches the guest unchanged.
 */
export function shellQuote(argv: readonly string[]): string {
  return argv
    .map((arg) => {
      // A NUL cannot cross a shell command line: refuse rather than truncate.
      if (arg.includes('\0')) throw new TypeError('shellQuote: argument contains a NUL byte');
      return `'${arg.replaceAll("'", `'\\''`)}'`;
    })
    .join(' ');
}
