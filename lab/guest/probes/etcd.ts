import { LabError } from '../../errors.js';
import type { Exec, ExecResult } from './exec.js';

/** The local member's client URL: every node runs etcd on its own loopback. */
export const ETCD_ENDPOINT = 'http://127.0.0.1:2379';

// Debian's etcd 3.4 speaks v3 by default; ETCDCTL_API pins it whatever the image says.
// `env` in argv: sshd drops most environment requests.
const ETCDCTL = [
  'env',
  'ETCDCTL_API=3',
  'etcdctl',
  '--endpoints',
  ETCD_ENDPOINT,
  '--dial-timeout',
  '2s',
  '--command-timeout',
  '3s',
];
const TIMEOUT_MS = 15_000;

export type EtcdState = 'leader' | 'follower' | 'unhealthy' | 'down';

/** `etcdctl endpoint status`, ids in hex as its table prints them. */
export interface EtcdStatus {
  state: EtcdState;
  memberId?: string;
  /** Absent when the member knows no leader. */
  leaderId?: string;
  raftTerm?: number;
  raftIndex?: number;
  version?: string;
  dbSize?: number;
  isLearner?: boolean;
  /** Why the state is not leader/follower. */
  error?: string;
}

export interface EtcdMember {
  id: string;
  /** Empty until the member has started (etcdctl's table says "unstarted"). */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface EtcdHealth extends EtcdStatus {
  /** How many members the cluster has, started or not. */
  members?: number;
  /** Their names, sorted; an unstarted member as `unstarted:<id>`. */
  memberNames?: string[];
}

/**
 * JSON.parse that keeps big integers exact: etcdctl -w json prints uint64 ids as JSON
 * numbers, which JSON.parse rounds (FINDINGS G9). Integers of 15 or more digits are quoted
 * first, so they arrive as strings. Pure.
 */
export function parseJsonKeepingBigInts(text: string): unknown {
  // Strings are matched first and kept as they are, so digits inside them are never touched.
  const quoted = text.replace(/"(?:[^"\\]|\\.)*"|(?<![\w.+-])-?\d{15,}(?![\w.])/g, (m) =>
    m.startsWith('"') ? m : `"${m}"`,
  );
  return JSON.parse(quoted) as unknown;
}

/** A uint64 (JSON number or quoted decimal) as lowercase hex, as etcdctl's table shows; 0 or missing -> undefined. */
export function etcdIdHex(value: unknown): string | undefined {
  let n: bigint;
  if (typeof value === 'string' && /^\d+$/.test(value)) n = BigInt(value);
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) n = BigInt(value);
  else return undefined;
  return n === 0n ? undefined : n.toString(16);
}

function num(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return undefined;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** Parses `etcdctl endpoint status -w json` for one endpoint. Pure. */
export function parseEtcdEndpointStatus(stdout: string): EtcdStatus {
  const doc = parseJsonKeepingBigInts(stdout);
  const entry = record(Array.isArray(doc) ? (doc as unknown[])[0] : doc);
  const status = record(entry?.Status);
  if (!status)
    throw new LabError(`etcdctl endpoint status: no status in its output: ${stdout.slice(0, 200)}`);
  const header = record(status.header);
  const memberId = etcdIdHex(header?.member_id);
  const leaderId = etcdIdHex(status.leader);
  const errors = Array.isArray(status.errors) ? status.errors.map(String) : [];
  const out: EtcdStatus = { state: 'unhealthy' };
  if (memberId) out.memberId = memberId;
  if (leaderId) out.leaderId = leaderId;
  const raftTerm = num(status.raftTerm) ?? num(header?.raft_term);
  if (raftTerm !== undefined) out.raftTerm = raftTerm;
  const raftIndex = num(status.raftIndex);
  if (raftIndex !== undefined) out.raftIndex = raftIndex;
  if (typeof status.version === 'string') out.version = status.version;
  const dbSize = num(status.dbSize);
  if (dbSize !== undefined) out.dbSize = dbSize;
  if (status.isLearner === true) out.isLearner = true;
  if (errors.length)
    out.error = errors.join('; '); // alarms, e.g. NOSPACE
  else if (!leaderId) out.error = 'no leader';
  else if (!memberId) out.error = 'no member id in the status';
  else out.state = leaderId === memberId ? 'leader' : 'follower';
  return out;
}

/** Parses `etcdctl member list -w json`. Pure. */
export function parseEtcdMemberList(stdout: string): EtcdMember[] {
  const doc = record(parseJsonKeepingBigInts(stdout));
  if (!doc || !Array.isArray(doc.members)) {
    throw new LabError(`etcdctl member list: no members in its output: ${stdout.slice(0, 200)}`);
  }
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
  return (doc.members as unknown[]).map((m) => {
    const member = record(m) ?? {};
    return {
      id: etcdIdHex(member.ID) ?? '0',
      name: typeof member.name === 'string' ? member.name : '',
      peerUrls: strings(member.peerURLs),
      clientUrls: strings(member.clientURLs),
      isLearner: member.isLearner === true,
    };
  });
}

function failure(result: ExecResult): string {
  const text = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' | ');
  return `exit code ${result.code}${text ? `: ${text}` : ''}`;
}

/**
 * The local etcd member: its role, then the cluster's members. `down` when etcdctl fails
 * (refused, timed out, absent); `unhealthy` when it answers without a leader.
 */
export async function probeEtcd(exec: Exec): Promise<EtcdHealth> {
  if (exec.http) {
    const viaApi = await probeEtcdApi(exec as Required<Exec>).catch((err: unknown) => err as Error);
    if (!(viaApi instanceof Error)) return viaApi;
    // Nothing listens on 2379: etcd is down. Anything else (forwarding refused): use etcdctl.
    if (/connection refused|connect failed/i.test(viaApi.message))
      return { state: 'down', error: 'nothing listens on 127.0.0.1:2379' };
  }
  const r = await exec.exec([...ETCDCTL, 'endpoint', 'status', '-w', 'json'], { timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) return { state: 'down', error: failure(r) };
  const health: EtcdHealth = parseEtcdEndpointStatus(r.stdout);
  if (health.state !== 'leader' && health.state !== 'follower') return health;
  const m = await exec.exec([...ETCDCTL, 'member', 'list', '-w', 'json'], { timeoutMs: TIMEOUT_MS });
  if (m.code !== 0) return { ...health, error: `member list: ${failure(m)}` };
  const members = parseEtcdMemberList(m.stdout);
  health.members = members.length;
  health.memberNames = members.map((x) => x.name || `unstarted:${x.id}`).sort();
  return health;
}

/** One call to etcd's v3 JSON gateway on the node's loopback, through SSH. */
async function etcdApi(exec: Required<Exec>, path: string, body: Record<string, unknown>): Promise<unknown> {
  const r = await exec.http(
    { port: 2379 },
    { method: 'POST', path, body: JSON.stringify(body), timeoutMs: TIMEOUT_MS },
  );
  if (r.status !== 200) throw new LabError(`etcd ${path}: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  // The gateway sends uint64s as decimal strings: exact, no BigInt trick needed.
  return JSON.parse(r.body) as unknown;
}

/** Status and members from the gateway (`/v3/maintenance/status`, `/v3/cluster/member/list`). */
export async function probeEtcdApi(exec: Required<Exec>): Promise<EtcdHealth> {
  const [status, list] = await Promise.all([
    etcdApi(exec, '/v3/maintenance/status', {}),
    etcdApi(exec, '/v3/cluster/member/list', {}),
  ]);
  // Same fields as `etcdctl endpoint status -w json` has under "Status".
  const health: EtcdHealth = parseEtcdEndpointStatus(JSON.stringify([{ Status: status }]));
  if (health.state !== 'leader' && health.state !== 'follower') return health;
  const members = parseEtcdMemberList(JSON.stringify(list));
  health.members = members.length;
  health.memberNames = members.map((x) => x.name || `unstarted:${x.id}`).sort();
  return health;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** `etcdctl put KEY VALUE` (v3) on the node's local member. Throws on failure. */
export async function etcdPut(exec: Exec, key: string, value: string): Promise<void> {
  if (exec.http) {
    await etcdApi(exec as Required<Exec>, '/v3/kv/put', { key: b64(key), value: b64(value) });
    return;
  }
  // `--` so a key or value starting with "-" is not read as a flag.
  const r = await exec.exec([...ETCDCTL, 'put', '--', key, value], { timeoutMs: TIMEOUT_MS });
  if (r.code !== 0 || r.stdout.trim() !== 'OK') throw new LabError(`etcdctl put ${key}: ${failure(r)}`);
}

/** `etcdctl get --print-value-only KEY` (v3); undefined when the key does not exist. Throws on failure. */
export async function etcdGet(exec: Exec, key: string): Promise<string | undefined> {
  if (exec.http) {
    const r = (await etcdApi(exec as Required<Exec>, '/v3/kv/range', { key: b64(key) })) as {
      kvs?: { value?: string }[];
    };
    const v = r.kvs?.[0]?.value;
    return r.kvs?.length ? Buffer.from(v ?? '', 'base64').toString('utf8') : undefined;
  }
  const r = await exec.exec([...ETCDCTL, 'get', '--print-value-only', '--', key], { timeoutMs: TIMEOUT_MS });
  if (r.code !== 0) throw new LabError(`etcdctl get ${key}: ${failure(r)}`);
  // A missing key prints nothing; a present one prints its value and a newline (even when empty).
  return r.stdout === '' ? undefined : r.stdout.replace(/\n$/, '');
}
