// R24: lab survives a libvirtd restart and dropped connections. A fake virsh first on PATH
// answers from a script of replies (libvirt's own words for a lost connection, then the
// real answer), so the retry runs through the same run() and argv as with the real virsh.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { revertSnapshot } from '../../../lab/providers/snapshots.js';
import type { Clock } from '../../../lab/runtime/clock.js';
import { CommandError } from '../../../lab/runtime/exec.js';
import { Virsh, isLostConnection, type VirshRetry } from '../../../lab/providers/virsh.js';
import { fakeClock } from '../../support/clock.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'lab-virsh-retry-'));
const bin = path.join(work, 'bin');
const replies = path.join(work, 'replies');

// Reply N (1-based, by call) is replies/N.{code,out,err}; past the last, replies/default.*.
const FAKE_VIRSH = `#!/bin/sh
d=${JSON.stringify(replies)}
n=$(cat "$d/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$d/count"
printf '%s\\n' "$*" >> "$d/argv"
r="$d/$n"; [ -f "$r.code" ] || r="$d/default"
[ -f "$r.out" ] && cat "$r.out"
[ -f "$r.err" ] && cat "$r.err" >&2
exit "$(cat "$r.code")"
`;

interface Reply {
  code: number;
  out?: string;
  err?: string;
}
function script(list: Reply[], fallback: Reply): void {
  rmSync(replies, { recursive: true, force: true });
  mkdirSync(replies);
  const put = (name: string, r: Reply) => {
    writeFileSync(path.join(replies, `${name}.code`), String(r.code));
    if (r.out !== undefined) writeFileSync(path.join(replies, `${name}.out`), r.out);
    if (r.err !== undefined) writeFileSync(path.join(replies, `${name}.err`), r.err);
  };
  list.forEach((r, i) => put(String(i + 1), r));
  put('default', fallback);
}
function calls(): string[] {
  try {
    return readFileSync(path.join(replies, 'argv'), 'utf8').trim().split('\n');
  } catch {
    return [];
  }
}

// libvirt 9.0's words, as virsh prints them.
const DAEMON_DOWN: Reply = {
  code: 1,
  err: "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused\n",
};
const DROPPED: Reply = { code: 1, err: 'error: End of file while reading data: Input/output error\n' };
const RESET: Reply = { code: 1, err: 'error: Cannot recv data: Connection reset by peer\n' };

function virsh(retry: Partial<VirshRetry> = {}, signal?: AbortSignal) {
  const told: string[] = [];
  const clock = retry.clock ?? fakeClock();
  const v = new Virsh('qemu:///system', signal, {
    budgetMs: 60_000,
    clock,
    onRetry: (i) => told.push(`${i.verb} ${i.recovered ? 'recovered' : 'lost'}: ${i.error}`),
    ...retry,
  });
  return { v, told, clock };
}

let savedPath: string | undefined;
beforeAll(() => {
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'virsh'), FAKE_VIRSH);
  chmodSync(path.join(bin, 'virsh'), 0o755);
  savedPath = process.env.PATH;
  process.env.PATH = `${bin}${path.delimiter}${savedPath ?? '/usr/bin:/bin'}`;
});
afterAll(() => {
  process.env.PATH = savedPath;
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => rmSync(replies, { recursive: true, force: true }));

describe('R24 isLostConnection', () => {
  it.each([
    [DAEMON_DOWN.err!, true],
    [DROPPED.err!, true],
    [RESET.err!, true],
    ['error: internal error: client socket is closed\n', true],
    [
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock-ro': No such file or directory\n",
      true,
    ],
    [
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/virtqemud-sock': Connection refused\n",
      true,
    ],
    // Refusals that only look alike: access, and the log or lock daemons a start needs.
    [
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied\n",
      false,
    ],
    [
      "error: Failed to start domain 'x'\nerror: Failed to connect socket to '/var/run/libvirt/virtlogd-sock': No such file or directory\n",
      false,
    ],
    [
      "error: Failed to start domain 'x'\nerror: Failed to connect socket to '/var/run/libvirt/virtlockd-sock': Connection refused\n",
      false,
    ],
    [
      'error: internal error: qemu unexpectedly closed the monitor: Unable to read from monitor: Connection reset by peer\n',
      false,
    ],
    ['error: authentication failed: access denied by policy\n', false],
    ['error: Disconnected from qemu:///system due to end of file\n', true],
    ['error: Cannot write data: Broken pipe\n', true],
    ["error: failed to get domain 'x'\n", false],
    ['error: Requested operation is not valid: domain is already active\n', false],
    ['error: XML error: invalid memory value\n', false],
    ["error: operation failed: domain 'x' already exists with uuid 1\n", false],
    ['', false],
  ])('%j -> %s', (stderr, lost) => {
    expect(isLostConnection(stderr)).toBe(lost);
  });
});

describe('R24 a Virsh call rides out a libvirtd restart', () => {
  it('a read whose connection failed is asked again, never read as "missing"', async () => {
    // domstate exits 1 both for a missing domain and for a daemon that is down.
    script([DAEMON_DOWN, DAEMON_DOWN], { code: 0, out: 'running\n' });
    const { v, told, clock } = virsh();
    expect(await v.domState('lab-n1')).toBe('running');
    expect(calls()).toHaveLength(3);
    expect(calls().every((c) => c === '-q -c qemu:///system domstate --domain lab-n1')).toBe(true);
    // Backoff 250 ms x 1.5, no jitter from a clock without random.
    expect((clock as ReturnType<typeof fakeClock>).sleeps).toEqual([250, 375]);
    expect(told).toEqual([
      "domstate lost: error: Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused",
      "domstate recovered: error: Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused",
    ]);
  });

  it('a missing domain is still "missing" at once when libvirt answers', async () => {
    script([], { code: 1, err: "error: failed to get domain 'lab-n1'\n" });
    const { v, told } = virsh();
    expect(await v.domState('lab-n1')).toBe('missing');
    expect(calls()).toHaveLength(1);
    expect(told).toEqual([]);
  });

  it('a start whose reply was lost, then "already active", is done', async () => {
    script(
      [DROPPED, { code: 1, err: 'error: Requested operation is not valid: domain is already active\n' }],
      { code: 0 },
    );
    const { v, told } = virsh();
    await v.start('lab-n1');
    expect(calls()).toEqual([
      '-q -c qemu:///system start --domain lab-n1',
      '-q -c qemu:///system start --domain lab-n1',
    ]);
    expect(told[1]).toMatch(/^start recovered/);
  });

  it('"already active" without a lost reply before it is a refusal, not success', async () => {
    script([], { code: 1, err: 'error: Requested operation is not valid: domain is already active\n' });
    const { v } = virsh();
    await expect(v.start('lab-n1')).rejects.toThrow(/already active/);
    expect(calls()).toHaveLength(1);
  });

  it('a define refused by libvirt is not asked again', async () => {
    script([], { code: 1, err: 'error: XML error: invalid memory value\n' });
    const { v, told } = virsh();
    await expect(v.define('<domain/>')).rejects.toThrow(CommandError);
    expect(calls()).toHaveLength(1);
    expect(told).toEqual([]);
  });

  it('a define whose connection dropped is asked again with the same XML (idempotent)', async () => {
    script([RESET], { code: 0 });
    const { v } = virsh();
    await v.define('<domain><name>lab-n1</name></domain>');
    expect(calls()).toHaveLength(2);
    expect(calls()[0]).toMatch(/^-q -c qemu:\/\/\/system define --file \S+object\.xml$/);
  });

  it.each([
    ['destroy', 'error: Requested operation is not valid: domain is not running\n'],
    ['undefine', "error: failed to get domain 'lab-n1'\n"],
  ] as const)('a %s whose reply was lost, then "already done", is done', async (verb, done) => {
    // destroy and undefine first look at domstate (running), then act.
    script([{ code: 0, out: 'running\n' }, DROPPED, { code: 1, err: done }], { code: 0 });
    const { v } = virsh();
    await (verb === 'destroy' ? v.destroy('lab-n1') : v.undefine('lab-n1'));
    expect(
      calls()
        .slice(1)
        .map((c) => c.split(' ')[3]),
    ).toEqual([verb, verb]);
  });

  it('net-start: lost, then "already active", is done', async () => {
    script(
      [DROPPED, { code: 1, err: 'error: Requested operation is not valid: network is already active\n' }],
      {
        code: 0,
      },
    );
    const { v } = virsh();
    await v.netStart('lab-net');
    expect(calls()).toHaveLength(2);
  });

  it('gives up when libvirt stays away past the budget, with its words', async () => {
    // Reached once (libvirt answered), then gone: the full budget applies.
    script([{ code: 0, out: 'a\n' }], DAEMON_DOWN);
    const { v, clock } = virsh({ budgetMs: 10_000 });
    expect(await v.listDomains()).toEqual(['a']);
    const err = await v.listDomains().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as Error).message).toMatch(
      /virsh -q -c qemu:\/\/\/system list --all --name: .*Connection refused/s,
    );
    const sleeps = (clock as ReturnType<typeof fakeClock>).sleeps;
    // 250, 375, 562.5, 843.75, 1265.6, 1898.4, 2847.7 (sum 8043) then 3000 would pass 10 s.
    expect(sleeps).toHaveLength(7);
    expect(sleeps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10_000);
    expect(calls()).toHaveLength(1 + 8);
  });

  it('a Virsh that never reached libvirt says so within 5 s (libvirtd not running), not after the budget', async () => {
    script([], DAEMON_DOWN);
    const { v, clock } = virsh({ budgetMs: 90_000 });
    await expect(v.listDomains()).rejects.toThrow(/Connection refused/);
    const waited = (clock as ReturnType<typeof fakeClock>).sleeps.reduce((a, b) => a + b, 0);
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThanOrEqual(5_000);
  });

  it("a refusal in libvirt's own words counts as reached: the full budget applies after it", async () => {
    script(
      [
        { code: 1, err: "error: failed to get domain 'x'\n" },
        DAEMON_DOWN,
        DAEMON_DOWN,
        DAEMON_DOWN,
        DAEMON_DOWN,
      ],
      { code: 0, out: 'running\n' },
    );
    const { v, clock } = virsh({ budgetMs: 90_000, initialMs: 2_000 });
    expect(await v.domState('x')).toBe('missing');
    // 2000 + 3000 + 3000 + 3000 = 11 s of pauses: past the first-connect 5 s, within 90 s.
    expect(await v.domState('x')).toBe('running');
    expect((clock as ReturnType<typeof fakeClock>).sleeps.reduce((a, b) => a + b, 0)).toBe(11_000);
  });

  it('a connection lost in the middle of a first call had been made: the full budget applies, not the first-connect 5 s', async () => {
    // A checkpoint revert: the first call of a fresh Virsh, lost mid-call when libvirtd
    // went away, then 11 s of a daemon restarting.
    script(
      [
        {
          code: 1,
          err: 'error: Disconnected from qemu:///system due to end of file\nerror: Failed to revert snapshot s\nerror: End of file while reading data: Input/output error\n',
        },
        DAEMON_DOWN,
        DAEMON_DOWN,
        DAEMON_DOWN,
        DAEMON_DOWN,
      ],
      { code: 0 },
    );
    const { v, clock } = virsh({ budgetMs: 90_000, initialMs: 2_000 });
    await revertSnapshot(v, 'lab-n1', 's');
    expect(calls()).toHaveLength(6);
    expect((clock as ReturnType<typeof fakeClock>).sleeps.reduce((a, b) => a + b, 0)).toBe(14_000);
  });

  it('uncancellable() keeps what its Virsh knew: one that reached libvirt gives its twin the full budget', async () => {
    script([{ code: 0, out: 'a\n' }, DAEMON_DOWN, DAEMON_DOWN, DAEMON_DOWN, DAEMON_DOWN], {
      code: 0,
      out: 'b\n',
    });
    const { v, clock } = virsh({ budgetMs: 90_000, initialMs: 2_000 });
    expect(await v.listDomains()).toEqual(['a']);
    const twin = v.uncancellable();
    expect(twin.uri).toBe(v.uri);
    expect(await twin.listDomains()).toEqual(['b']);
    expect((clock as ReturnType<typeof fakeClock>).sleeps.reduce((a, b) => a + b, 0)).toBe(11_000);
  });

  it('check() says libvirt cannot be reached within 5 s, not after the long budget', async () => {
    script([], DAEMON_DOWN);
    const { v, clock } = virsh({ budgetMs: 90_000 });
    await expect(v.check()).rejects.toThrow(/cannot reach libvirt at qemu:\/\/\/system/);
    const waited = (clock as ReturnType<typeof fakeClock>).sleeps.reduce((a, b) => a + b, 0);
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThanOrEqual(5_000);
  });

  it('a budget of 0 never asks again', async () => {
    script([], DROPPED);
    const { v } = virsh({ budgetMs: 0 });
    await expect(v.listNetworks()).rejects.toThrow(/End of file while reading data/);
    expect(calls()).toHaveLength(1);
  });

  it('a signal ends the retries at once', async () => {
    script([], DAEMON_DOWN);
    const ac = new AbortController();
    const clock: Clock = {
      now: () => 0,
      sleep: () => {
        ac.abort();
        return Promise.reject(new Error('interrupted'));
      },
    };
    const { v } = virsh({ clock }, ac.signal);
    await expect(v.listDomains()).rejects.toThrow(/interrupted/);
    expect(calls()).toHaveLength(1);
  });

  it('real time: jitter spreads each pause within ±10 %', async () => {
    script([RESET, RESET, RESET], { code: 0, out: 'a\nb\n' });
    const pauses: number[] = [];
    const clock: Clock = {
      now: () => performance.now(),
      sleep: (ms) => {
        pauses.push(ms);
        return new Promise((r) => setTimeout(r, 1));
      },
      random: Math.random,
    };
    const { v } = virsh({ clock, initialMs: 100 });
    expect(await v.listDomains()).toEqual(['a', 'b']);
    expect(pauses).toHaveLength(3);
    [100, 150, 225].forEach((base, i) => {
      expect(pauses[i]).toBeGreaterThanOrEqual(base * 0.9);
      expect(pauses[i]).toBeLessThanOrEqual(base * 1.1);
    });
  });
});
