// The failure drills against a fake virsh that keeps each domain's state and link in
// files: what each drill asks of libvirt, what it leaves, and that a name the lab does
// not own is refused before anything is asked.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { labContext } from '../../../lab/apply/context.js';
import { drillTargets, runDrill, type Drill } from '../../../lab/apply/drills.js';
import { BadInputError } from '../../../lab/errors.js';
import { ignoreEvents } from '../../../lab/events.js';
import { LAB_XMLNS } from '../../../lab/render/types.js';
import { assertMatchesSchema } from '../../support/json-schema.js';
import { labSpec } from '../../support/lab-spec.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-drills-'));
const log = path.join(dir, 'calls.log');
const lab = labSpec({ name: 'r' });
const [a, b] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
let savedPath: string | undefined;

const meta = (labName: string, node: string) =>
  `<domain type='qemu'><name>x</name><metadata><lab:node xmlns:lab='${LAB_XMLNS}'><lab:lab>${labName}</lab:lab><lab:node>${node}</lab:node></lab:node></metadata></domain>`;

/** The domains as libvirt would have them: state and link. */
function world(states: Record<string, string>, opts: { foreign?: string; acpiIgnored?: boolean } = {}) {
  rmSync(path.join(dir, 'state'), { recursive: true, force: true });
  rmSync(path.join(dir, 'link'), { recursive: true, force: true });
  rmSync(path.join(dir, 'xml'), { recursive: true, force: true });
  for (const sub of ['state', 'link', 'xml']) mkdirSync(path.join(dir, sub));
  for (const [domain, state] of Object.entries(states)) {
    writeFileSync(path.join(dir, 'state', domain), `${state}\n`);
    const node = lab.nodes.find((n) => n.domain === domain)!.name;
    writeFileSync(path.join(dir, 'xml', domain), meta(opts.foreign === domain ? 'other' : lab.name, node));
  }
  if (opts.acpiIgnored) writeFileSync(path.join(dir, 'acpi-ignored'), '');
  else rmSync(path.join(dir, 'acpi-ignored'), { force: true });
  writeFileSync(log, '');
}

const calls = () =>
  readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((c) => c.replace(/^-q -c \S+ /, ''));
const mutating = () => calls().filter((c) => !/^(list|domstate|dumpxml|domif-getlink) /.test(c));
const stateOf = (domain: string) => readFileSync(path.join(dir, 'state', domain), 'utf8').trim();

beforeAll(() => {
  const script = `#!/bin/sh
printf '%s\\n' "$*" >> ${log}
shift 3
verb=$1; shift
arg() { want=$1; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
D=$(arg --domain "$@")
S=${dir}/state
case $verb in
  list) for f in $S/*; do printf ' -    %s   %s\\n' "$(basename $f)" "$(cat $f)"; done ;;
  domstate) if [ -f $S/$D ]; then cat $S/$D; else echo "error: failed to get domain" >&2; exit 1; fi ;;
  dumpxml) cat ${dir}/xml/$D ;;
  destroy) echo 'shut off' > $S/$D ;;
  start) echo running > $S/$D ;;
  suspend) echo paused > $S/$D ;;
  resume) echo running > $S/$D ;;
  domtime) ;;
  shutdown) [ -f ${dir}/acpi-ignored ] || echo 'shut off' > $S/$D ;;
  domif-getlink) echo "$(arg --interface "$@") $(cat ${dir}/link/$D 2>/dev/null || echo up)" ;;
  domif-setlink) arg --state "$@" > ${dir}/link/$D ;;
  *) echo "fake virsh: $verb?" >&2; exit 9 ;;
esac
`;
  writeFileSync(path.join(dir, 'virsh'), script);
  chmodSync(path.join(dir, 'virsh'), 0o755);
  savedPath = process.env.PATH;
  process.env.PATH = `${dir}:${savedPath ?? ''}`;
});
afterAll(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

const ctx = () => labContext(lab, ignoreEvents);
async function drill(names: string[], d: Drill) {
  const c = ctx();
  const results = await runDrill(c, await drillTargets(c, names), d);
  return results.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
}

describe('failure drills', { timeout: 30_000 }, () => {
  beforeEach(() => world({ [a.domain]: 'running', [b.domain]: 'running' }));

  it('kill powers off at once; a second kill asks nothing more', async () => {
    const [out] = await drill([a.name], { kind: 'kill' });
    expect(out).toMatchObject({ node: a.name, before: 'running', after: 'shut off', did: 'powered off' });
    expect(mutating()).toEqual([`destroy --domain ${a.domain}`]);
    writeFileSync(log, '');
    const [again] = await drill([a.name], { kind: 'kill' });
    expect(again!.did).toMatch(/already shut off/);
    expect(mutating()).toEqual([]);
    expect(stateOf(b.domain)).toBe('running');
  });

  it('stop asks the guest through ACPI and does not power it off when it goes down in time', async () => {
    const [out] = await drill([a.name], { kind: 'stop', timeoutMs: 5_000 });
    expect(out!.did).toMatch(/^shut down by the guest \(ACPI\)/);
    expect(out!.after).toBe('shut off');
    expect(mutating()).toEqual([`shutdown --domain ${a.domain} --mode acpi`]);
  });

  it('stop powers off a guest that ignores its power button, after the deadline and not before', async () => {
    world({ [a.domain]: 'running', [b.domain]: 'running' }, { acpiIgnored: true });
    const t0 = performance.now();
    const [out] = await drill([a.name], { kind: 'stop', timeoutMs: 1_500 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1_400);
    expect(out!.did).toMatch(/did not shut down within 2 s/);
    expect(mutating()).toEqual([`shutdown --domain ${a.domain} --mode acpi`, `destroy --domain ${a.domain}`]);
    expect(stateOf(a.domain)).toBe('shut off');
  });

  it('pause, then resume: the clock is set after the resume', async () => {
    const [p] = await drill([a.name, b.name], { kind: 'pause' });
    expect(p!.after).toBe('paused');
    expect(stateOf(b.domain)).toBe('paused');
    writeFileSync(log, '');
    await drill([a.name], { kind: 'resume' });
    expect(mutating()).toEqual([`resume --domain ${a.domain}`, `domtime --domain ${a.domain} --now`]);
    expect(stateOf(b.domain)).toBe('paused');
  });

  it('start refuses a paused node (resume is the word) and starts a stopped one', async () => {
    world({ [a.domain]: 'paused', [b.domain]: 'shut off' });
    await expect(drill([a.name], { kind: 'start' })).rejects.toThrow(/paused, not stopped/);
    const [out] = await drill([b.name], { kind: 'start' });
    expect(out).toMatchObject({ before: 'shut off', after: 'running' });
  });

  it('link down then up goes through libvirt and reads back', async () => {
    const [down] = await drill([a.name], { kind: 'link', state: 'down' });
    expect(down).toMatchObject({ link: 'down', did: 'link down' });
    assertMatchesSchema('drill', JSON.parse(JSON.stringify([down])));
    expect(mutating()).toEqual([`domif-setlink --domain ${a.domain} --interface ${a.mac} --state down`]);
    const [up] = await drill([a.name], { kind: 'link', state: 'up' });
    expect(up!.link).toBe('up');
  });

  it('a link drill on a node that is not running is an error, not a silent success', async () => {
    world({ [a.domain]: 'shut off', [b.domain]: 'running' });
    await expect(drill([a.name], { kind: 'link', state: 'down' })).rejects.toThrow(/shut off, not running/);
    expect(mutating()).toEqual([]);
  });

  it('an unknown node, a node without a domain, or a domain of another lab: exit 2, nothing asked of any node', async () => {
    await expect(drill([a.name, 'ghost'], { kind: 'kill' })).rejects.toThrow(
      /no node "ghost" in lab r \(nodes: a, b\)/,
    );
    world({ [a.domain]: 'running' });
    const missing = drill([a.name, b.name], { kind: 'kill' });
    await expect(missing).rejects.toBeInstanceOf(BadInputError);
    await expect(drill([b.name], { kind: 'kill' })).rejects.toThrow(/has no domain/);
    world({ [a.domain]: 'running', [b.domain]: 'running' }, { foreign: b.domain });
    const foreign = drill([a.name, b.name], { kind: 'kill' });
    await expect(foreign).rejects.toThrow(/does not belong to lab r/);
    await expect(foreign).rejects.toMatchObject({ exitCode: 2 });
    expect(mutating()).toEqual([]);
    expect(stateOf(a.domain)).toBe('running');
  });
});
