// lab logs: a node's console log, as lab keeps it, printed safe for the terminal.
import { execa } from 'execa';
import { appendFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cli, example, root, tmp } from './lab-cli.js';

/** A state folder holding coreos1's console log with `text`, as libvirt writes it. */
function stateWith(text: string): { state: string; log: string } {
  const state = tmp('logs-state');
  const dir = path.join(state, 'coreos-lab', 'console');
  mkdirSync(dir, { recursive: true });
  const log = path.join(dir, 'coreos1.log');
  writeFileSync(log, text);
  return { state, log };
}

const BOOT =
  '[    0.000000] Linux version 6.1.0\r\n' +
  '[\u001b[0;32m  OK  \u001b[0m] Reached target \u001b[0;1;39mmulti-user.target\u001b[0m.\r\n' +
  '\u001b]0;pwned title\u0007coreos1 login: \r\n';

describe('lab logs', { timeout: 60_000 }, () => {
  it('prints the log without the terminal sequences the guest wrote', async () => {
    const { state } = stateWith(BOOT);
    const r = await cli(['logs', 'coreos1', '-f', example], { env: { LAB_STATE_DIR: state } });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(
      '[    0.000000] Linux version 6.1.0\n[  OK  ] Reached target multi-user.target.\ncoreos1 login: \n',
    );
  });

  it('--lines N: the last N lines; --raw: the bytes as they are', async () => {
    const { state } = stateWith(BOOT);
    const last = await cli(['logs', 'coreos1', '--lines', '2', '-f', example], {
      env: { LAB_STATE_DIR: state },
    });
    expect(last.stdout).toBe('[  OK  ] Reached target multi-user.target.\ncoreos1 login: \n');
    const raw = await cli(['logs', 'coreos1', '--raw', '-f', example], { env: { LAB_STATE_DIR: state } });
    expect(raw.stdout).toBe(BOOT);
  });

  it('--follow prints what is appended, a sequence cut between two writes included, until Ctrl-C', async () => {
    const { state, log } = stateWith('first\r\n');
    const tsx = pathToFileURL(path.join(root, 'node_modules/tsx/dist/loader.mjs')).href;
    const child = execa(
      process.execPath,
      ['--import', tsx, path.join(root, 'cmd/lab.ts'), 'logs', 'coreos1', '--follow', '-f', example],
      { reject: false, env: { LAB_STATE_DIR: state, LAB_FILE: '' }, stdin: 'ignore' },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const until = async (text: string) => {
      for (let i = 0; i < 200 && !out.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain(text);
    };
    await until('first\n');
    appendFileSync(log, 'second \u001b[0;3');
    await new Promise((r) => setTimeout(r, 600));
    appendFileSync(log, '2mgreen\u001b[0m\r\n');
    await until('green\n');
    child.kill('SIGINT');
    const r = await child;
    expect(out).toBe('first\nsecond green\n');
    expect(r.exitCode).toBe(0);
  });

  it('refuses a symlink, names the nodes for an unknown one, says what to do when there is no log', async () => {
    const { state, log } = stateWith('');
    const other = path.join(tmp('logs-other'), 'secret');
    writeFileSync(other, 'not a console log\n');
    rmSync(log);
    symlinkSync(other, log);
    const link = await cli(['logs', 'coreos1', '-f', example], { env: { LAB_STATE_DIR: state } });
    expect(link.exitCode).toBe(1);
    expect(link.stderr).toContain('it is a symlink');
    expect(link.stdout).toBe('');
    const unknown = await cli(['logs', 'coreos9', '-f', example], { env: { LAB_STATE_DIR: state } });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain(
      'no node "coreos9" in lab coreos-lab (nodes: coreos1, coreos2, coreos3)',
    );
    const none = await cli(['logs', 'coreos2', '-f', example], { env: { LAB_STATE_DIR: state } });
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('coreos2 has no console log yet');
    expect(none.stderr).toContain('lab up creates it');
  });
});
