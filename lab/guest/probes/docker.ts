import type { Exec, ExecResult } from './exec.js';

export interface DockerHealth {
  /** `absent`: no docker binary; `down`: the daemon does not answer. */
  state: 'up' | 'down' | 'absent';
  /** The server's version, e.g. `20.10.24+dfsg1`. */
  version?: string;
  containersRunning?: number;
  error?: string;
}

/** The image the run check imports, and what its container must print. */
export const LOCAL_IMAGE = 'lab/busybox:local';
const RUN_MARKER = 'lab-docker-ok';

// As the lab user through sudo -n: never prompts, fails at once if sudo wants a password.
const DOCKER = ['sudo', '-n', 'docker'];

function failure(result: ExecResult): string {
  const text = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' | ');
  return `exit code ${result.code}${text ? `: ${text}` : ''}`;
}

/**
 * Parses `docker info --format '{{json .}}'`. The daemon is up when it reports a server
 * version and no ServerErrors (docker prints the client half even when the daemon is down). Pure.
 */
export function parseDockerInfo(stdout: string): DockerHealth {
  const line = stdout.split('\n').find((l) => l.trim().startsWith('{'));
  if (!line)
    return {
      state: 'down',
      error: stdout.trim() ? `unexpected docker info output: ${stdout.trim().slice(0, 200)}` : 'no output',
    };
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { state: 'down', error: `docker info printed invalid JSON: ${line.slice(0, 200)}` };
  }
  const serverErrors = Array.isArray(info.ServerErrors) ? info.ServerErrors.map(String) : [];
  const version =
    typeof info.ServerVersion === 'string' && info.ServerVersion ? info.ServerVersion : undefined;
  if (serverErrors.length || !version) {
    return { state: 'down', error: serverErrors.join('; ') || 'docker info reports no server version' };
  }
  const running = info.ContainersRunning;
  return { state: 'up', version, ...(typeof running === 'number' ? { containersRunning: running } : {}) };
}

/** The version in the Engine's `Server` header, `Docker/20.10.24+dfsg1 (linux)`. Pure. */
export function dockerServerVersion(server: string | undefined): string | undefined {
  return server ? /^Docker\/([^\s/]+)/.exec(server)?.[1] : undefined;
}

/**
 * The daemon's health from `/_ping` (its `Server` header names the version) and
 * `/containers/json` (the running ones): 0.1-0.2 s under TCG where `/info`, which
 * gathers every driver's state, took 0.6-1.8 s on five busy guests. Undefined when the
 * answers do not say enough (then /info is asked).
 */
async function probeDockerPing(http: NonNullable<Exec['http']>): Promise<DockerHealth | undefined> {
  const sock = { socket: '/var/run/docker.sock' };
  const ping = await http(sock, { method: 'GET', path: '/_ping', timeoutMs: 15_000 }).catch(() => undefined);
  const version = ping?.status === 200 ? dockerServerVersion(ping.headers?.server) : undefined;
  if (!version) return undefined;
  const list = await http(sock, { method: 'GET', path: '/containers/json', timeoutMs: 15_000 }).catch(
    () => undefined,
  );
  if (list?.status !== 200) return undefined;
  let running: unknown;
  try {
    running = JSON.parse(list.body);
  } catch {
    return undefined;
  }
  if (!Array.isArray(running)) return undefined;
  return { state: 'up', version, containersRunning: running.length };
}

/** Is docker installed, and does its daemon answer? */
export async function probeDocker(exec: Exec): Promise<DockerHealth> {
  if (exec.http) {
    // The Engine API on its socket (the lab user is in the docker group): no process started.
    const fast = await probeDockerPing(exec.http.bind(exec));
    if (fast) return fast;
    const r = await exec
      .http({ socket: '/var/run/docker.sock' }, { method: 'GET', path: '/info', timeoutMs: 15_000 })
      .catch(() => undefined);
    if (r?.status === 200) return parseDockerInfo(r.body);
  }
  const which = await exec.exec(['sh', '-c', 'command -v docker'], { timeoutMs: 10_000 });
  if (which.code !== 0) return { state: 'absent' };
  const r = await exec.exec([...DOCKER, 'info', '--format', '{{json .}}'], { timeoutMs: 30_000 });
  const health = parseDockerInfo(r.stdout);
  if (health.state === 'up' && r.code !== 0) return { state: 'down', error: failure(r) };
  if (health.state === 'down' && r.code !== 0 && !r.stdout.includes('ServerErrors'))
    health.error = failure(r);
  return health;
}

/**
 * Runs a container without a registry: the guest has no DNS (FINDINGS §5), so the image is
 * `docker import`ed from a rootfs tarball already in the guest, once. `ok` when the
 * container printed the marker.
 */
export async function dockerRunCheck(
  exec: Exec,
  localImageTar: string,
): Promise<{ ok: boolean; imported: boolean; detail: string }> {
  let imported = false;
  // Generous timeouts: on an emulated guest sharing a busy host, one docker CLI call
  // took over 30 s (measured with six TCG guests on two cores).
  const inspect = await exec.exec([...DOCKER, 'image', 'inspect', '--format', '{{.Id}}', LOCAL_IMAGE], {
    timeoutMs: 180_000,
  });
  if (inspect.code !== 0) {
    const imp = await exec.exec([...DOCKER, 'import', localImageTar, LOCAL_IMAGE], { timeoutMs: 300_000 });
    if (imp.code !== 0)
      return { ok: false, imported, detail: `docker import ${localImageTar}: ${failure(imp)}` };
    imported = true;
  }
  // The first run takes about 10 s under TCG (FINDINGS §5).
  const run = await exec.exec([...DOCKER, 'run', '--rm', LOCAL_IMAGE, 'echo', RUN_MARKER], {
    timeoutMs: 300_000,
  });
  if (run.code !== 0) return { ok: false, imported, detail: `docker run: ${failure(run)}` };
  if (!run.stdout.split('\n').some((l) => l.trim() === RUN_MARKER)) {
    return {
      ok: false,
      imported,
      detail: `docker run printed ${JSON.stringify(run.stdout.trim().slice(0, 200))}, not ${RUN_MARKER}`,
    };
  }
  return { ok: true, imported, detail: `${LOCAL_IMAGE} printed ${RUN_MARKER}` };
}
