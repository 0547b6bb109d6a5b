import { z } from 'zod';
import {
  CONTROL_CHAR_RE,
  absolutePathProblem,
  checkedPath,
  relativePathProblem,
  serviceName,
} from '../labfile/schema.js';

export const DIALECTS = ['cloud-init', 'coreos-cloudinit', 'ignition'] as const;
export type Dialect = (typeof DIALECTS)[number];

const digest = z.string().regex(/^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/, {
  message: 'expected sha256:<64 hex> or sha512:<128 hex>',
});

/** A template's name (also its file name in vm-templates/ and its image's cache folder). */
export const TEMPLATE_NAME_RE = /^[a-z][a-z0-9.-]{0,40}$/;
const TEMPLATE_NAME_MESSAGE =
  'expected a template name: a lower-case letter, then up to 40 letters, digits, "." or "-"';

/** Free text shown to people (in messages, in a terminal): one paragraph, no control characters. */
const prose = z.string().refine((t) => !CONTROL_CHAR_RE.test(t.replace(/\n/g, ' ')), {
  message: 'must not contain control characters',
});

/** Only http(s) downloads, and no character a URL needs no quoting for. */
const httpUrl = z
  .string()
  .regex(/^https?:\/\/[!#-&(-;=?-[\]-~]+$/, {
    message: 'expected an http(s) URL (no spaces, quotes, <, > or backslashes)',
  })
  .refine((u) => URL.canParse(u), { message: 'expected an http(s) URL' });

const serviceInfo = z.strictObject({
  unit: z
    .string()
    .regex(/^[a-zA-Z0-9_][a-zA-Z0-9:_.@-]{0,199}\.service$/, {
      message: 'expected a systemd service name such as etcd.service',
    })
    .describe('systemd unit that runs it in the guest'),
  version: z
    .string()
    .regex(/^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,39}$/, { message: 'expected a version such as 3.5' })
    .optional()
    .describe('Version shipped in the image (informative; etcd: picks the config generation)'),
  localImage: checkedPath(absolutePathProblem)
    .optional()
    .describe('docker: a rootfs tarball in the guest to `docker import` for the run check'),
  container: z
    .string()
    .regex(/^[a-z0-9][a-z0-9./_:@-]{0,200}$/, {
      message: 'expected a container image such as quay.io/coreos/etcd:v3.5.17',
    })
    .optional()
    .describe('etcd: the image does not ship it; lab runs this container image as the unit'),
});

/** The guest OS family: what turns automatic updates off, where etcd comes from. */
export const OS_FAMILIES = ['debian', 'container-linux', 'flatcar', 'fedora-coreos'] as const;

export const templateSchema = z.strictObject({
  name: z.string().regex(TEMPLATE_NAME_RE, { message: TEMPLATE_NAME_MESSAGE }),
  description: prose.optional(),
  os: z.enum(OS_FAMILIES).default('debian'),
  arch: z.enum(['x86_64']).default('x86_64'),
  image: z.union([
    z.strictObject({
      build: z
        .string()
        .regex(TEMPLATE_NAME_RE, { message: TEMPLATE_NAME_MESSAGE })
        .describe('Built locally by `lab image build NAME`'),
      format: z.enum(['qcow2', 'raw']).default('qcow2'),
    }),
    z
      .strictObject({
        url: httpUrl.optional(),
        /** A local image file (absolute). */
        path: checkedPath(absolutePathProblem).optional(),
        digest: digest.optional(),
        /** Where the expected digest is published when the image itself is not pinned. */
        digestUrl: httpUrl.optional(),
        /** A detached OpenPGP signature over the published (still compressed) file. */
        signatureUrl: httpUrl.optional(),
        /** The key that must have made it: a file in vm-templates/keys/ with a pinned fingerprint. */
        signingKey: z
          .string()
          .regex(/^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.asc$/, {
            message: 'expected a key file name in vm-templates/keys/ (NAME.asc, no slashes)',
          })
          .optional(),
        format: z.enum(['qcow2', 'raw']).default('qcow2'),
        compression: z.enum(['none', 'gz', 'bz2', 'xz']).default('none'),
        unavailable: prose.optional().describe('Why this image can no longer be downloaded'),
      })
      .refine((i) => !i.signatureUrl === !i.signingKey, {
        message: 'image.signatureUrl and image.signingKey go together',
        path: ['signingKey'],
      }),
  ]),
  boot: z.union([
    z.strictObject({
      kernel: checkedPath(relativePathProblem).describe('Kernel file, relative to the image directory'),
      initrd: checkedPath(relativePathProblem).optional(),
      cmdline: z
        .string()
        .min(1)
        .max(2047, { message: 'a kernel command line has at most 2047 characters' })
        .refine((t) => !CONTROL_CHAR_RE.test(t), { message: 'must not contain control characters' }),
    }),
    z.strictObject({ firmware: z.enum(['bios', 'uefi']) }),
  ]),
  provisioning: z.strictObject({
    dialect: z.enum(DIALECTS),
    delivery: z.enum(['nocloud', 'config-drive', 'fwcfg']),
    /** Ignition spec version, or the fw_cfg key name, where the dialect needs it. */
    ignitionVersion: z
      .string()
      .regex(/^3\.[0-9]{1,2}\.[0-9]{1,2}$/, { message: 'expected an Ignition spec version such as 3.4.0' })
      .optional(),
    fwcfgName: z
      .string()
      .regex(/^opt\/[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/, {
        message:
          'expected a fw_cfg name such as opt/com.coreos/config (opt/, then letters, digits, ".", "_", "-")',
      })
      .max(55, { message: 'a fw_cfg name has at most 55 characters' })
      .optional(),
  }),
  ssh: z.strictObject({
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { message: 'expected a user name' }),
  }),
  /** Network interface name inside the guest (for networkd `[Match] Name=`). */
  nic: z
    .string()
    .regex(/^[a-zA-Z0-9_*][a-zA-Z0-9_.*-]{0,14}$/, {
      message: 'expected an interface name (or glob) of at most 15 characters, not starting with "-" or "."',
    })
    .default('eth0'),
  /** Which network stack reads the static address: systemd-networkd or NetworkManager. */
  network: z.enum(['networkd', 'networkmanager']).default('networkd'),
  /** The services this image can run. */
  services: z.partialRecord(serviceName, serviceInfo).default({}),
  /** Minimum memory the guest needs to boot with its services, in MiB. */
  minMemoryMiB: z
    .number()
    .int()
    .min(64)
    .max(1024 * 1024)
    .default(256),
});

export type Template = z.infer<typeof templateSchema>;
