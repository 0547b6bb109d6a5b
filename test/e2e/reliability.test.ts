// Reliability and security, on a real libvirtd and a real TCG guest: bad input creates
// nothing, a foreign domain is refused and left alone, lab up killed (SIGKILL) at every
// step converges on the next run, deadlines name the node and phase, the lock names its
// holder and never blocks status, Ctrl-C stops cleanly, the pinned host key is enforced,
// secrets stay out of output and state, and down (even without state) leaves nothing.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LAB,
  inventory,
  lab,
  rounds,
  statusJson,
  virsh,
  writeLabfile,
  type LabRun,
  type StatusJson,
} from './helpers.js';
import { bridgeLabfile } from '../support/e2e-labfile.js';
import { mutating, ok, shimDir, shimEnv, shimmed } from './checkpoints.js';
import { hostKey } from '../../lab/plan/identity.js';

/**
 * A fresh ed25519 key pair that is not the lab's. Made the way lab makes host keys (node's
 * crypto): ssh2's generateKeyPairSync('ed25519') makes about 1 key in 256 that ssh2 itself
 * cannot parse (it strips a leading zero byte of the public key; mscdex/ssh2#1390, #1513),
 * which failed this suite once ("Malformed OpenSSH private key").
 */
const impostorKey = () => hostKey(randomBytes(32), 'impostor', 'r1');

const NAME = 'e2erel';
const NODE = 'r1';
const IP = '10.77.0.61';
const DOMAIN = `${NAME}-${NODE}`;
const file = writeLabfile(
  bridgeLabfile({ name: NAME, services: '[etcd, docker]', nodes: `  - { name: ${NODE}, ip: ${IP} }\n` }),
);
const stateRoot = process.env.LAB_STATE_DIR ?? '/var/lib/lab';
const labDir = path.join(stateRoot, NAME);
const priv = path.join(labDir, 'private');

/** Every output of every lab run here: none may carry a secret. */
const outputs: string[] = [];
async function run(args: string[], env?: Record<string, string>): Promise<LabRun> {
  const r = await lab(args, env ? { env } : {});
  outputs.push(r.stdout, r.stderr);
  return r;
}

/** lab up killed at a failpoint (it must die by SIGKILL there), the shims counting what it did. */
async function upKilledAt(point: string) {
  const shim = shimEnv({ LAB_FAILPOINT: point, CI: '1' });
  const r = await execa('node', [LAB, 'up', '-f', file], {
    reject: false,
    stdin: 'ignore',
    env: shim.env,
    timeout: 10 * 60_000,
  });
  outputs.push(String(r.stdout), String(r.stderr));
  process.stderr.write(
    `\n$ LAB_FAILPOINT=${point} lab up -> ${r.signal ?? r.exitCode}\n${String(r.stderr)}\n`,
  );
  return { r, calls: mutating(shim.calls()) };
}

/** Files of the lab that are not its disk, seed, state, keys or logs: temporary ones left behind. */
function leftovers(): string[] {
  const known =
    /^(disks\/[a-z0-9-]+(\.qcow2|-seed\.iso)|private\/(secret|id_ed25519(\.pub)?|known_hosts|ssh_config|state\.json(\.bak)?|checkpoints\.json(\.bak)?|agent(-v[0-9]+)?\.(sock|pid)|rendered\/[a-z0-9-]+\.json)|console\/[a-z0-9-]+\.log)$/;
  const walk = (dir: string, rel = ''): string[] =>
    existsSync(dir)
      ? readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? walk(path.join(dir, e.name), `${rel}${e.name}/`) : [`${rel}${e.name}`],
        )
      : [];
  return walk(labDir).filter((f) => !known.test(f));
}

function stateJson(): { version: number; serial: number; nodes: Record<string, { step: string }> } {
  return JSON.parse(readFileSync(path.join(priv, 'state.json'), 'utf8')) as never;
}

const mode = (f: string) => statSync(f).mode & 0o777;

describe('reliability and security of one lab on real libvirt', () => {
  let baseline: Awaited<ReturnType<typeof inventory>>;
  // The user's own known_hosts: lab never writes it (its pins live in the lab folder).
  const userKnownHosts = path.join(os.homedir(), '.ssh', 'known_hosts');
  const knownHostsNow = () => (existsSync(userKnownHosts) ? readFileSync(userKnownHosts, 'utf8') : 'absent');
  const knownHostsBefore = knownHostsNow();
  // The shared base image: read-only, and the same bytes after the whole lifecycle (S13).
  const base = path.join(process.env.LAB_CACHE_DIR ?? '/var/cache/lab/images', 'debian-12-lab', 'disk.qcow2');
  const sha256 = async (f: string) => String((await execa('sha256sum', [f])).stdout).split(' ')[0];
  const baseBefore = sha256(base);
  let faults = 0;

  afterAll(async () => {
    await lab(['down', '--lab', NAME]);
    process.stderr.write(`\nreliability: ${faults} fault injections\n`);
  });

  it('every bad or hostile Labfile and template: exit 2, file:line:col, no stack trace, nothing created', async () => {
    baseline = await inventory(NAME);
    const { badCases } = await import('../fixtures/bad/cases.js');
    const cases = badCases();
    expect(cases.length).toBeGreaterThanOrEqual(100);
    const before = await inventory('');
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < cases.length) {
          const c = cases[next++]!;
          const r = await execa('node', [LAB, 'up', '-f', c.labfile], { reject: false, stdin: 'ignore' });
          const first = String(r.stderr).split('\n')[0] ?? '';
          if (r.exitCode !== 2) failures.push(`${c.name}: exit ${r.exitCode}`);
          else if (!/^[^:\s][^:]*:\d+:\d+: /.test(first)) failures.push(`${c.name}: first line "${first}"`);
          else if (/^\s+at /m.test(String(r.stderr))) failures.push(`${c.name}: stack trace`);
        }
      }),
    );
    expect(failures).toEqual([]);
    // Nothing anywhere: no domain, no network, no lab folder.
    expect(await inventory('')).toEqual(before);
    process.stderr.write(`\nreliability: ${cases.length} bad inputs, each exit 2 with file:line:col\n`);
  });

  it('a foreign domain with a node name is refused before anything is written, and left intact', async () => {
    const foreignXml = `<domain type='qemu'><name>${DOMAIN}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>`;
    const xmlFile = path.join(path.dirname(file), 'foreign.xml');
    writeFileSync(xmlFile, foreignXml);
    await virsh(['define', xmlFile]);
    const before = await virsh(['dumpxml', DOMAIN]);
    try {
      const r = await run(['up', '-f', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`refusing to touch ${DOMAIN}: .*without this lab's metadata`));
      expect(await virsh(['dumpxml', DOMAIN])).toBe(before);
      expect(existsSync(labDir)).toBe(false);
      // down does not take it either: it finds domains by metadata, not by name.
      const d = await run(['down', '-f', file]);
      expect(d.code).toBe(0);
      expect(await virsh(['dumpxml', DOMAIN])).toBe(before);
    } finally {
      await virsh(['undefine', DOMAIN]);
    }
    expect(await inventory(NAME)).toEqual(baseline);
  });

  it('preflight, before anything is written: a lab folder QEMU cannot enter, a disk too small', async () => {
    // Beside the suite's state folder (the Labfile's temp folder is 0700 itself).
    const root = mkdtempSync(path.join(path.dirname(stateRoot), 'preflight-'));
    chmodSync(root, 0o755);
    const closed = path.join(root, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    chmodSync(closed, 0o700);
    const r = await run(['up', '-f', file], { LAB_STATE_DIR: path.join(closed, 'state') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`QEMU cannot reach the lab folder .*: ${closed} has mode 0700 \\(no o\\+x\\)`),
    );
    expect(readdirSync(closed)).toEqual([]);
    const tiny = path.join(root, 'tiny');
    mkdirSync(tiny);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'tmpfs', tiny]);
    try {
      const full = await run(['up', '-f', file], { LAB_STATE_DIR: tiny });
      expect(full.code).toBe(1);
      expect(full.stderr).toMatch(
        /not enough free disk for 1 new node\(s\) under .*: \d+ MiB free, 512 MiB needed/,
      );
      expect(readdirSync(tiny)).toEqual([]);
    } finally {
      await execa('umount', [tiny]);
      rmSync(root, { recursive: true, force: true });
    }
    expect(await inventory(NAME)).toEqual(baseline);
  });

  it('lab up killed by SIGKILL after the lock, overlay, seed, define, a state write and the start: each next run goes on from there, leaving no temporary file', async () => {
    // What each run does (counted by the shims), given where the one before was killed:
    // nothing is done twice that was done, and a seed is always written afresh for a
    // domain that is not defined yet.
    const expected: [string, RegExp[]][] = [
      ['after-lock', []],
      [`after-overlay:${NODE}`, [/^qemu-img create /]],
      [`after-seed:${NODE}`, [/^xorriso /]],
      [`after-define:${NODE}`, [/^xorriso /, /^define --file /]],
      ['mid-state-write', []],
      [`after-start:${NODE}`, [new RegExp(`^start --domain ${DOMAIN}$`)]],
    ];
    for (const [point, calls] of expected) {
      const { r, calls: made } = await upKilledAt(point);
      faults += 1;
      expect(r.signal, `${point}: ${String(r.stderr)}`).toBe('SIGKILL');
      expect(String(r.stderr)).toContain(`failpoint ${point}`);
      expect(made.length, `${point}: ${made.join(' | ')}`).toBe(calls.length);
      made.forEach((c, i) => expect(c, point).toMatch(calls[i]!));
      // No stale lock (the next run takes it), no half state, and no temporary file but
      // the one a write killed midway leaves, which the next run removes (checked there).
      if (existsSync(path.join(priv, 'state.json'))) expect(stateJson().version).toBe(1);
      const left = leftovers();
      if (point === 'mid-state-write')
        expect(left, point).toEqual([expect.stringMatching(/^private\/state\.json\.\d+\.tmp$/)]);
      else expect(left, point).toEqual([]);
    }
    expect(await virsh(['domstate', DOMAIN])).toMatch(/running/);
  });

  it('SIGINT or SIGTERM while lab waits for each mutating step (qemu-img create, the seed, define, start): exit 130 or 143 every time, no child left, and the next run goes on', async () => {
    ok(await lab(['down', '-f', file]));
    const marks = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-pause-'));
    const exits: string[] = [];
    let n = 0;
    for (const step of ['qemu-img:create', 'xorriso:mkisofs', 'virsh:define', 'virsh:start'])
      for (const sig of ['SIGINT', 'SIGTERM'] as const) {
        const mark = path.join(marks, `m${++n}`);
        const shim = shimEnv({ LAB_SHIM_PAUSE: step, LAB_SHIM_PAUSE_MARK: mark, CI: '1' });
        const child = execa('node', [LAB, 'up', '-f', file], {
          reject: false,
          stdin: 'ignore',
          env: shim.env,
          forceKillAfterDelay: false,
        });
        const t0 = Date.now();
        while (!existsSync(mark) && child.exitCode === null && Date.now() - t0 < 120_000)
          await new Promise((r) => setTimeout(r, 50));
        expect(existsSync(mark), `${step}: lab never reached it`).toBe(true);
        child.kill(sig);
        const t1 = performance.now();
        const r = await child;
        faults += 1;
        outputs.push(String(r.stdout), String(r.stderr));
        exits.push(
          `${step}/${sig}:${r.exitCode ?? r.signal} in ${((performance.now() - t1) / 1000).toFixed(1)} s`,
        );
        expect(r.exitCode, `${step} ${sig}: ${String(r.stderr)}`).toBe(sig === 'SIGINT' ? 130 : 143);
        expect(stateJson().version).toBe(1);
        // The held child (a shim) was ended with lab: none is left, nor any other.
        const ps = String((await execa('ps', ['-eo', 'pid=,args='])).stdout).split('\n');
        expect(
          ps.filter(
            (l) => l.includes(shimDir) || new RegExp(`qemu-img create .*${NAME}|xorriso .*${NAME}`).test(l),
          ),
          step,
        ).toEqual([]);
        writeFileSync(`${mark}.go`, '');
      }
    process.stderr.write(`\nreliability: signals inside each step: ${exits.join('; ')}\n`);
    expect(leftovers()).toEqual([]);
    // Where the last run stopped (before the start), the next one goes on: defined, not running.
    expect(await virsh(['domstate', DOMAIN])).toMatch(/shut off/);
  });

  // Twenty moments in the full suite (npm run test:e2e:full), ten in CI.
  const MOMENTS = rounds(10, 20);
  it(`Ctrl-C or SIGTERM at ${MOMENTS} random moments (seed logged): exit 130 or 143, state whole, no child left, lock free; a second signal ends it at once`, async () => {
    let seed = Number(process.env.LAB_E2E_SEED ?? Date.now() % 100_000);
    process.stderr.write(`\nreliability: signal seed ${seed}\n`);
    const random = () => ((seed = (seed * 16807) % 2147483647) % 1000) / 1000;
    const noChildLeft = async () => {
      const ps = String((await execa('ps', ['-eo', 'pid,ppid,args'])).stdout);
      expect(ps).not.toMatch(
        new RegExp(`flock .*${NAME}\\.lock|qemu-img create .*${NAME}|xorriso .*${NAME}|virsh .*${DOMAIN}`),
      );
    };
    const startUp = async () => {
      const child = execa('node', [LAB, 'up', '-f', file], {
        reject: false,
        stdin: 'ignore',
        env: { CI: '1' },
        // execa's kill() follows a SIGTERM with a SIGKILL after 5 s: the test sends its own.
        forceKillAfterDelay: false,
      });
      // Once its handlers are in place (the first step line).
      let log = '';
      child.stderr.on('data', (b: Buffer) => (log += b.toString()));
      const t0 = Date.now();
      while (!/\bimage\s+start/.test(log) && Date.now() - t0 < 60_000)
        await new Promise((r) => setTimeout(r, 50));
      // Wrapped: an async function returning the child itself would wait for it to end.
      return { child };
    };
    const codes: string[] = [];
    const stopMs: number[] = [];
    for (let i = 0; i < MOMENTS; i++) {
      const sig = i % 2 === 0 ? 'SIGINT' : 'SIGTERM';
      const { child } = await startUp();
      await new Promise((r) => setTimeout(r, random() * 3000));
      child.kill(sig);
      const t1 = performance.now();
      faults += 1;
      const r = await child;
      stopMs.push(performance.now() - t1);
      outputs.push(String(r.stdout), String(r.stderr));
      codes.push(`${sig}:${r.exitCode ?? r.signal}`);
      // 0 when the run had finished before the signal came.
      expect([sig === 'SIGINT' ? 130 : 143, 0], String(r.stderr)).toContain(r.exitCode);
      expect(stateJson().version).toBe(1);
      await noChildLeft();
    }
    process.stderr.write(
      `reliability: signal exits ${codes.join(' ')}; signal to exit: max ${(Math.max(...stopMs) / 1000).toFixed(1)} s\n`,
    );
    // A second signal does not wait for the running steps.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const { child } = await startUp();
      child.kill(sig);
      await new Promise((r) => setTimeout(r, 30));
      const t1 = performance.now();
      child.kill(sig);
      faults += 1;
      const r = await child;
      outputs.push(String(r.stdout), String(r.stderr));
      expect(r.exitCode, String(r.stderr)).toBe(sig === 'SIGINT' ? 130 : 143);
      expect(performance.now() - t1).toBeLessThan(2000);
      expect(stateJson().version).toBe(1);
      await noChildLeft();
    }
  });

  it('while an up runs: a second up is refused at once naming the holder, status answers; Ctrl-C exits 130', async () => {
    // Stopped first, so the holder has a boot to wait for: a healthy node would let it
    // finish (through the connection agent) within a second of its SSH step. Healthy
    // before that: the tests before leave the node in its first boot, and a guest
    // destroyed there can keep a zero-length network file from cloud-init, which never
    // writes it again (reproduced: destroyed 50 s into its first boot, no address for
    // 400 s; the file was empty on the disk), and no test after this one would pass.
    const settled = await run(['up', '-f', file]);
    expect(settled.code, settled.stderr).toBe(0);
    await virsh(['destroy', DOMAIN]);
    const holder = execa('node', [LAB, 'up', '-f', file], {
      reject: false,
      stdin: 'ignore',
      env: { CI: '1' },
      buffer: true,
    });
    let log = '';
    holder.stderr.on('data', (b: Buffer) => (log += b.toString()));
    const t0 = Date.now();
    while (!new RegExp(`${NODE}\\s+ssh\\s+start`).test(log) && Date.now() - t0 < 120_000)
      await new Promise((r) => setTimeout(r, 200));
    const second = await run(['up', '-f', file]);
    expect(second.code).toBe(75);
    expect(second.stderr).toMatch(new RegExp(`lab ${NAME} is locked by pid ${holder.pid} \\(root@`));
    expect(second.ms).toBeLessThan(5000);
    const status = await run(['status', '--json', '-f', file]);
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as StatusJson).nodes[0]!.name).toBe(NODE);
    holder.kill('SIGINT');
    faults += 1;
    const r = await holder;
    outputs.push(String(r.stdout), String(r.stderr));
    expect(r.exitCode).toBe(130);
    expect(stateJson().version).toBe(1);
  });

  it('a wait that cannot succeed ends at its deadline naming the node, the phase and what was seen', async () => {
    // The node is healthy first: the test before left it booting (not its first boot).
    const settled = await run(['up', '-f', file]);
    expect(settled.code, settled.stderr).toBe(0);
    // The guest is cut off at the host's end of its cable (its tap, down in the harness's
    // namespace): SSH never answers. Not through libvirt's link state, which lab up now
    // reads and sets up again (lab link's drill). 0.03 x 900 s = 27 s for the SSH phase.
    const tap = (await virsh(['domiflist', DOMAIN])).split('\n')[0]!.trim().split(/\s+/)[0]!;
    expect(tap).toMatch(/^vnet\d+$/);
    await execa('ip', ['link', 'set', 'dev', tap, 'down']);
    try {
      // The console log's lines before the run: the tail lab prints ends at or after them.
      const consoleLog = path.join(labDir, 'console', `${NODE}.log`);
      const consoleLines = () =>
        readFileSync(consoleLog, 'utf8')
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')); // eslint-disable-line no-control-regex
      const linesBefore = consoleLines().length;
      const r = await run(['up', '-f', file], { LAB_TIMEOUT_SCALE: '0.03' });
      faults += 1;
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`${NODE}: ssh: `));
      // The console's tail, as lab printed it, is the console log's own lines, exactly
      // and in order, and its last lines when lab read them: the run ends at or after the
      // lines the log had before up began (the guest, booting, may write on since).
      const logLines = consoleLines();
      const out = r.stderr + r.stdout;
      const at = out.indexOf(`serial console (${consoleLog}), last lines:\n`);
      expect(at, out).toBeGreaterThanOrEqual(0);
      const after = out.slice(at).split('\n').slice(1);
      const end = after.findIndex((l) => !l.startsWith('    '));
      const printed = after.slice(0, end < 0 ? after.length : end).map((l) => l.slice(4));
      expect(printed.length).toBeGreaterThan(0);
      expect(printed.length).toBeLessThanOrEqual(5);
      // The last one may have been read half written: it is the start of the log's line
      // (and lab's message closes the parenthesis the tail is in, right after it).
      const same = (p: string, k: number, line: string | undefined) =>
        line !== undefined && (k === printed.length - 1 ? line.startsWith(p.replace(/\)$/, '')) : line === p);
      const starts = logLines.flatMap((_, i) =>
        printed.every((p, k) => same(p, k, logLines[i + k])) ? [i] : [],
      );
      expect(starts.length, `${printed.join(' | ')} not in ${consoleLog}`).toBeGreaterThan(0);
      expect(starts.at(-1)! + printed.length).toBeGreaterThanOrEqual(linesBefore);
      // 27 s deadline, plus start-up and the plan: within +-10 % and a few seconds.
      expect(r.ms).toBeGreaterThan(27_000 * 0.9);
      expect(r.ms).toBeLessThan(27_000 * 1.1 + 15_000);
    } finally {
      await execa('ip', ['link', 'set', 'dev', tap, 'up']);
    }
  });

  it('then one lab up (umask 000) converges: healthy, key 0600 in a 0700 folder, state 0600 without secrets', async () => {
    const serialBefore = stateJson().serial;
    const r = await execa(
      'bash',
      ['-c', 'umask 000 && exec "$@"', 'lab', 'node', LAB, 'up', '-f', file, '--json'],
      {
        reject: false,
        stdin: 'ignore',
        env: { CI: '1' },
      },
    );
    outputs.push(String(r.stdout), String(r.stderr));
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect((JSON.parse(String(r.stdout)) as { ok: boolean }).ok).toBe(true);
    expect(mode(priv)).toBe(0o700);
    expect(mode(path.join(priv, 'id_ed25519'))).toBe(0o600);
    expect(mode(path.join(priv, 'secret'))).toBe(0o600);
    expect(mode(path.join(priv, 'state.json'))).toBe(0o600);
    expect(mode(path.join(labDir, 'disks', `${NODE}-seed.iso`)) & 0o077).toBe(0);
    const s = stateJson();
    expect(s.serial).toBeGreaterThan(serialBefore);
    expect(s.nodes[NODE]!.step).toBe('healthy');
    expect(existsSync(path.join(priv, 'state.json.bak'))).toBe(true);
    expect((await statusJson(file)).nodes[0]!.etcd?.state).toBe('leader');
    // The base is only ever a backing file, never a disk a domain writes.
    // This host's /dev/kvm cannot run guests: TCG, said once, and the domain says qemu.
    expect(String(r.stderr).match(/KVM is not available/g)).toHaveLength(1);
    expect(await virsh(['dumpxml', DOMAIN])).toMatch(/^<domain type='qemu'/);
    // (domblklist: the disks themselves, not their backing chain)
    const disks = await virsh(['domblklist', DOMAIN]);
    expect(disks).toContain(path.join(labDir, 'disks', `${NODE}.qcow2`));
    expect(disks).not.toContain(base);
    // Least privilege: QEMU runs as the distribution's unprivileged user, not root.
    const ps = String((await execa('ps', ['-eo', 'user:32,args'])).stdout);
    const qemu = ps.split('\n').find((l) => l.includes(`guest=${DOMAIN}`));
    expect(qemu, ps).toBeDefined();
    expect(qemu!.split(/\s+/)[0]).not.toBe('root');
  });

  it('lab ssh refuses a key readable by others and a hand-edited known_hosts; lab up repairs both', async () => {
    expect((await run(['ssh', NODE, '-f', file, '--', 'true'])).code).toBe(0);
    const key = path.join(priv, 'id_ed25519');
    chmodSync(key, 0o644);
    const open = await run(['ssh', NODE, '-f', file, '--', 'true']);
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(/refusing to use the lab's key: .*id_ed25519 has mode 0644/);
    chmodSync(key, 0o600);
    const kh = path.join(priv, 'known_hosts');
    const good = readFileSync(kh, 'utf8');
    const other = impostorKey().publicKey.split(' ')[1]!;
    writeFileSync(kh, good.replace(/ssh-ed25519 \S+/, `ssh-ed25519 ${other}`));
    const edited = await run(['ssh', NODE, '-f', file, '--', 'true']);
    expect(edited.code).toBe(1);
    expect(edited.stderr).toMatch(/is not the key this lab gave the node: refusing/);
    const repaired = await run(['up', '-f', file]);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toMatch(/nothing changed/);
    expect(readFileSync(kh, 'utf8')).toBe(good);
    expect((await run(['ssh', NODE, '-f', file, '--', 'true'])).code).toBe(0);
  });

  it('lab rotate-keys: new login and host keys, pinned all along; the old login key and the old host key pin no longer work; lab up has nothing to change (S3)', async () => {
    const keyFile = path.join(priv, 'id_ed25519');
    const knownHosts = path.join(priv, 'known_hosts');
    const [oldKey, oldKnown] = [readFileSync(keyFile, 'utf8'), readFileSync(knownHosts, 'utf8')];
    const bootId = async () => {
      const r = await run(['ssh', NODE, '-f', file, '--', 'cat', '/proc/sys/kernel/random/boot_id']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    const boot = await bootId();
    const r = await run(['rotate-keys', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${NODE}\\s+rotated\\s+SHA256:`, 'm'));
    const [newKey, newKnown] = [readFileSync(keyFile, 'utf8'), readFileSync(knownHosts, 'utf8')];
    expect(newKey).not.toBe(oldKey);
    expect(newKnown).not.toBe(oldKnown);
    expect(mode(keyFile)).toBe(0o600);
    // The guest serves the host key lab pinned now, and lab ssh works with the new keys at once.
    const served = await run(['ssh', NODE, '-f', file, '--', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub']);
    expect(served.code, served.stderr).toBe(0);
    expect(newKnown).toContain(served.stdout.trim().split(/\s+/)[1]!);
    expect(oldKnown).not.toContain(served.stdout.trim().split(/\s+/)[1]!);
    // Plain OpenSSH, strict: the old login key is refused, and the old pin fails.
    const user = /^\s*User (\S+)$/m.exec(readFileSync(path.join(priv, 'ssh_config'), 'utf8'))![1]!;
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'lab-e2e-rotate-'));
    writeFileSync(path.join(scratch, 'old'), oldKey, { mode: 0o600 });
    writeFileSync(path.join(scratch, 'known'), oldKnown, { mode: 0o600 });
    const ssh = (identity: string, known: string) =>
      execa(
        'ssh',
        [
          '-F',
          '/dev/null',
          '-o',
          'BatchMode=yes',
          '-o',
          'ConnectTimeout=20',
          '-o',
          'IdentitiesOnly=yes',
          '-o',
          `IdentityFile=${identity}`,
          '-o',
          `UserKnownHostsFile=${known}`,
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          `HostKeyAlias=${NAME}-${NODE}`,
          '-l',
          user,
          IP,
          'true',
        ],
        { reject: false, stdin: 'ignore' },
      );
    const oldLogin = await ssh(path.join(scratch, 'old'), knownHosts);
    expect(oldLogin.exitCode, String(oldLogin.stderr)).toBe(255);
    expect(String(oldLogin.stderr)).toMatch(/Permission denied \(publickey\)/);
    const oldPin = await ssh(keyFile, path.join(scratch, 'known'));
    expect(oldPin.exitCode).toBe(255);
    expect(String(oldPin.stderr)).toMatch(
      /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/,
    );
    const newLogin = await ssh(keyFile, knownHosts);
    expect(newLogin.exitCode, String(newLogin.stderr)).toBe(0);
    // No reboot, and the seed and definition follow the new keys: lab up changes nothing.
    const again = await shimmed(['up', '-f', file]);
    ok(again.r);
    expect(mutating(again.calls)).toEqual([]);
    expect(await bootId()).toBe(boot);
  });

  it('libvirtd restarted under a running lab: status sees it and lab up changes nothing', async () => {
    await execa('bash', [path.join(import.meta.dirname, 'harness/labns.sh'), 'restart-libvirtd'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    faults += 1;
    const st = await statusJson(file);
    expect(st.nodes[0]!.state).toBe('running');
    const again = await run(['up', '-f', file]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/nothing changed/);
  });

  it('lab reset of this lab while another lab comes up: both succeed, nothing shared; reset keeps the identity on a fresh disk', async () => {
    const other = writeLabfile(
      bridgeLabfile({
        name: `${NAME}2`,
        services: '[etcd, docker]',
        nodes: `  - { name: ${NODE}, ip: 10.77.0.62 }\n`,
      }),
    );
    const bootId = async () =>
      (await run(['ssh', NODE, '-f', file, '--', 'cat', '/proc/sys/kernel/random/boot_id'])).stdout.trim();
    const before = { boot: await bootId(), status: await statusJson(file) };
    await run(['ssh', NODE, '-f', file, '--', 'sudo', 'touch', '/var/tmp/lab-reset-marker']);
    expect((await run(['checkpoint', 'save', 'rbase', '-f', file])).code).toBe(0);
    try {
      const [r, o] = await Promise.all([run(['reset', NODE, '-f', file]), run(['up', '-f', other])]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/replace/);
      // The node's share of a checkpoint went with its overlay, and reset said so; a
      // restore of it is refused, forced or not, touching nothing.
      expect(r.stderr).toMatch(/r1: checkpoint rbase no longer covers this node: its disk is re-created/);
      const restore = await run(['checkpoint', 'restore', 'rbase', '--force', '-f', file]);
      expect(restore.code).toBe(1);
      expect(restore.stderr).toMatch(/cannot be restored: r1: its disk was re-created since/);
      expect(o.code, o.stderr).toBe(0);
      const after = { boot: await bootId(), status: await statusJson(file) };
      const two = await statusJson(other);
      expect(after.boot).not.toBe(before.boot);
      expect(after.boot).toMatch(/^[0-9a-f-]{36}$/);
      expect(after.status.nodes[0]!.machineId).toBe(before.status.nodes[0]!.machineId);
      // Same node name in both labs: different domains, MACs, machine-ids, folders.
      expect(two.nodes[0]!.machineId).not.toBe(after.status.nodes[0]!.machineId);
      const macOf = async (d: string) => (await virsh(['domiflist', d])).trim().split(/\s+/).at(-1);
      expect(await macOf(`${NAME}2-${NODE}`)).not.toBe(await macOf(DOMAIN));
      const marker = await run(['ssh', NODE, '-f', file, '--', 'test', '-e', '/var/tmp/lab-reset-marker']);
      expect(marker.code).toBe(1); // the fresh overlay does not have it
    } finally {
      expect((await run(['down', '-f', other])).code).toBe(0);
    }
    // The other lab's down left this one alone.
    expect((await statusJson(file)).nodes[0]!.etcd?.state).toBe('leader');
    expect(await inventory(`${NAME}2`)).toEqual({ ...baseline, domains: [DOMAIN], files: [] });
  });

  it("a different SSH server at the node's address is refused before any authentication", async () => {
    await virsh(['destroy', DOMAIN]);
    const impostor = impostorKey();
    let connections = 0;
    let authAttempts = 0;
    const server = new ssh2.Server({ hostKeys: [impostor.privateKey] }, (client) => {
      connections += 1;
      client.on('authentication', (ctx) => {
        authAttempts += 1;
        ctx.reject();
      });
      client.on('error', () => {});
    });
    await execa('ip', ['addr', 'add', `${IP}/32`, 'dev', 'lo']);
    try {
      await new Promise<void>((resolve) => server.listen(22, IP, resolve));
      const r = await run(['ssh', NODE, '-f', file, '--', 'true']);
      faults += 1;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(
        new RegExp(`${NODE}: host key of ${IP.replace(/\./g, '\\.')}(:22)? does not match: expected SHA256:`),
      );
      expect(connections).toBeGreaterThanOrEqual(1);
      expect(authAttempts).toBe(0);
    } finally {
      server.close();
      await execa('ip', ['addr', 'del', `${IP}/32`, 'dev', 'lo']);
    }
  });

  it('no private key or lab secret in any output (--debug too), the state file or --json; another user reads no file of the lab', async () => {
    // --debug prints every command lab runs: still no secret (the node stays as the test
    // before left it; partial.test.ts checks lab up --debug the same way).
    const debugPlan = await run(['plan', '-f', file, '--debug']);
    expect(debugPlan.code, debugPlan.stderr).toBe(0);
    expect(debugPlan.stderr).toMatch(/^debug: .*virsh/m);
    const debugStatus = await run(['status', '--json', '--debug', '-f', file]);
    expect(debugStatus.code, debugStatus.stderr).toBe(0);
    // An unprivileged user on the host (nobody): no key, seed, disk, console or state.
    const files = readdirSync(labDir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.join(e.parentPath, e.name));
    expect(files.length).toBeGreaterThanOrEqual(8);
    const readable: string[] = [];
    for (const f of files) {
      const r = await execa('runuser', ['-u', 'nobody', '--', 'head', '-c', '1', f], {
        reject: false,
        stdin: 'ignore',
      });
      if (r.exitCode === 0 || !/Permission denied/.test(String(r.stderr))) readable.push(f);
    }
    expect(readable).toEqual([]);
    const secret = readFileSync(path.join(priv, 'secret'), 'utf8').trim();
    const state = readFileSync(path.join(priv, 'state.json'), 'utf8');
    for (const text of [...outputs, state]) {
      expect(text).not.toMatch(/PRIVATE KEY/);
      expect(text).not.toContain(secret);
    }
    expect(outputs.length).toBeGreaterThan(20);
  });

  it('with its local state truncated, status still sees the node and lab down --lab NAME finds the lab by metadata and leaves what was there before; a second down is fine', async () => {
    // Truncated to nothing (a crash of a writer without the rename), its backup gone.
    writeFileSync(path.join(priv, 'state.json'), '');
    rmSync(path.join(priv, 'state.json.bak'), { force: true });
    const status = await run(['status', '--json', '-f', file]);
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as StatusJson).nodes[0]!.state).toMatch(/shut off/);
    const d = await run(['down', '--lab', NAME]);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain(`removed 1 domain(s) of lab ${NAME}`);
    expect(await inventory(NAME)).toEqual(baseline);
    expect((await run(['down', '-f', file])).code).toBe(0);
    expect((await run(['down', '--lab', NAME])).code).toBe(0);
    expect(await inventory(NAME)).toEqual(baseline);
    expect(knownHostsNow()).toBe(knownHostsBefore);
    expect(await sha256(base)).toBe(await baseBefore);
    expect(mode(base)).toBe(0o444);
  });
});
