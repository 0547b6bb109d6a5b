import { COREOS_CLOUDINIT_KEYS } from './coreos-cloudinit-keys.js';
import { absolutePathProblem } from './schema.js';

/** A problem in a user's cloud-config fragment, at a path inside the fragment. */
export interface FragmentProblem {
  path: (string | number)[];
  message: string;
  /** A warning is repaired (a dashed key rewritten); an error refuses the Labfile. */
  severity: 'error' | 'warning';
}

// Sections below the top level: the ones coreos-cloudinit reads, and the item shapes.
const SECTIONS: Record<string, readonly string[]> = {
  ...COREOS_CLOUDINIT_KEYS,
  top: ['coreos', 'hostname', 'manage_etc_hosts', 'ssh_authorized_keys', 'users', 'write_files'],
  coreos: ['etcd', 'etcd2', 'fleet', 'flannel', 'locksmith', 'oem', 'update', 'units'],
  dropin: ['name', 'content'],
};
/** Which section a key's value is read as: a map, or a list of maps. */
const CHILD: Record<string, { section: string; list: boolean }> = {
  'top.coreos': { section: 'coreos', list: false },
  'top.users': { section: 'user', list: true },
  'top.write_files': { section: 'file', list: true },
  'coreos.units': { section: 'unit', list: true },
  'unit.drop_ins': { section: 'dropin', list: true },
  ...Object.fromEntries(
    ['etcd', 'etcd2', 'fleet', 'flannel', 'locksmith', 'oem', 'update'].map((s) => [
      `coreos.${s}`,
      { section: s, list: false },
    ]),
  ),
};

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const UNIT_NAME_RE =
  /^[a-zA-Z0-9_][a-zA-Z0-9:_.@-]{0,200}\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Values coreos-cloudinit turns into file names and permissions: a unit or drop-in name
 * becomes a file under /etc/systemd, a write_files path a file anywhere. Checked as
 * lab's own `files:` are, so a fragment is no way around them.
 */
const VALUE_CHECKS: Record<string, (v: unknown) => string | undefined> = {
  'top.hostname': (v) =>
    typeof v === 'string' && HOSTNAME_RE.test(v) ? undefined : `hostname ${quote(v)} is not a hostname`,
  'file.path': (v) => {
    if (typeof v !== 'string') return `write_files path must be a string, not ${quote(v)}`;
    const problem = absolutePathProblem(v);
    return problem ? `write_files path ${quote(v)} ${problem}` : undefined;
  },
  'file.permissions': (v) =>
    typeof v === 'string' && /^0{0,2}[0-7]{3}$/.test(v)
      ? undefined
      : `write_files permissions ${quote(v)}: expected an octal mode such as "0644" (no setuid, setgid or sticky bit)`,
  'file.owner': (v) =>
    typeof v === 'string' && /^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/.test(v)
      ? undefined
      : `write_files owner ${quote(v)}: expected user or user:group`,
  'unit.name': (v) =>
    typeof v === 'string' && UNIT_NAME_RE.test(v)
      ? undefined
      : `unit name ${quote(v)} is not a systemd unit name such as hello.service`,
  'dropin.name': (v) =>
    typeof v === 'string' && /^[a-zA-Z0-9_][a-zA-Z0-9:_.@-]{0,200}\.conf$/.test(v)
      ? undefined
      : `drop-in name ${quote(v)} is not a drop-in file name such as 10-lab.conf`,
  'user.name': (v) =>
    typeof v === 'string' && USER_RE.test(v) ? undefined : `user name ${quote(v)} is not a user name`,
};

function quote(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? 'a value';
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : quote(v);
}

/**
 * Checks a user's cloud-config fragment against the keys coreos-cloudinit reads and
 * returns it in the spelling the parser reads: Flatcar's reads underscores only and
 * ignores dashed keys silently, so `reboot-strategy` becomes `reboot_strategy` with a
 * warning (the historical CoreOS parser read both: no warning there). A key neither
 * spelling knows is an error: it would be ignored. Pure.
 */
export function checkCloudConfigFragment(
  fragment: Record<string, unknown>,
  parser: 'flatcar' | 'coreos',
): { value: Record<string, unknown>; problems: FragmentProblem[] } {
  const problems: FragmentProblem[] = [];
  const walk = (value: Record<string, unknown>, section: string, at: (string | number)[]) => {
    const allowed = SECTIONS[section] ?? [];
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      let name = key;
      if (!allowed.includes(key)) {
        const underscored = key.replaceAll('-', '_');
        if (key.includes('-') && allowed.includes(underscored)) {
          name = underscored;
          if (parser === 'flatcar')
            problems.push({
              path: [...at, key],
              severity: 'warning',
              message: `Flatcar's coreos-cloudinit reads ${underscored}, not ${key} (it ignores dashed keys): written as ${underscored}`,
            });
        } else {
          problems.push({
            path: [...at, key],
            severity: 'error',
            message: `coreos-cloudinit reads no key ${key} here (it reads: ${allowed.join(', ')})`,
          });
          continue;
        }
      }
      const error = (path: (string | number)[], message: string) =>
        problems.push({ path, severity: 'error', message });
      const child = CHILD[`${section}.${name}`];
      const check = VALUE_CHECKS[`${section}.${name}`];
      const problem = check?.(v);
      if (problem) error([...at, key], problem);
      if (child && !child.list && isMap(v)) out[name] = walk(v, child.section, [...at, key]);
      else if (child?.list && Array.isArray(v))
        out[name] = v.map((item: unknown, i) => {
          if (isMap(item)) return walk(item, child.section, [...at, key, i]);
          error([...at, key, i], `${name}[${i}]: expected a mapping, got ${kind(item)}`);
          return item;
        });
      else {
        if (child && v !== null)
          error([...at, key], `${name}: expected ${child.list ? 'a list' : 'a mapping'}, got ${kind(v)}`);
        out[name] = v;
      }
    }
    return out;
  };
  return { value: walk(fragment, 'top', []), problems };
}

/** The fragment over the rendered config: maps merge, lists append, the fragment's scalars win. */
export function mergeCloudConfig(
  base: Record<string, unknown>,
  extra: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    if (isMap(b) && isMap(v)) out[k] = mergeCloudConfig(b, v);
    else if (Array.isArray(b) && Array.isArray(v)) out[k] = [...(b as unknown[]), ...(v as unknown[])];
    else out[k] = v;
  }
  return out;
}
