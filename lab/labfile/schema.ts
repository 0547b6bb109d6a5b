import { z } from 'zod';

/** Lab and node names become libvirt object names and hostnames: keep them boring. */
export const LAB_NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;
/** A DNS label (RFC 1123), lower case, as a hostname and a libvirt domain name part. */
export const NODE_NAME_RE = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SIZE_RE = /^([1-9][0-9]{0,6})\s*(KiB|MiB|GiB|TiB|K|M|G|T)$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const CIDR_RE =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * A name virsh would read as a UUID rather than a name: only hex digits and dashes, 32
 * digits (libvirt's UUID parser skips dashes anywhere). `virsh dominfo NAME` tries an id,
 * then a UUID, then a name, so such a domain name could mean another domain.
 */
export function isUuidShaped(name: string): boolean {
  return /^[0-9a-fA-F-]+$/.test(name) && name.replace(/-/g, '').length === 32;
}

/** C0 and C1 control characters and DEL (never wanted in names, paths, URIs or keys). */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHAR_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** A safe absolute path: no `..`, no empty or `.` segments, no control characters. */
export function absolutePathProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return 'must be an absolute path (start with /)';
  return pathSegmentsProblem(p.slice(1));
}

/** A safe path below a folder: relative, no `..`, no empty or `.` segments, no control characters. */
export function relativePathProblem(p: string): string | undefined {
  if (p.startsWith('/')) return 'must be a relative path (not start with /)';
  return pathSegmentsProblem(p);
}

function pathSegmentsProblem(rest: string): string | undefined {
  if (CONTROL_CHAR_RE.test(rest)) return 'must not contain control characters';
  const segments = rest.split('/');
  if (segments.some((s) => s === '..')) return 'must not contain ".."';
  if (segments.some((s) => s === '' || s === '.'))
    return 'must be a normalised path (no "//", "/./" or trailing "/")';
  if (rest.length >= 1024) return 'is too long';
  return undefined;
}

/** A string schema whose value must pass `problem` (a path check); the message quotes the value. */
export function checkedPath(problem: (p: string) => string | undefined) {
  return z.string().superRefine((p, ctx) => {
    const m = problem(p);
    if (m) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(p)} ${m}` });
  });
}

const size = z
  .string()
  .regex(SIZE_RE, { message: 'expected a size such as 512MiB, 1GiB or 8G' })
  .describe('Size with a binary unit: KiB, MiB, GiB, TiB (K, M, G, T mean the same)');
const ipv4 = z.string().regex(IPV4_RE, { message: 'expected an IPv4 address such as 192.168.2.52' });

export const KNOWN_SERVICES = ['etcd', 'docker', 'fleet'] as const;
export const serviceName = z.enum(KNOWN_SERVICES);

const fileSpec = z
  .strictObject({
    path: z.string().min(1).describe('Absolute path in the guest'),
    content: z.string().describe('File content (UTF-8)'),
    mode: z
      .string()
      .regex(/^0{0,2}[0-7]{3}$/, {
        message: 'expected an octal mode such as "0644" (no setuid, setgid or sticky bit)',
      })
      .optional()
      .describe('Octal permissions, quoted: "0644"; no setuid, setgid or sticky bit'),
    owner: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/, {
        message: 'expected user or user:group',
      })
      .optional(),
  })
  .describe('A file written into the guest at first boot');

const cloudConfig = z
  .record(z.string(), z.unknown())
  .describe(
    'CoreOS cloud-config merged into what lab renders (coreos-cloudinit templates only); keys as Flatcar reads them: reboot_strategy, drop_ins',
  );

const machine = {
  cpus: z.number().int().min(1).max(64).optional().describe('Virtual CPUs'),
  memory: size.optional().describe('Guest memory, e.g. 1GiB'),
  disk: size.optional().describe('Virtual size of the node disk (overlay), e.g. 8GiB'),
};

const nodeSpec = z
  .strictObject({
    name: z
      .string()
      .regex(NODE_NAME_RE, { message: 'expected a hostname: lower-case letters, digits and dashes' })
      .refine((n) => !NODE_NAME_RE.test(n) || !isUuidShaped(n), {
        message: 'a node name must not look like a UUID (virsh would read it as one)',
      })
      .describe('Node name: hostname and the libvirt domain suffix'),
    ip: ipv4.describe('Static IPv4 address inside network.cidr'),
    mac: z
      .string()
      .regex(MAC_RE, { message: 'expected a lower-case MAC such as 52:54:00:12:34:56' })
      .optional()
      .describe('Fixed MAC; default: derived from the lab and node names'),
    template: z.string().min(1).optional().describe('Guest template for this node'),
    ...machine,
    services: z.array(serviceName).optional().describe('Overrides the lab-wide services for this node'),
    files: z.array(fileSpec).optional(),
    cloudConfig: cloudConfig.optional(),
  })
  .describe('One node');

const nodeGroup = z
  .strictObject({
    count: z.number().int().min(1).max(64).describe('How many alike nodes'),
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]*\{n\}([a-z0-9-]*[a-z0-9])?$/, {
        message: 'expected a name pattern with {n}, such as node{n} (a hostname once {n} is a number)',
      })
      .max(63, { message: 'expected a name pattern of at most 63 characters' })
      .describe('Name pattern; {n} counts from `start`'),
    start: z.number().int().min(0).max(9999).optional().describe('First value of {n} (default 1)'),
    ip: ipv4.describe('IPv4 address of the first node; the next nodes take the following addresses'),
    template: z.string().min(1).optional(),
    ...machine,
    services: z.array(serviceName).optional(),
    files: z.array(fileSpec).optional(),
    cloudConfig: cloudConfig.optional(),
  })
  .describe('Several alike nodes: { count: 3, name: node{n}, ip: 10.0.0.11 }');

const unitSpec = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-zA-Z0-9_{][a-zA-Z0-9:_.@{}-]{0,199}\.service$/, {
        message: 'expected a systemd service name such as hello.service',
      })
      .describe('Unit name; with count, {n} counts from 1: apache.{n}.service'),
    count: z.number().int().min(1).max(64).optional().describe('How many alike units'),
    content: z
      .string()
      .min(1)
      .describe('The unit file; its [X-Fleet] section (X-Conflicts, X-ConditionMachineOf, ...) places it'),
  })
  .describe('A unit lab schedules on the nodes as fleet does (through fleet where the image has it)');

export const labfileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z
      .string()
      .regex(LAB_NAME_RE, {
        message: 'expected a lab name: a lower-case letter, then up to 30 letters, digits or dashes',
      })
      .describe('Lab name; prefixes every libvirt object'),
    template: z
      .string()
      .min(1)
      .describe('Default guest template: a name in vm-templates/ or a path to a .yaml'),
    libvirt: z
      .string()
      .regex(/^[a-z0-9+]+:\/\/[!#-&(-;=?-[\]-~]*$/, {
        message: 'expected a libvirt URI such as qemu:///system (no spaces, quotes, <, > or backslashes)',
      })
      .optional()
      .describe('libvirt URI; default LIBVIRT_DEFAULT_URI, then qemu:///system'),
    accelerator: z
      .enum(['auto', 'kvm', 'tcg'])
      .optional()
      .describe('auto (default): KVM when it really runs guests, else TCG'),
    tcg: z
      .strictObject({
        tbCache: size
          .optional()
          .describe(
            "QEMU's translation cache per guest (default 256MiB; QEMU's own is about 1GiB): lower fits more guests in the host's memory, higher runs busy guests faster; whole MiB from 32MiB to 2GiB",
          ),
      })
      .optional()
      .describe('What applies only to guests emulated by TCG (no KVM)'),
    network: z
      .strictObject({
        mode: z
          .enum(['bridge', 'managed'])
          .describe('bridge: an existing host bridge; managed: lab owns a libvirt network'),
        bridge: z
          .string()
          .regex(/^(?!\.\.?$)[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,14}$/, {
            message:
              'expected a Linux interface name (at most 15 letters, digits, "_", "." or "-", not starting with "-" or ".")',
          })
          .optional()
          .describe('Host bridge (bridge mode) or the bridge name to create (managed mode)'),
        cidr: z
          .string()
          .regex(CIDR_RE, { message: 'expected an IPv4 CIDR such as 192.168.2.0/24' })
          .describe('Lab subnet'),
        gateway: ipv4.optional().describe('Default gateway for the nodes'),
        dns: z.array(ipv4).optional().describe('DNS servers for the nodes'),
        forward: z
          .enum(['none', 'nat'])
          .optional()
          .describe('managed mode: isolated (none, default) or NAT to the host'),
      })
      .describe('Where the nodes are attached'),
    defaults: z.strictObject(machine).optional().describe('Machine defaults for every node'),
    ssh: z
      .strictObject({
        user: z
          .string()
          .regex(/^[a-z_][a-z0-9_-]{0,31}$/, { message: 'expected a user name' })
          .optional()
          .describe("Login user; default: the template's"),
        authorizedKeys: z
          .array(
            z.string().regex(
              // eslint-disable-next-line no-control-regex
              /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\u0000-\u001f\u007f-\u009f]*)?$/,
              {
                message: 'expected one OpenSSH public key line',
              },
            ),
          )
          .optional()
          .describe("Public keys added beside the lab's own generated key"),
      })
      .optional(),
    services: z.array(serviceName).optional().describe('What to configure, start and health-check'),
    etcd: z
      .strictObject({
        bootstrap: z
          .enum(['static', 'discovery'])
          .optional()
          .describe('static initial-cluster from the node list'),
        discovery: z
          .string()
          .regex(/^https?:\/\/[!#-&(-;=?-[\]-~]+$/, {
            message: 'expected an http(s) URL (no spaces, quotes, <, > or backslashes)',
          })
          .refine((u) => URL.canParse(u), { message: 'expected an http(s) URL' })
          .optional()
          .describe('Discovery URL when bootstrap is discovery'),
        api: z.enum(['v2', 'v3']).optional().describe('v2 also enables the v2 API (etcdctl set/get, fleet)'),
        token: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/, {
            message: 'expected up to 64 letters, digits, "_" or "-"',
          })
          .optional()
          .describe('initial-cluster-token (default: the lab name)'),
      })
      .optional(),
    nodes: z.array(z.union([nodeSpec, nodeGroup])).min(1, { message: 'a lab needs at least one node' }),
    units: z.array(unitSpec).optional().describe('Units scheduled across the nodes, fleet style'),
    cloudConfig: cloudConfig.optional(),
  })
  .describe('lab: one declarative file for a virtual cluster');

export type Labfile = z.infer<typeof labfileSchema>;
export type LabfileNode = z.infer<typeof nodeSpec>;
export type LabfileNodeGroup = z.infer<typeof nodeGroup>;
export type FileSpec = z.infer<typeof fileSpec>;
export type LabfileUnit = z.infer<typeof unitSpec>;
export type ServiceName = z.infer<typeof serviceName>;

/** Bytes of a size string such as `1GiB`; the schema guarantees the form. */
export function parseSize(text: string): number {
  const m = SIZE_RE.exec(text);
  if (!m) throw new Error(`not a size: ${text}`);
  const unit = m[2]!.charAt(0);
  const power = { K: 1, M: 2, G: 3, T: 4 }[unit as 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * 1024 ** power;
}
