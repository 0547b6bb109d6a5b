import { execa } from 'execa';
import { chmodSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import type { Exec } from '../../../lab/guest/probes/index.js';
import {
  applyUnits,
  observeScript,
  observeUnits,
  parseSystemctlShow,
  parseUnitMarkers,
  unitMarker,
  type ObservedUnit,
} from '../../../lab/guest/units.js';

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);

/** An Exec that records argv and stdin, and answers by the argv's first words. */
function recorder(answer: (argv: string[]) => { stdout?: string; code?: number } = () => ({})) {
  const calls: { argv: string[]; input?: string }[] = [];
  const exec: Exec = {
    exec(argv, opts) {
      calls.push({ argv, ...(opts?.input !== undefined ? { input: opts.input } : {}) });
      const a = answer(argv);
      return Promise.resolve({ stdout: a.stdout ?? '', stderr: a.code ? 'boom' : '', code: a.code ?? 0 });
    },
  };
  return { exec, calls };
}

describe('unit markers and systemctl show', () => {
  it("reads this lab's markers only", () => {
    const out =
      `/etc/systemd/system/hello.service:${unitMarker('lab1', H1)}\n` +
      `/etc/systemd/system/other.service:${unitMarker('lab2', H2)}\n` +
      `/etc/systemd/system/bad.service:# lab unit lab=lab1 sha256=short\n`;
    expect([...parseUnitMarkers(out, 'lab1')]).toEqual([['hello.service', H1]]);
  });

  it('reads one record per unit', () => {
    const out =
      'Id=hello.service\nLoadState=loaded\nActiveState=active\nSubState=running\nDescription=MyApp\n\n' +
      'Id=gone.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nDescription=gone.service\n';
    expect([...parseSystemctlShow(out).values()]).toEqual([
      { name: 'hello.service', load: 'loaded', active: 'active', sub: 'running', description: 'MyApp' },
      {
        name: 'gone.service',
        load: 'not-found',
        active: 'inactive',
        sub: 'dead',
        description: 'gone.service',
      },
    ]);
  });

  it('observes with one command: a constant script, the lab and unit names as its arguments', async () => {
    const r = recorder(() => ({
      stdout:
        `/etc/systemd/system/old.service:${unitMarker('l', H1)}\n---\n` +
        'Id=new.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nDescription=new.service\n\n' +
        'Id=old.service\nLoadState=loaded\nActiveState=active\nSubState=running\nDescription=Old\n',
    }));
    const seen = await observeUnits(r.exec, 'l', ['new.service']);
    expect(r.calls).toHaveLength(1);
    const [sh, c, script, name, ...args] = r.calls[0]!.argv;
    expect([sh, c, name, ...args]).toEqual(['sh', '-c', 'sh', 'l', 'new.service']);
    // Nothing of the lab or its units is in the script's text.
    expect(script).not.toContain('new.service');
    expect(script).toContain(
      'systemctl show --property=Id,LoadState,ActiveState,SubState,Description -- "$@"',
    );
    expect(seen.get('old.service')).toEqual({
      name: 'old.service',
      hash: H1,
      load: 'loaded',
      active: 'active',
      sub: 'running',
      description: 'Old',
    });
    expect(seen.get('new.service')).toMatchObject({ load: 'not-found', active: 'inactive' });
    expect(seen.get('new.service')?.hash).toBeUndefined();
  });
});

describe('applyUnits', () => {
  const observed = (name: string, hash: string | undefined, active: string): ObservedUnit => ({
    name,
    ...(hash ? { hash } : {}),
    load: 'loaded',
    active,
    sub: active === 'active' ? 'running' : 'dead',
    description: '',
  });

  it('writes new and changed units through stdin, removes stale ones, restarts changed, starts stopped', async () => {
    const r = recorder();
    const want = new Map([
      ['new.service', { content: '[Service]\nExecStart=/bin/true', hash: H1 }],
      ['changed.service', { content: '[Service]\nExecStart=/bin/false\n', hash: H2 }],
      ['stopped.service', { content: 'x\n', hash: H1 }],
      ['same.service', { content: 'y\n', hash: H1 }],
    ]);
    const seen = new Map([
      ['changed.service', observed('changed.service', H1, 'active')],
      ['stopped.service', observed('stopped.service', H1, 'failed')],
      ['same.service', observed('same.service', H1, 'active')],
      ['stale.service', observed('stale.service', H2, 'active')],
    ]);
    const c = await applyUnits(r.exec, want, seen, 'l');
    expect(c).toEqual({
      written: ['new.service', 'changed.service'],
      removed: ['stale.service'],
      started: ['changed.service', 'new.service', 'stopped.service'],
    });
    expect(r.calls.map((x) => x.argv.join(' '))).toEqual([
      'sudo systemctl stop -- stale.service',
      'sudo rm -f -- /etc/systemd/system/stale.service',
      'sudo install -m 0644 /dev/stdin /etc/systemd/system/new.service',
      'sudo install -m 0644 /dev/stdin /etc/systemd/system/changed.service',
      'sudo systemctl daemon-reload',
      'sudo systemctl restart --no-block -- changed.service',
      'sudo systemctl start --no-block -- new.service stopped.service',
    ]);
    // The marker first, then the content, newline-terminated.
    expect(r.calls[2]!.input).toBe(`${unitMarker('l', H1)}\n[Service]\nExecStart=/bin/true\n`);
  });

  it('does nothing on a node that is as wanted', async () => {
    const r = recorder();
    const c = await applyUnits(
      r.exec,
      new Map([['same.service', { content: 'y\n', hash: H1 }]]),
      new Map([['same.service', observed('same.service', H1, 'active')]]),
      'l',
    );
    expect(c).toEqual({ written: [], removed: [], started: [] });
    expect(r.calls).toEqual([]);
  });

  it('leaves units that are not lab-written alone, and fails with the command when it fails', async () => {
    const r = recorder((argv) => (argv[1] === 'install' ? { code: 1 } : {}));
    const seen = new Map([['admin.service', observed('admin.service', undefined, 'active')]]);
    await expect(
      applyUnits(r.exec, new Map([['a.service', { content: 'x', hash: H1 }]]), seen, 'l'),
    ).rejects.toThrow(
      /^sudo install -m 0644 \/dev\/stdin \/etc\/systemd\/system\/a\.service exited 1: boom$/,
    );
    expect(r.calls.some((c) => c.argv.includes('admin.service'))).toBe(false);
  });
});

describe('the observing script, run by a real sh', () => {
  it("prints this lab's markers, then hands wanted and found units to systemctl show", async () => {
    const dir = mkdtempSync(`${os.tmpdir()}/lab-units-`);
    writeFileSync(`${dir}/a.service`, `${unitMarker('l1', H1)}\n[Service]\n`);
    writeFileSync(`${dir}/b.service`, `${unitMarker('l2', H2)}\n`);
    writeFileSync(`${dir}/plain.service`, '[Unit]\n');
    writeFileSync(`${dir}/quote's.service`, `${unitMarker('l1', H2)}\n`);
    symlinkSync('/dev/null', `${dir}/masked.service`);
    // A stand-in systemctl that prints its arguments.
    const bin = mkdtempSync(`${os.tmpdir()}/lab-bin-`);
    writeFileSync(`${bin}/systemctl`, '#!/bin/sh\nprintf "%s\\n" "$@"\n');
    chmodSync(`${bin}/systemctl`, 0o755);
    const r = await execa('sh', ['-c', observeScript(dir), 'sh', 'l1', 'want.service'], {
      env: { PATH: `${bin}:/usr/bin:/bin` },
    });
    const [marks, args] = r.stdout.split('---\n');
    expect(marks).toBe(
      `${dir}/a.service:${unitMarker('l1', H1)}\n${dir}/quote's.service:${unitMarker('l1', H2)}\n`,
    );
    expect(args!.split('\n')).toEqual([
      'show',
      '--property=Id,LoadState,ActiveState,SubState,Description',
      '--',
      'want.service',
      'a.service',
      "quote's.service",
    ]);
    // No unit wanted or found: no systemctl at all.
    const none = await execa('sh', ['-c', observeScript(dir), 'sh', 'nolab'], {
      env: { PATH: `${bin}:/usr/bin:/bin` },
    });
    expect(none.stdout).toBe('---');
  });
});
