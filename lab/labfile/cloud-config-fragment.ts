import { COREOS_CLOUDINIT_KEYS } from './coreos-cloudinit-keys.js';

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
      const child = CHILD[`${section}.${name}`];
      if (child && !child.list && isMap(v)) out[name] = walk(v, child.section, [...at, key]);
      else if (child?.list && Array.isArray(v))
        out[name] = v.map((item: unknown, i) =>
          isMap(item) ? walk(item, child.section, [...at, key, i]) : item,
        );
      else out[name] = v;
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
