// The two scripts lab rotate-keys runs on a guest as the login user, run here by the
// same sh on a scratch HOME: the new login key is added once, the old one removed by its
// key blob, every other key (the user's own, from the Labfile) kept.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADD_KEY, DROP_KEY } from '../../../lab/apply/rotate-keys.js';
import { userKey } from '../../../lab/plan/identity.js';

const home = () => {
  const h = mkdtempSync(path.join(os.tmpdir(), 'lab-rotate-'));
  mkdirSync(path.join(h, '.ssh'), { mode: 0o700 });
  return h;
};
const sh = (h: string, script: string, ...args: string[]) =>
  execa('sh', ['-c', script, 'x', ...args], {
    env: { HOME: h, PATH: process.env.PATH ?? '' },
    reject: false,
  });

describe('lab rotate-keys on the guest: authorized_keys', () => {
  const oldKey = userKey(Buffer.alloc(32, 1), 'lab').publicKey;
  const newKey = userKey(Buffer.alloc(32, 2), 'lab').publicKey;
  const mine = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMineMineMineMineMineMineMineMineMineMineMine me@laptop';

  it('adds the new key once, then drops the old one by its blob, keeping the others', async () => {
    const h = home();
    const file = path.join(h, '.ssh', 'authorized_keys');
    // As cloud-init writes them, one with options in front.
    writeFileSync(file, `${oldKey}\n${mine}\nno-pty ${oldKey}\n`);
    expect((await sh(h, ADD_KEY, newKey)).exitCode).toBe(0);
    expect((await sh(h, ADD_KEY, newKey)).exitCode).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(`${oldKey}\n${mine}\nno-pty ${oldKey}\n${newKey}\n`);
    const r = await sh(h, DROP_KEY, oldKey.split(' ')[1]!);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(`${mine}\n${newKey}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('makes authorized_keys when there is none', async () => {
    const h = home();
    expect((await sh(h, ADD_KEY, newKey)).exitCode).toBe(0);
    expect(readFileSync(path.join(h, '.ssh', 'authorized_keys'), 'utf8')).toBe(`${newKey}\n`);
  });
});
