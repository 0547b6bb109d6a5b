import { getMaxListeners, setMaxListeners } from 'node:events';
import type { EventSink } from '../events.js';
import type { LabSpec, NodeSpec } from '../plan/model.js';
import { hostKey, userKey, type SshKeyPair } from '../plan/identity.js';
import { formatSeconds } from '../runtime/clock.js';
import { DEFAULT_VIRSH_RETRY, Virsh } from '../providers/virsh.js';
import { resolveUri } from '../providers/uri.js';
import { LabDir } from '../store/lab-dir.js';

/** What every command needs about one lab: where its files are and how to reach libvirt. */
export interface LabContext {
  lab: LabSpec;
  dir: LabDir;
  virsh: Virsh;
  onEvent: EventSink;
  signal?: AbortSignal;
}

/**
 * Listeners one node may hang on the command's signal at once (a virsh call, an SSH
 * connect, a probe, a poll's sleep, an agent exec...): each removes its own when done.
 */
const ABORT_LISTENERS_PER_NODE = 24;

export function labContext(lab: LabSpec, onEvent: EventSink, signal?: AbortSignal): LabContext {
  // Node's default of 10 listeners per signal warns (MaxListenersExceededWarning) on a
  // 5-node lab, where the nodes' work legitimately shares the one signal.
  if (signal)
    setMaxListeners(
      Math.max(getMaxListeners(signal), 10 + ABORT_LISTENERS_PER_NODE * lab.nodes.length),
      signal,
    );
  return {
    lab,
    dir: new LabDir(lab.name),
    virsh: new Virsh(resolveUri(lab.uri), signal, {
      ...DEFAULT_VIRSH_RETRY,
      // R24: a libvirtd restart under a running command is ridden out, and said.
      onRetry: ({ verb, error, elapsedMs, recovered }) =>
        onEvent({
          kind: 'log',
          level: 'warn',
          message: recovered
            ? `libvirt answered virsh ${verb} again after ${formatSeconds(elapsedMs)}`
            : `lost the connection to libvirt during virsh ${verb} (${error}); asking again`,
        }),
    }),
    onEvent,
    ...(signal ? { signal } : {}),
  };
}

export function sshTargetFor(
  lab: LabSpec,
  node: Pick<NodeSpec, 'name' | 'ip'>,
  secret: Buffer,
  user: SshKeyPair = userKey(secret, lab.name),
) {
  return {
    node: node.name,
    host: node.ip,
    user: lab.ssh.user,
    privateKey: user.privateKey,
    hostKey: hostKey(secret, lab.name, node.name).publicBlob,
  };
}
