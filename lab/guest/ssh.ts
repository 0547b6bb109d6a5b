/**
 * SSH to lab nodes with pinned host keys. This module gathers the public API of the parts:
 * host-key.ts (pinning), ssh-connect.ts (login), session.ts (GuestSession: commands, HTTP,
 * `lab ssh`), terminal.ts (interactive sessions), wait-for-ssh.ts (the wait for a booting
 * node) and shell-quote.ts (argv for the remote shell).
 */
export { HostKeyMismatchError, fingerprintOf } from './host-key.js';
export type { HttpRequest, HttpResponse, HttpTo } from './http-over-ssh.js';
export { GuestSession, type GuestExecOptions, type GuestExecResult } from './session.js';
export { shellQuote } from './shell-quote.js';
export type { ConnectOptions, SshTarget } from './ssh-connect.js';
export type { TerminalIo } from './terminal.js';
export { waitForSsh, type WaitForSshOptions } from './wait-for-ssh.js';
