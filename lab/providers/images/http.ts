import { HostError, LabError } from '../../errors.js';

/** Why a download must not follow a redirect from `from` to `to`, or undefined. Pure. */
export function redirectRefusal(from: URL, to: URL): string | undefined {
  if (to.protocol !== 'https:' && to.protocol !== 'http:') return `${to.protocol} is not HTTP`;
  if (from.protocol === 'https:' && to.protocol !== 'https:') return 'it leaves HTTPS';
  return undefined;
}

/** GET with redirects followed by hand: at most 5, and never from https to anything else. */
export async function httpGet(
  url: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<Response> {
  let current = new URL(url);
  for (let hop = 0; hop <= 5; hop++) {
    const res = await fetch(current, { headers, redirect: 'manual', ...(signal ? { signal } : {}) });
    if (![301, 302, 303, 307, 308].includes(res.status)) return res;
    await res.body?.cancel();
    const location = res.headers.get('location');
    if (!location) throw new HostError(`${current.href} answered HTTP ${res.status} without a Location`);
    const next = new URL(location, current);
    const refusal = redirectRefusal(current, next);
    if (refusal)
      throw new HostError(`refusing the redirect from ${current.href} to ${next.href}: ${refusal}`);
    current = next;
  }
  throw new HostError(`${url}: more than 5 redirects`);
}

/**
 * A small file (a signature, a checksum list): its bytes, or the HTTP status it failed
 * with. Two minutes at most: a stalled server does not hang lab up.
 */
export async function fetchSmall(
  url: string,
  maxBytes: number,
  signal?: AbortSignal,
  timeoutMs = 120_000,
): Promise<{ status: number; bytes?: Buffer }> {
  const limit = AbortSignal.timeout(timeoutMs);
  const both = signal ? AbortSignal.any([signal, limit]) : limit;
  try {
    const res = await httpGet(url, {}, both);
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      return { status: res.status };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // Leaving the loop (the throw) cancels the body.
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > maxBytes)
        throw new HostError(`${url} is larger than ${maxBytes} bytes: not what lab expected there`);
      chunks.push(Buffer.from(chunk));
    }
    return { status: res.status, bytes: Buffer.concat(chunks) };
  } catch (err) {
    if (err instanceof LabError || signal?.aborted) throw err;
    const why = limit.aborted
      ? `no answer within ${timeoutMs / 1000} s`
      : err instanceof Error
        ? err.message
        : String(err);
    throw new HostError(`cannot fetch ${url}: ${why}`, { cause: err });
  }
}
