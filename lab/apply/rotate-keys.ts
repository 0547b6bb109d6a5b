/**
 * `lab rotate-keys`: a running lab gets a new login key and new SSH host keys, without a
 * moment where an unpinned key is accepted (S3).
 *
 * The keys derive from the lab's secret; a rotation is a new secret. Each node, over its
 * current connection (the old login key, the old host key pinned): the new login key is
 * added to authorized_keys, the new host key written and sshd reloaded. Then a second
 * connection with the new login key, pinning the new host key, must succeed; through it
 * the old login key is removed. Only when every node is done does the new secret become
 * the lab's (known_hosts, ssh_config and the key file follow), and each node's seed and
 * definition are made anew with the new keys (no reboot), so that `lab up` has nothing
 * to change and a later `lab reset` provisions the new keys.
 *
 * A rotation cut short keeps its new secret in `private/secret.next`: `lab up` refuses
 * until `lab rotate-keys` finishes it, which takes each node whose new keys already work
 * as done.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { LabError, describeError } from '../errors.js';
import { stopAgent } from '../guest/agent.js';
import { GuestSession } from '../guest/session.js';
import type { SshTarget } from '../guest/ssh-connect.js';
import { sleep } from '../runtime/clock.js';
import type { NodeSpec } from '../plan/model.js';
import { hostKey, userKey } from '../plan/identity.js';
import { writeSeedIso } from '../providers/iso.js';
import { renderNode, type DesiredNode } from '../render/node.js';
import type { DomainType } from '../render/types.js';
import { mapLimit } from '../runtime/limit.js';
import { writeAtomic } from '../store/lab-dir.js';
import { sshTargetFor, type LabContext } from './context.js';
import { prepare } from './prepare.js';
import { keepRendering } from './rendering.js';

export interface RotateResult {
  nodes: { node: string; result: 'rotated' | 'already rotated'; hostKey: string }[];
  /** The new login key's fingerprint. */
  userKey: string;
  ms: number;
}

const CONNECT = { timeoutMs: 30_000 };

/** Where a rotation in progress keeps its new secret. */
export const nextSecretFile = (ctx: Pick<LabContext, 'dir'>) => path.join(ctx.dir.private, 'secret.next');

/** The new secret of a rotation cut short, if there is one. */
export async function unfinishedRotation(ctx: Pick<LabContext, 'dir'>): Promise<Buffer | undefined> {
  const hex = (await readFile(nextSecretFile(ctx), 'utf8').catch(() => '')).trim();
  return /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

export async function rotateKeys(ctx: LabContext): Promise<RotateResult> {
  const started = performance.now();
  const old = await ctx.dir.secret(false);
  if (!old) throw new LabError(`lab ${ctx.lab.name} has no keys yet`, { hint: 'lab up makes them' });
  const prepared = await prepare(ctx, { buildImages: false, write: false });
  const down = prepared.plan.nodes.filter((p) => prepared.observed.get(p.node)?.state !== 'running');
  if (down.length)
    throw new LabError(
      `every node must run to get its new keys: ${down.map((p) => `${p.node} is ${prepared.observed.get(p.node)?.state ?? 'missing'}`).join(', ')}`,
      { hint: 'lab up first, then lab rotate-keys' },
    );
  // Written before any guest is touched: a rotation cut short is finished with the same keys.
  const next = (await unfinishedRotation(ctx)) ?? randomBytes(32);
  await writeAtomic(nextSecretFile(ctx), `${next.toString('hex')}\n`, 0o600);
  // Its kept connections use the old keys.
  await stopAgent(ctx.dir.private);
  const settled = await Promise.allSettled(ctx.lab.nodes.map((node) => rotateNode(ctx, node, old, next)));
  const failed = settled.flatMap((r, i) =>
    r.status === 'rejected' ? [`${ctx.lab.nodes[i]!.name}: ${describeError(r.reason)}`] : [],
  );
  if (failed.length)
    throw new LabError(`key rotation cut short: ${failed.join('; ')}`, {
      hint: 'lab rotate-keys again finishes it (the nodes done keep their new keys)',
    });
  // Every node logs in with the new keys only: they are the lab's now.
  await writeAtomic(ctx.dir.secretFile, `${next.toString('hex')}\n`, 0o600);
  await ctx.dir.writeAccessFiles(ctx.lab, next);
  await mapLimit(prepared.desired, 4, (d) => reprovision(ctx, d, next, prepared.accel.type));
  await rm(nextSecretFile(ctx), { force: true });
  return {
    nodes: settled.map((r, i) => ({
      node: ctx.lab.nodes[i]!.name,
      result: (r as PromiseFulfilledResult<'rotated' | 'already rotated'>).value,
      hostKey: hostKey(next, ctx.lab.name, ctx.lab.nodes[i]!.name).fingerprint,
    })),
    userKey: userKey(next, ctx.lab.name).fingerprint,
    ms: Math.round(performance.now() - started),
  };
}

/**
 * What a node would be provisioned with now holds the new host key: its seed, the copy
 * `lab plan` diffs against and the config hash in its definition follow (a define in
 * place; the guest runs on).
 */
export async function reprovision(
  ctx: Pick<LabContext, 'lab' | 'dir' | 'virsh' | 'onEvent' | 'signal'>,
  d: Pick<DesiredNode, 'spec' | 'paths'>,
  secret: Buffer,
  type: DomainType,
): Promise<void> {
  const now = renderNode({ lab: ctx.lab, node: d.spec, paths: d.paths, secret, type });
  if (now.paths.seed)
    await writeSeedIso(now.paths.seed, now.bundle.volumeLabel ?? 'cidata', now.bundle.files, ctx.signal);
  else if (now.paths.fwcfg)
    await writeAtomic(now.paths.fwcfg, Object.values(now.bundle.files)[0] ?? '', 0o600);
  await keepRendering(ctx, now, secret);
  await ctx.virsh.define(now.xml);
}

/** One node's keys, old to new; each connection pins the host key it expects. */
async function rotateNode(
  ctx: LabContext,
  node: NodeSpec,
  old: Buffer,
  next: Buffer,
): Promise<'rotated' | 'already rotated'> {
  const oldTarget = sshTargetFor(ctx.lab, node, old);
  const newTarget = sshTargetFor(ctx.lab, node, next);
  const oldUser = userKey(old, ctx.lab.name);
  const newUser = userKey(next, ctx.lab.name);
  const newHost = hostKey(next, ctx.lab.name, node.name);
  // Done by a rotation cut short: the new keys work already.
  let done = await GuestSession.connect(newTarget, CONNECT).catch(() => undefined);
  const already = done !== undefined;
  if (!done) {
    const s = await GuestSession.connect(oldTarget, CONNECT);
    try {
      await must(s, ['sh', '-c', ADD_KEY, 'add-key', newUser.publicKey], 'add the new login key');
      await must(
        s,
        ['sudo', '-n', 'install', '-m', '0600', '-o', 'root', '-g', 'root', '/dev/stdin', HOST_KEY],
        'write the new host key',
        newHost.privateKey,
      );
      await must(
        s,
        ['sudo', '-n', 'install', '-m', '0644', '-o', 'root', '-g', 'root', '/dev/stdin', `${HOST_KEY}.pub`],
        'write the new host key',
        `${newHost.publicKey}\n`,
      );
      await must(s, ['sudo', '-n', 'sh', '-c', RELOAD_SSHD], 'reload sshd');
    } finally {
      s.close();
    }
    // Pinned to the new host key, with the new login key: nothing else is accepted. sshd
    // re-executes itself on reload: for a moment it refuses connections, or the old
    // daemon still presents the old key (refused by the pin); asked again meanwhile.
    done = await connectWithin(newTarget, 30_000);
  }
  try {
    await must(
      done,
      ['sh', '-c', DROP_KEY, 'drop-key', oldUser.publicKey.split(' ')[1]!],
      'remove the old login key',
    );
  } finally {
    done.close();
  }
  return already ? 'already rotated' : 'rotated';
}

const HOST_KEY = '/etc/ssh/ssh_host_ed25519_key';
/** Adds $1 to the login user's authorized_keys unless it is there. */
export const ADD_KEY =
  'set -e; f="$HOME/.ssh/authorized_keys"; mkdir -p "$HOME/.ssh"; touch "$f"; chmod 600 "$f"; grep -qxF "$1" "$f" || printf "%s\\n" "$1" >>"$f"';
/** Removes every line of authorized_keys whose key blob is $1 (other keys stay). */
export const DROP_KEY =
  'set -e; f="$HOME/.ssh/authorized_keys"; awk -v b="$1" "{ keep = 1; for (i = 1; i <= NF; i++) if (\\$i == b) keep = 0 } keep" "$f" >"$f.new"; chmod 600 "$f.new"; mv "$f.new" "$f"';
/** sshd reads its host keys again (Debian's unit is ssh, others' sshd; a socket-activated one needs nothing). */
const RELOAD_SSHD =
  'systemctl reload ssh.service 2>/dev/null || systemctl reload sshd.service 2>/dev/null || systemctl is-active -q sshd.socket';

/** Connects (the host key pinned, always) until it succeeds or `ms` have passed. */
async function connectWithin(target: SshTarget, ms: number): Promise<GuestSession> {
  const deadline = Date.now() + ms;
  for (let wait = 250; ; wait = Math.min(wait * 2, 2000)) {
    try {
      return await GuestSession.connect(target, CONNECT);
    } catch (err) {
      if (Date.now() + wait > deadline) throw err;
      await sleep(wait);
    }
  }
}

async function must(s: GuestSession, argv: string[], what: string, input?: string): Promise<void> {
  const r = await s.exec(argv, { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
  if (r.code !== 0)
    throw new LabError(`${s.node}: could not ${what}: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`);
}
