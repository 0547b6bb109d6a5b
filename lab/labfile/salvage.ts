import type { PathKey } from './parse.js';
import type { Labfile } from './schema.js';

/**
 * A value of a Labfile the schema refused, now a placeholder. What the later checks say of
 * it (or of anything below it) is about the placeholder, not the user's text: resolveLab
 * leaves it out. `exact`: only what is said of the path itself, not of what is below it.
 */
export interface Unusable {
  path: PathKey[];
  exact?: boolean;
}

/** One refusal of the schema: the value's path; for an unknown key, the key and the one meant. */
export interface Refused {
  path: PathKey[];
  unknownKey?: string;
  meant?: string;
}

/** A Labfile the schema passes, made from a refused one, and which of its values are placeholders. */
export interface Salvaged {
  value: Labfile;
  unusable: Unusable[];
}

/** The template placeholder: resolveLab never looks up a reference that is unusable. */
const UNUSABLE_TEMPLATE = '(unusable)';

type Placeholder = (path: PathKey[], parent: Record<PathKey, unknown>, data: unknown) => unknown;

/**
 * What stands for a refused value the Labfile cannot do without, or whose absence a check
 * would read as a choice (no memory: the default, maybe less than the template needs).
 * Each is neutral, a check reading it passes: every address is in 0.0.0.0/0, 1TiB meets
 * any template's minimum, no services ask nothing of a template. By pattern, `*` for an
 * index. Any other refused value is optional: it is removed.
 */
const PLACEHOLDERS: Record<string, Placeholder> = {
  // The shortest lab name: no domain name is too long because of it.
  name: () => 'x',
  template: () => UNUSABLE_TEMPLATE,
  network: () => ({ mode: 'managed', cidr: '0.0.0.0/0' }),
  'network.mode': () => 'managed',
  'network.cidr': () => '0.0.0.0/0',
  'network.bridge': () => 'lab0',
  'etcd.discovery': () => 'http://unusable.invalid/',
  services: () => [],
  'defaults.cpus': () => 1,
  'defaults.memory': () => '1TiB',
  'defaults.disk': () => '1GiB',
  nodes: () => [],
  'nodes.*': ([, i], _, data) => ({ name: `unnamed-${i}`, ip: unusedIp(data), template: UNUSABLE_TEMPLATE }),
  'nodes.*.name': ([, i], n) => ('count' in n ? `unnamed-${i}-{n}` : `unnamed-${i}`),
  'nodes.*.ip': (_, __, data) => unusedIp(data),
  'nodes.*.count': () => 1,
  'nodes.*.template': () => UNUSABLE_TEMPLATE,
  'nodes.*.cpus': () => 1,
  'nodes.*.memory': () => '1TiB',
  'nodes.*.disk': () => '1GiB',
  'nodes.*.services': () => [],
  'nodes.*.files.*': ([, , , k]) => ({ path: `/unusable/${k}`, content: '' }),
  'nodes.*.files.*.path': ([, , , k]) => `/unusable/${k}`,
  'nodes.*.files.*.content': () => '',
  'units.*': ([, k]) => ({ name: `unusable-${k}.service`, content: '\n' }),
  'units.*.name': ([, k]) => `unusable-${k}.service`,
  'units.*.content': () => '\n',
  // A count goes with {n} in the name: without one, no count.
  'units.*.count': (_, u) => (typeof u.name === 'string' && u.name.includes('{n}') ? 1 : undefined),
};

/**
 * The refused Labfile `data` with every refused value replaced by a placeholder (or removed),
 * checked again by `check`; undefined when no such Labfile passes. A replaced value can
 * show the next refusal (an unknown key removed, a required one missing): a few rounds.
 */
export function salvageLabfile(
  data: unknown,
  refused: readonly Refused[],
  check: (data: unknown) => { ok: true; value: Labfile } | { ok: false; refusals: readonly Refused[] },
): Salvaged | undefined {
  const copy: unknown = structuredClone(data);
  const unusable: Unusable[] = [];
  let pending = refused;
  for (let round = 0; round < 4; round++) {
    for (const r of pending) if (!salvage(copy, r, unusable)) return undefined;
    const again = check(copy);
    if (again.ok) return { value: again.value, unusable };
    pending = again.refusals;
  }
  return undefined;
}

function salvage(data: unknown, r: Refused, unusable: Unusable[]): boolean {
  if (r.unknownKey === undefined) return replace(data, r.path, unusable);
  const at = valueAt(data, r.path);
  if (!isObject(at)) return false;
  delete at[r.unknownKey];
  // The key meant is refused with it when it is not there too (memroy: 4GiB: no memory).
  if (r.meant === undefined || Object.hasOwn(at, r.meant)) return true;
  return replace(data, [...r.path, r.meant], unusable);
}

/** Replaces the value at `path` (or the nearest enclosing one that can be); false when none can. */
function replace(data: unknown, path: PathKey[], unusable: Unusable[]): boolean {
  for (let n = path.length; n > 0; n--) {
    const at = path.slice(0, n);
    const key = at[n - 1]!;
    const parent = valueAt(data, at.slice(0, -1));
    const placeholder = PLACEHOLDERS[at.map((k) => (typeof k === 'number' ? '*' : k)).join('.')];
    // An item of a list without a placeholder: the list is replaced (or removed).
    if (!isObject(parent) || (!placeholder && typeof key === 'number')) continue;
    const value = placeholder?.(at, parent, data);
    if (value === undefined) delete parent[key];
    else parent[key] = value;
    unusable.push({ path: at });
    // A group's members take their addresses from its ip: what is said of those is said of the group.
    if (n === 3 && at[0] === 'nodes' && at[2] === 'ip' && 'count' in parent)
      unusable.push({ path: at.slice(0, 2), exact: true });
    return true;
  }
  return false;
}

/** An address no node is given (none a lab can use either): no node's is "already used" by it. */
function unusedIp(data: unknown): string {
  const nodes = valueAt(data, ['nodes']);
  const taken = new Set(Array.isArray(nodes) ? nodes.map((n) => valueAt(n, ['ip'])) : []);
  let i = 0;
  while (taken.has(`0.0.0.${i}`) && i < 255) i++;
  return `0.0.0.${i}`;
}

/** A mapping or a list of the YAML's data (binary data, a Uint8Array, is neither). */
function isObject(v: unknown): v is Record<PathKey, unknown> {
  return (
    Array.isArray(v) || (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
  );
}

function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  let cur = data;
  for (const k of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** True when `issuePath` (what an issue is about) speaks of an unusable value. */
export function aboutUnusable(unusable: readonly Unusable[], issuePath: readonly PathKey[]): boolean {
  return unusable.some(
    (u) =>
      (u.exact ? issuePath.length === u.path.length : issuePath.length >= u.path.length) &&
      u.path.every((k, i) => issuePath[i] === k),
  );
}
