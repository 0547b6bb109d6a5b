// S11: the libvirt URI is handled safely. lab refuses (unless LAB_ALLOW_INSECURE_URI=1) a URI
// that turns off peer checks or encryption, as libvirt itself would read it: parameter
// names in any case (libvirt matches them with STRCASEEQ), names and values URI-unescaped,
// `no_verify` as an integer (any non-zero one turns checks off), transports in any case.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkUriSafety, parseLibvirtUri, withUriParams } from '../../../lab/providers/uri.js';

/** [uri, undefined when allowed, else what the reason must say]. */
const TABLE: [string, RegExp | undefined][] = [
  // Allowed: local sockets, ssh with a key, TLS with its checks on.
  ['qemu:///system', undefined],
  ['qemu:///session', undefined],
  ['qemu+unix:///system', undefined],
  ['qemu+unix:///session?socket=/run/user/1000/libvirt/virtqemud-sock', undefined],
  ['qemu+ssh://root@host.example/system?keyfile=/root/.ssh/id_ed25519', undefined],
  [
    'qemu+ssh://host/system?keyfile=%2Froot%2F.ssh%2Fid&known_hosts=/var/lib/lab/r/private/known_hosts',
    undefined,
  ],
  ['qemu+tls://host.example/system', undefined],
  ['qemu://host.example/system', undefined], // no transport and a host: TLS
  ['qemu+tls://host.example/system?no_verify=0', undefined],
  ['qemu+ssh://host/system?no_verify=00', undefined],
  ['qemu+libssh://host/system?known_hosts_verify=normal', undefined],
  ['qemu+libssh2://host/system?known_hosts_verify=NORMAL&known_hosts=/k', undefined],
  ['qemu+ssh://host/system?no_tty=1', undefined], // another boolean: not a check
  ['qemu+ssh://host/system?no_verifyx=1', undefined],
  ['qemu+ssh://host/system#no_verify=1', undefined], // a fragment, not a parameter
  ['qemu+ssh://tcp.example/system', undefined], // a host called tcp is not the tcp transport
  ['qemu+ssh://host/system?keyfile=/k%26no_verify%3D1', undefined], // one value: "/k&no_verify=1"
  ['test:///default', undefined],
  // Refused: the tcp and ext transports, in any case.
  ['qemu+tcp://host/system', /plain TCP/],
  ['QEMU+TCP://host/system', /plain TCP/],
  ['qemu+Tcp:///system', /plain TCP/],
  ['xen+tcp://host/', /plain TCP/],
  ['  qemu+tcp://host/system', /plain TCP/],
  ['qemu+ext:///system?command=/usr/bin/nc', /ext transport/],
  // no_verify, however spelled: it turns off TLS certificate and ssh host key checks.
  ['qemu+tls://host/system?no_verify=1', /no_verify=1 turns off/],
  ['qemu+ssh://host/system?no_verify=1', /no_verify=1/],
  ['qemu+ssh://host/system?keyfile=/k&no_verify=1', /no_verify=1/],
  ['qemu+ssh://host/system?keyfile=/k;no_verify=1', /no_verify=1/],
  ['qemu+ssh://host/system?NO_VERIFY=1', /no_verify=1/],
  ['qemu+ssh://host/system?no_verify=%31', /no_verify=1/],
  ['qemu+ssh://host/system?no%5Fverify=1', /no_verify=1/],
  ['qemu+ssh://host/system?no_verify%00x=1', /no_verify=1/], // libvirt's C string ends at the NUL
  ['qemu+ssh://host/system?no_verify=2', /no_verify=2/],
  ['qemu+ssh://host/system?no_verify=+1', /no_verify=\+1/],
  ['qemu+ssh://host/system?no_verify=-1', /no_verify=-1/],
  ['qemu+ssh://host/system?no_verify=yes', /no_verify=yes/],
  // known_hosts_verify other than normal: auto trusts on first use, ignore trusts anything.
  ['qemu+libssh://host/system?known_hosts_verify=ignore', /known_hosts_verify=ignore/],
  ['qemu+libssh2://host/system?known_hosts_verify=auto', /known_hosts_verify=auto/],
  ['qemu+libssh://host/system?known_hosts_verify=IGNORE', /known_hosts_verify=IGNORE/],
  ['qemu+libssh2://host/system?known_hosts_verify=%69gnore', /known_hosts_verify=ignore/],
  ['qemu+libssh2://host/system?Known_Hosts_Verify=Auto', /known_hosts_verify=Auto/],
  ['qemu+ssh://host/system?known_hosts_verify=auto', /known_hosts_verify=auto/],
  ['qemu+libssh://host/system?a=b;known_hosts_verify=ignore', /known_hosts_verify=ignore/],
  ['qemu+libssh2://host/system?keyfile=/k&known_hosts_verify=auto&no_verify=0', /known_hosts_verify=auto/],
  // A program the URI names, run to connect.
  ['qemu+ssh://host/system?command=/tmp/evil', /command=\/tmp\/evil/],
  ['qemu+ssh://host/system?Command=%2Ftmp%2Fevil', /command=\/tmp\/evil/],
];

describe('S11 checkUriSafety', () => {
  it('has a table of at least 20 URIs, allowed and refused', () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(20);
    expect(TABLE.filter(([, r]) => r === undefined).length).toBeGreaterThanOrEqual(10);
    expect(TABLE.filter(([, r]) => r !== undefined).length).toBeGreaterThanOrEqual(10);
  });

  it.each(TABLE)('%s', (uri, refused) => {
    const reason = checkUriSafety(uri);
    if (refused === undefined) expect(reason).toBeUndefined();
    else expect(reason).toMatch(refused);
  });
});

describe('libvirt URI parameters', () => {
  it('are read as libvirt reads them: unescaped, in order, `&` and `;` separated', () => {
    expect(
      parseLibvirtUri('QEMU+SSH://u@h:22/system?keyfile=/a%20b&x;flag&=v&known%5Fhosts=%2Fk#frag'),
    ).toEqual({
      scheme: 'qemu+ssh',
      transport: 'ssh',
      params: [
        { name: 'keyfile', value: '/a b' },
        { name: 'x', value: '' },
        { name: 'flag', value: '' },
        { name: 'known_hosts', value: '/k' },
      ],
    });
    expect(parseLibvirtUri('qemu:///system')).toEqual({ scheme: 'qemu', transport: '', params: [] });
  });

  it('withUriParams escapes every value, so it reads back whole and cannot add a parameter', () => {
    const base = 'qemu+ssh://root@host/system';
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes('\0')),
        fc.constantFrom(base, `${base}?keyfile=/k`, `${base}?`, `${base}#f`),
        (value, uri) => {
          const built = withUriParams(uri, { known_hosts: value });
          expect(parseLibvirtUri(built).params.at(-1)).toEqual({ name: 'known_hosts', value });
          expect(checkUriSafety(built)).toBeUndefined();
          expect(built.endsWith('#f')).toBe(uri.endsWith('#f'));
        },
      ),
      { seed: 11, numRuns: 300 },
    );
    expect(withUriParams(base, { keyfile: '/k&no_verify=1' })).toBe(`${base}?keyfile=/k%26no_verify%3D1`);
    expect(checkUriSafety(withUriParams(base, { keyfile: '/k&no_verify=1' }))).toBeUndefined();
    expect(checkUriSafety(withUriParams(base, { no_verify: '1' }))).toMatch(/no_verify=1/);
    expect(withUriParams(base, {})).toBe(base);
  });
});
