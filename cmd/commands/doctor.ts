import { doctor, labTarget, type DoctorTarget } from '../../lab/doctor/doctor.js';
import { formatReport } from '../../lab/doctor/format.js';
import { LabError } from '../../lab/errors.js';
import { labfilePath, parseFlags, UsageError } from '../args.js';

const HELP = `Usage: lab doctor [-f Labfile.yaml | --lab NAME] [--uri URI] [--json]

Checks that this host can run lab, and says what to do where it cannot:
  programs  qemu-img, qemu-system-x86_64, virsh, xorriso (or genisoimage), gpgv, xz and
            bzip2, each with the Debian/Ubuntu package that provides it; mmdebstrap when
            an image must be built, dnsmasq and ip for a managed network
  libvirt   reachable at the URI and open to this user: asked once, 2 s at most
  KVM       whether it really runs guests (it boots a tiny test guest); else lab uses TCG
  Labfile   when one is in reach: its bridge exists and is up; free memory for its nodes
            (their RAM, and 256 MiB each of translation cache under TCG); free disk
            under the state folder (512 MiB per node not made yet)
Without a Labfile, its checks are skipped. Exit 0 when no check failed (warnings do
not count), 1 otherwise.

Options:
  --lab NAME  the lab by name: the Labfile and the URI its state recorded
  --uri URI   the libvirt URI (default: the Labfile's, else the recorded one, else
              LIBVIRT_DEFAULT_URI, else qemu:///system)
  --json      one JSON document on stdout (its schema: schemas/cli/doctor.json)

Examples:
  lab doctor
  lab doctor --json
  lab doctor -f Labfile.example.yaml
`;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(
    argv,
    { lab: { type: 'string' }, uri: { type: 'string' }, json: { type: 'boolean' } },
    HELP,
    false,
  );
  if (!flags) return 0;
  const { file, lab, uri } = flags.values;
  if (typeof file === 'string' && typeof lab === 'string')
    throw new UsageError('give either -f FILE or --lab NAME, not both');
  const target: DoctorTarget =
    typeof lab === 'string'
      ? await labTarget(lab)
      : typeof file === 'string'
        ? { labfile: file }
        : labfileInReach();
  if (typeof uri === 'string') target.uri = uri;
  const r = await doctor(target);
  process.stdout.write(flags.values.json ? `${JSON.stringify(r, null, 2)}\n` : formatReport(r));
  return r.ok ? 0 : 1;
}

/** The Labfile other commands would use here; none is no error: its checks are skipped. */
function labfileInReach(): DoctorTarget {
  try {
    return { labfile: labfilePath(undefined) };
  } catch (err) {
    if (err instanceof UsageError)
      return { noLabfile: { status: 'skip', detail: `${err.message}: the checks of a Labfile are skipped` } };
    if (err instanceof LabError)
      return {
        noLabfile: { status: 'warn', detail: err.message, ...(err.hint ? { hint: err.hint } : {}) },
      };
    throw err;
  }
}
