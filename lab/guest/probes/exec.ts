/** What a probe needs from a guest: run argv, get output and exit code. GuestSession is one; tests pass fakes. */
export interface Exec {
  /** `input` is written to the command's stdin, then EOF. */
  exec(argv: string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /**
   * An HTTP request to a guest service through the SSH connection (GuestSession has it):
   * probes prefer it, as it starts no process in the guest, and fall back to commands.
   */
  http?(
    to: { port: number } | { socket: string },
    request: { method: string; path: string; body?: string; timeoutMs?: number },
  ): Promise<{ status: number; body: string; headers?: Record<string, string> }>;
  /**
   * A file of the guest, read over SFTP on the same connection (GuestSession has it): no
   * command, no shell. Rejects when the file cannot be read or the server has no SFTP.
   */
  readFile?(file: string, opts?: { timeoutMs?: number }): Promise<string>;
  /** The names of the regular files in a guest folder (not links, not folders), over SFTP. */
  listFiles?(dir: string, opts?: { timeoutMs?: number }): Promise<string[]>;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}
