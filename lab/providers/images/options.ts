import type { EventSink } from '../../events.js';
import type { TrustedKey } from '../signature.js';

/** How a download finds the key its template names; tests hand in throwaway keys. */
export interface DownloadOptions {
  onEvent: EventSink;
  signal?: AbortSignal;
  /** image.signingKey -> key file and pinned fingerprint (default: vm-templates/keys/). */
  trustedKey?: (name: string) => TrustedKey;
  /** How long to wait for another lab process preparing the same image (default 3 h). */
  lockTimeoutMs?: number;
  /** Tries per download when the transfer is cut (default 4), each resuming where it stopped. */
  attempts?: number;
  /** The pause before the second try, doubled for each next one (default 2 s). */
  retryDelayMs?: number;
  /** A transfer that brings no byte for this long is cut and resumed (default 60 s). */
  idleTimeoutMs?: number;
}
