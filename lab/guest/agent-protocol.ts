/**
 * What the connection agent (agent.ts) and its clients share: the files in the lab's
 * private folder, and the JSON documents, one per line, they exchange over the socket.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { HttpRequest, HttpTo } from './http-over-ssh.js';
import type { SshTarget } from './ssh-connect.js';

/** An SshTarget as JSON: the host key blob in base64. */
export interface WireTarget {
  node: string;
  host: string;
  port?: number;
  user: string;
  privateKey: string;
  /** base64 of the pinned host key blob. */
  hostKey: string;
}

/** A client's request, one verb per op. */
export type Request =
  | { id: number; op: 'connect'; target: WireTarget; timeoutMs: number }
  | {
      id: number;
      op: 'exec';
      target: WireTarget;
      argv: string[];
      timeoutMs?: number;
      input?: string;
    }
  | { id: number; op: 'http'; target: WireTarget; to: HttpTo; request: HttpRequest }
  | { id: number; op: 'read'; target: WireTarget; file: string; timeoutMs?: number }
  | { id: number; op: 'list'; target: WireTarget; dir: string; timeoutMs?: number };

/** A request before the client numbers it. */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** A failure as the agent reports it: enough to rebuild a NodeError or name a host key mismatch. */
export interface WireError {
  message: string;
  node?: string;
  step?: string;
  mismatch?: boolean;
}

/** The agent's answer to the request with the same id. */
export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: WireError };

/** Socket paths are limited to 107 bytes; a deeper lab folder goes without the agent. */
export const MAX_SOCKET_PATH = 100;

/**
 * The protocol's version, in the socket's name: a client talks only to an agent of its own
 * version (one left running by an older lab, up to its idle time, is not asked what it
 * does not know). 2: `read` and `list` (SFTP).
 */
export const PROTOCOL = 2;

/** The agent's socket and pid file in a lab's private folder (version 1 had no number). */
export function agentPaths(privateDir: string, version = PROTOCOL) {
  const base = version === 1 ? 'agent' : `agent-v${version}`;
  return { socket: path.join(privateDir, `${base}.sock`), pid: path.join(privateDir, `${base}.pid`) };
}

/** The PID in an agent pid file; undefined when there is none or it is not a PID. */
export function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** An SshTarget as it crosses the socket. */
export const wire = (t: SshTarget): WireTarget => ({
  node: t.node,
  host: t.host,
  ...(t.port !== undefined ? { port: t.port } : {}),
  user: t.user,
  privateKey: t.privateKey,
  hostKey: t.hostKey.toString('base64'),
});
