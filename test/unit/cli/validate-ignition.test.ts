// `lab validate` on a lab provisioned by Ignition: a Labfile file Ignition would refuse is
// an error at its line before anything boots, and upstream's ignition-validate reads the
// rendered config (a finding of it shows at the Labfile line it comes from).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tmp } from './lab-cli.js';

const labfile = (files: string) => `name: ign
template: debian-12-ignition
network: { mode: managed, cidr: 10.78.0.0/24 }
nodes:
  - name: i1
    ip: 10.78.0.11
    files:
${files}`;

function write(text: string): string {
  const f = path.join(tmp('ignv'), 'Labfile.yaml');
  writeFileSync(f, text);
  return f;
}

describe('lab validate, Ignition template', { timeout: 60_000 }, () => {
  it('accepts a Labfile file Ignition takes', async () => {
    const f = write(labfile("      - { path: /etc/motd, mode: '0640', content: hi }\n"));
    const r = await cli(['validate', '-f', f]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it("refuses a file at a path lab's own config writes: exit 2, file:line:col, nothing else run", async () => {
    const f = write(
      labfile('      - { path: /etc/motd, content: hi }\n      - { path: /etc/hostname, content: x }\n'),
    );
    const r = await cli(['validate', '-f', f]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${f}:9:17:`);
    expect(r.stderr).toContain(
      "file /etc/hostname: lab's Ignition config for template debian-12-ignition already writes this path",
    );
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  // lab's own checks leave nothing for Ignition 2.14 to refuse in a valid Labfile (special
  // mode bits, unclean or relative paths, duplicates are all refused before). So a stand-in
  // ignition-validate on PATH reports findings, to check where lab shows them.
  it("shows ignition-validate's findings at the Labfile line they come from; an error exits 2", async () => {
    const bin = tmp('ignv-bin');
    writeFileSync(
      path.join(bin, 'ignition-validate'),
      [
        '#!/bin/sh',
        'cat >/dev/null',
        'echo "warning at $.storage.files.0.path, line 1 col 5: a warning about lab\'s own file"',
        'echo "error at $.storage.files.9.path, line 1 col 900: path is bad somehow"',
        'exit 1',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const f = write(labfile('      - path: /usr/local/bin/x\n        content: hi\n'));
    const r = await cli(['validate', '-f', f], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
    expect(r.exitCode).toBe(2);
    // files.9: past the 9 files lab writes for an etcd + docker node, so the Labfile's first.
    expect(r.stderr).toContain(`${f}:8:15: node i1: ignition-validate: path is bad somehow`);
    // Not shown with the error: warnings are printed only for a lab that validates.
    expect(r.stderr).not.toContain("a warning about lab's own file");
    const ok = write(labfile('      - path: /usr/local/bin/x\n        content: hi\n'));
    writeFileSync(
      path.join(bin, 'ignition-validate'),
      '#!/bin/sh\ncat >/dev/null\necho "warning at \\$.storage.files.0.path, line 1 col 5: about lab\'s own file"\n',
      { mode: 0o755 },
    );
    const w = await cli(['validate', '-f', ok], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
    expect(w.exitCode).toBe(0);
    expect(w.stderr).toContain(
      "node i1: ignition-validate: about lab's own file (at $.storage.files.0.path)",
    );
  });
});
