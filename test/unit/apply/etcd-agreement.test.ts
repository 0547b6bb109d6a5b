import { describe, expect, it } from 'vitest';
import { etcdAgreement } from '../../../lab/apply/up.js';
import type { EtcdHealth } from '../../../lab/guest/probes/etcd.js';

const member = (id: string, leaderId: string | undefined, state: EtcdHealth['state']): EtcdHealth => ({
  memberId: id,
  ...(leaderId ? { leaderId } : {}),
  state,
  members: 3,
});

describe('etcdAgreement (do the members agree on one leader?)', () => {
  it('accepts one leader that every member names', () => {
    const all = [member('a', 'b', 'follower'), member('b', 'b', 'leader'), member('c', 'b', 'follower')];
    expect(etcdAgreement(all)).toBe(all);
  });

  it('refuses members that name different leaders (a leader change seen half way)', () => {
    expect(
      etcdAgreement([member('a', 'b', 'follower'), member('b', 'b', 'leader'), member('c', 'c', 'leader')]),
    ).toBeUndefined();
    expect(
      etcdAgreement([member('a', 'c', 'follower'), member('b', 'b', 'leader'), member('c', 'b', 'follower')]),
    ).toBeUndefined();
  });

  it('refuses no leader, two leaders, an unhealthy member and an empty list', () => {
    expect(
      etcdAgreement([member('a', undefined, 'unhealthy'), member('b', undefined, 'unhealthy')]),
    ).toBeUndefined();
    expect(etcdAgreement([member('a', 'a', 'leader'), member('b', 'a', 'leader')])).toBeUndefined();
    expect(
      etcdAgreement([member('a', 'b', 'follower'), member('b', 'b', 'leader'), member('c', 'b', 'down')]),
    ).toBeUndefined();
    expect(etcdAgreement([])).toBeUndefined();
  });
});
