// S11: every command checks the libvirt URI it will use, from every source, before the
// first libvirt call. A fake virsh first on PATH records each run: for a refused URI it
// must never run, whatever the command and wherever the URI came from (the Labfile's
// `libvirt:`, --uri, LIBVIRT_DEFAULT_URI, libvirt.conf's uri_default, a uri_aliases
// name). libvirt.conf is read where libvirt reads it: root's /etc/libvirt/libvirt.conf
// (not ours to change in a test), another user's $XDG_CONFIG_HOME/libvirt/libvirt.conf,
// so the libvirt.conf sources run as an unprivileged user (setpriv; CI runs as root).
import { execa } from 'execa';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { approveUri, parseLibvirtConf, resolveUri } from '../../../lab/providers/uri.js';

const ROOT = path.join(import.meta.dirname, '../../..');
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** A world-readable scratch folder (the unprivileged runs read and write in it). */
const base = mkdtempSync(path.join(os.tmpdir(), 'lab-uri-'));
chmodSync(base, 0o777);
const fakeDir = path.join(base, 'bin');
mkdirSync(fakeDir, { mode: 0o755 });
writeFileSync(
  path.join(fakeDir, 'virsh'),
  '#!/bin/sh\nprintf "%s\\n" "$*" >> "$FAKE_VIRSH_LOG"\necho "error: fake virsh" >&2\nexit 1\n',
  { mode: 0o755 },
);

const labfile = (uri?: string) => {
  const text = readFileSync(path.join(ROOT, 'Labfile.example.yaml'), 'utf8');
  const file = path.join(mkdtempSync(path.join(base, 'lf-')), 'Labfile.yaml');
  writeFileSync(
    file,
    uri ? text.replace('template: debian-12-lab\n', `template: debian-12-lab\nlibvirt: ${uri}\n`) : text,
    { mode: 0o644 },
  );
  chmodSync(path.dirname(file), 0o755);
  return file;
};

/** Every command that reaches libvirt, with the Labfile given. */
const COMMANDS = (f: string): string[][] => [
  ['up', '-f', f],
  ['down', '-f', f],
  ['plan', '-f', f],
  ['status', '--json', '-f', f],
  ['units', '-f', f],
  ['ssh-config', '-f', f],
  ['ssh', 'coreos1', '-f', f, '--', 'true'],
  ['reset', 'coreos1', '-f', f],
  ['checkpoint', 'list', '-f', f],
  ['checkpoint', 'save', 'c1', '-f', f],
  ['checkpoint', 'restore', 'c1', '-f', f],
  ['checkpoint', 'delete', 'c1', '-f', f],
];

interface Source {
  name: string;
  /** The Labfile's libvirt: URI, if any. */
  labfile?: string;
  env?: Record<string, string>;
  /** libvirt.conf's text: the run is an unprivileged user's, with it in XDG_CONFIG_HOME. */
  conf?: string;
  /** Extra commands that take the URI as a flag. */
  extra?: string[][];
}

const SOURCES: Source[] = [
  { name: "the Labfile's libvirt:", labfile: 'qemu+ssh://lab-host/system?no_verify=1' },
  {
    name: 'LIBVIRT_DEFAULT_URI',
    env: { LIBVIRT_DEFAULT_URI: 'qemu+tcp://lab-host/system' },
  },
  {
    name: '--uri',
    extra: [
      ['down', '--lab', 'coreos-lab', '--uri', 'qemu+ssh://lab-host/system?known_hosts_verify=auto'],
      ['doctor', '--uri', 'qemu+ssh://lab-host/system?Known_Hosts_Verify=ignore'],
    ],
  },
  {
    name: "libvirt.conf's uri_default",
    conf: 'uri_default = "qemu+ssh://lab-host/system?known_hosts_verify=ignore"\n',
    extra: [['doctor']],
  },
  {
    name: 'a uri_aliases name in LIBVIRT_DEFAULT_URI',
    conf: '# hosts\nuri_aliases = [\n  "other=qemu:///system",\n  "hail=qemu+tcp://hail.example/system",\n]\n',
    env: { LIBVIRT_DEFAULT_URI: 'hail' },
    extra: [['doctor', '--uri', 'hail']],
  },
];

/** Runs the CLI (from source) with the fake virsh first on PATH; returns the run and virsh's calls. */
async function runLab(args: string[], src: Pick<Source, 'env' | 'conf'>, more: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(base, 'run-'));
  chmodSync(dir, 0o777);
  const log = path.join(dir, 'virsh.log');
  writeFileSync(log, '', { mode: 0o666 });
  chmodSync(log, 0o666);
  const env: Record<string, string> = {
    PATH: `${fakeDir}:${process.env.PATH ?? ''}`,
    FAKE_VIRSH_LOG: log,
    LAB_STATE_DIR: path.join(dir, 'state'),
    LAB_CACHE_DIR: path.join(dir, 'cache'),
    LIBVIRT_DEFAULT_URI: '',
    HOME: dir,
    ...src.env,
    ...more,
  };
  let argv = [process.execPath, '--import', 'tsx', path.join(ROOT, 'cmd/lab.ts'), ...args];
  if (src.conf !== undefined) {
    const conf = path.join(dir, 'config', 'libvirt');
    mkdirSync(conf, { recursive: true, mode: 0o755 });
    writeFileSync(path.join(conf, 'libvirt.conf'), src.conf, { mode: 0o644 });
    env.XDG_CONFIG_HOME = path.join(dir, 'config');
    env.XDG_RUNTIME_DIR = '';
    if (isRoot) argv = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...argv];
  }
  const r = await execa(argv[0]!, argv.slice(1), {
    reject: false,
    cwd: ROOT,
    env,
    extendEnv: false,
    stdin: 'ignore',
  });
  const calls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  return { code: r.exitCode, stderr: String(r.stderr), stdout: String(r.stdout), calls };
}

/** At most `n` at once: each run is a Node start (1-3 s here). */
async function limited<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

describe(
  'S11: a refused libvirt URI reaches no virsh, from any source, in any command',
  { timeout: 240_000 },
  () => {
    for (const src of SOURCES) {
      it.skipIf(src.conf !== undefined && !isRoot)(`from ${src.name}`, async () => {
        const file = labfile(src.labfile);
        const cases = [...(src.labfile || src.env || src.conf ? COMMANDS(file) : []), ...(src.extra ?? [])];
        expect(cases.length).toBeGreaterThan(0);
        const results = await limited(cases, 3, (args) => runLab(args, src));
        const wrong = results.flatMap((r, i) => {
          const cmd = `lab ${cases[i]!.join(' ')}`;
          if (r.calls.length) return [`${cmd}: virsh ran: ${r.calls.join(' | ')}`];
          if (r.code !== 2) return [`${cmd}: exit ${r.code}: ${r.stderr.split('\n')[0]}`];
          if (!/^lab: error: refusing libvirt URI /m.test(r.stderr))
            return [`${cmd}: ${r.stderr.split('\n')[0]}`];
          return [];
        });
        expect(wrong).toEqual([]);
      });
    }

    it.skipIf(!isRoot)(
      'the checks can fail: an allowed URI, an alias of a safe one, and LAB_ALLOW_INSECURE_URI reach virsh, with -c the resolved URI',
      async () => {
        const file = labfile();
        const safe = await runLab(['status', '--json', '-f', file], {
          env: { LIBVIRT_DEFAULT_URI: 'qemu:///system' },
        });
        expect(safe.calls.length).toBeGreaterThan(0);
        expect(safe.calls.every((c) => c.startsWith('-q -c qemu:///system '))).toBe(true);
        const alias = await runLab(['doctor', '--uri', 'other'], SOURCES[4]!);
        expect(alias.stderr).not.toMatch(/refusing/);
        expect(alias.calls.length).toBeGreaterThan(0);
        expect(alias.calls.every((c) => c.startsWith('-q -c qemu:///system '))).toBe(true);
        const allowed = await runLab(
          ['plan', '-f', file],
          { env: { LIBVIRT_DEFAULT_URI: 'qemu+tcp://lab-host/system' } },
          {
            LAB_ALLOW_INSECURE_URI: '1',
          },
        );
        expect(allowed.calls.length).toBeGreaterThan(0);
        expect(allowed.calls.every((c) => c.startsWith('-q -c qemu+tcp://lab-host/system '))).toBe(true);
        // Said each time, once a command.
        expect(
          allowed.stderr.match(/lab: warning: libvirt URI qemu\+tcp:\/\/lab-host\/system: plain TCP/g),
        ).toHaveLength(1);
      },
    );
  },
);

describe('libvirt.conf and URI resolution', () => {
  it('reads uri_default and uri_aliases as libvirt does: comments, quotes, lists, bad alias names skipped', () => {
    const conf = parseLibvirtConf(`# uri_default = "qemu+tcp://commented/system"
uri_aliases = [
  "hail=qemu+ssh://root@hail.example/system",   # a comment
  'sleet=qemu+tls://sleet.example/system',
  "bad name=qemu+tcp://x/system",
  "noequals",
  "hail=qemu:///session",
]
uri_default = "qemu:///session"
`);
    expect(conf.uriDefault).toBe('qemu:///session');
    expect([...conf.aliases]).toEqual([
      ['hail', 'qemu+ssh://root@hail.example/system'],
      ['sleet', 'qemu+tls://sleet.example/system'],
    ]);
  });

  it('takes the given URI, else LIBVIRT_DEFAULT_URI, else uri_default, else qemu:///system', () => {
    const saved = process.env.LIBVIRT_DEFAULT_URI;
    try {
      const conf = { aliases: new Map<string, string>(), uriDefault: 'qemu:///session' };
      process.env.LIBVIRT_DEFAULT_URI = 'qemu+ssh://env/system';
      expect(resolveUri('qemu:///given', conf)).toBe('qemu:///given');
      expect(resolveUri(undefined, conf)).toBe('qemu+ssh://env/system');
      delete process.env.LIBVIRT_DEFAULT_URI;
      expect(resolveUri(undefined, conf)).toBe('qemu:///session');
      expect(resolveUri(undefined, { aliases: new Map() })).toBe('qemu:///system');
    } finally {
      if (saved === undefined) delete process.env.LIBVIRT_DEFAULT_URI;
      else process.env.LIBVIRT_DEFAULT_URI = saved;
    }
  });

  it('an alias is checked as the URI it stands for, and that URI is what virsh gets', () => {
    const conf = {
      file: '/x/libvirt.conf',
      aliases: new Map([
        ['hail', 'qemu+tcp://hail/system'],
        ['ok', 'qemu:///system'],
      ]),
    };
    expect(approveUri('ok', conf)).toBe('qemu:///system');
    expect(() => approveUri('hail', conf)).toThrow(
      /refusing libvirt URI hail \(an alias in \/x\/libvirt.conf for qemu\+tcp:\/\/hail\/system\): plain TCP/,
    );
    expect(approveUri('qemu+libssh://h/system?known_hosts=/k&keyfile=/id', conf)).toBe(
      'qemu+libssh://h/system?known_hosts=/k&keyfile=/id',
    );
  });
});
