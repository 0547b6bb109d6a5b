import { z } from 'zod';
import { serviceName } from '../labfile/schema.js';

export const DIALECTS = ['cloud-init', 'coreos-cloudinit', 'ignition'] as const;
export type Dialect = (typeof DIALECTS)[number];

const digest = z.string().regex(/^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/, {
  message: 'expected sha256:<64 hex> or sha512:<128 hex>',
});

const serviceInfo = z.strictObject({
  unit: z.string().min(1).describe('systemd unit that runs it in the guest'),
  version: z
    .string()
    .optional()
    .describe('Version shipped in the image (informative; etcd: picks the config generation)'),
  localImage: z
    .string()
    .optional()
    .describe('docker: a rootfs tarball in the guest to `docker import` for the run check'),
  container: z
    .string()
    .regex(/^[a-z0-9][a-z0-9./_:@-]{0,200}$/)
    .optional()
    .describe('etcd: the image does not ship it; lab runs this container image as the unit'),
});

/** The guest OS family: what turns automatic updates off, where etcd comes from. */
export const OS_FAMILIES = ['debian', 'container-linux', 'flatcar', 'fedora-coreos'] as const;

export const templateSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9.-]{0,40}$/),
  description: z.string().optional(),
  os: z.enum(OS_FAMILIES).default('debian'),
  arch: z.enum(['x86_64']).default('x86_64'),
  image: z.union([
    z.strictObject({
      build: z
        .string()
        .regex(/^[a-z][a-z0-9.-]{0,40}$/)
        .describe('Built locally by `lab image build NAME`'),
      format: z.enum(['qcow2', 'raw']).default('qcow2'),
    }),
    z
      .strictObject({
        url: z.url().optional(),
        path: z.string().optional(),
        digest: digest.optional(),
        /** Where the expected digest is published when the image itself is not pinned. */
        digestUrl: z.url().optional(),
        /** A detached OpenPGP signature over the published (still compressed) file. */
        signatureUrl: z.url().optional(),
        /** The key that must have made it: a file in vm-templates/keys/ with a pinned fingerprint. */
        signingKey: z
          .string()
          .regex(/^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.asc$/, {
            message: 'expected a key file name in vm-templates/keys/ (NAME.asc, no slashes)',
          })
          .optional(),
        format: z.enum(['qcow2', 'raw']).default('qcow2'),
        compression: z.enum(['none', 'gz', 'bz2', 'xz']).default('none'),
        unavailable: z.string().optional().describe('Why this image can no longer be downloaded'),
      })
      .refine((i) => !i.signatureUrl === !i.signingKey, {
        message: 'image.signatureUrl and image.signingKey go together',
        path: ['signingKey'],
      }),
  ]),
  boot: z.union([
    z.strictObject({
      kernel: z.string().min(1).describe('Kernel file, relative to the image directory'),
      initrd: z.string().min(1).optional(),
      cmdline: z.string().min(1),
    }),
    z.strictObject({ firmware: z.enum(['bios', 'uefi']) }),
  ]),
  provisioning: z.strictObject({
    dialect: z.enum(DIALECTS),
    delivery: z.enum(['nocloud', 'config-drive', 'fwcfg']),
    /** Ignition spec version, or the fw_cfg key name, where the dialect needs it. */
    ignitionVersion: z.string().optional(),
    fwcfgName: z.string().optional(),
  }),
  ssh: z.strictObject({ user: z.string().min(1) }),
  /** Network interface name inside the guest (for networkd `[Match] Name=`). */
  nic: z
    .string()
    .regex(/^[a-zA-Z0-9_.*-]{1,15}$/)
    .default('eth0'),
  /** Which network stack reads the static address: systemd-networkd or NetworkManager. */
  network: z.enum(['networkd', 'networkmanager']).default('networkd'),
  /** The services this image can run. */
  services: z.partialRecord(serviceName, serviceInfo).default({}),
  /** Minimum memory the guest needs to boot with its services, in MiB. */
  minMemoryMiB: z.number().int().min(64).default(256),
});

export type Template = z.infer<typeof templateSchema>;
