import { describe, expect, it } from 'vitest';
import { addressAnswers } from '../../../lab/apply/preflight.js';

describe('addressAnswers (is a LAN address taken?)', () => {
  it('says yes when the host refuses the connection: a refusal is an answer', async () => {
    // Port 22 on loopback: whether sshd listens or refuses, the address answers.
    expect(await addressAnswers('127.0.0.1', 1500)).toBe(true);
  });
});
