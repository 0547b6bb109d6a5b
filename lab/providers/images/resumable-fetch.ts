import { open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostError, LabError } from '../../errors.js';
import { failpoint } from '../../runtime/failpoint.js';
import { ensureRoom, isNoSpace } from './disk-space.js';
import { httpGet } from './http.js';
import type { DownloadOptions } from './options.js';
import type { Staging } from './quarantine.js';

/** RFC 9110 validators and the size of the file a partial download belongs to. */
interface PartialMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  size?: number;
}

/** The transfer broke or the server was not ready: trying again resumes. */
class CutError extends HostError {}

/** Tries the download up to opts.attempts times, each resuming where the last one stopped. */
export async function fetchResumable(
  url: string,
  s: Staging,
  name: string,
  opts: DownloadOptions,
): Promise<void> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchOnce(url, s, name, opts);
      return;
    } catch (err) {
      if (!(err instanceof CutError) || attempt >= attempts || opts.signal?.aborted) throw err;
      const delay = (opts.retryDelayMs ?? 2000) * 2 ** (attempt - 1);
      opts.onEvent({
        kind: 'log',
        level: 'warn',
        message: `download of ${name}: ${err.message}; trying again in ${delay / 1000} s (${attempt + 1} of ${attempts})`,
      });
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
    }
  }
}

async function readMeta(file: string): Promise<PartialMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(file, 'utf8')) as Partial<PartialMeta>;
    return typeof m.url === 'string' ? (m as PartialMeta) : undefined;
  } catch {
    return undefined;
  }
}

/** `bytes 100-199/1000`, `bytes 100-199/*`, `bytes *\/1000` (RFC 9110 14.4). Pure. */
export function parseContentRange(
  value: string | null,
): { start?: number; end?: number; total?: number } | undefined {
  const m = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return {
    ...(m[1] !== undefined ? { start: Number(m[1]), end: Number(m[2]) } : {}),
    ...(m[3] !== '*' ? { total: Number(m[3]) } : {}),
  };
}

/** The partial download on disk: its size, and its validators when it can be resumed safely. */
interface OnDisk {
  have: number;
  /** Set when the partial belongs to this url and has a validator or a size to check the server by. */
  resume?: { meta: PartialMeta; validator: string | undefined };
}

async function onDisk(url: string, s: Staging): Promise<OnDisk> {
  const meta = await readMeta(s.meta);
  const have = await stat(s.partial).then(
    (st) => st.size,
    () => 0,
  );
  const validator = meta?.etag ?? meta?.lastModified;
  if (meta?.url === url && have > 0 && (validator !== undefined || meta.size !== undefined))
    return { have, resume: { meta, validator } };
  return { have };
}

/** Cuts a transfer that brings no byte for `ms` (or when `outer` aborts); `touch` restarts the count. */
function idleWatch(ms: number, outer?: AbortSignal) {
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(), ms);
  return {
    ms,
    signal: outer ? AbortSignal.any([outer, idle.signal]) : idle.signal,
    fired: () => idle.signal.aborted,
    touch: () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), ms);
    },
    stop: () => clearTimeout(timer),
  };
}
type IdleWatch = ReturnType<typeof idleWatch>;

/** Where the body goes: appended at `offset`, or (with `fresh` validators) over an emptied partial. */
interface BodyPlan {
  offset: number;
  size?: number;
  fresh?: PartialMeta;
}

/**
 * One GET into the partial file. With a partial and its validators: `Range: bytes=<n>-`
 * and `If-Range` (a strong ETag, else Last-Modified); a 206 must start at n and, where the
 * size was known, still be of that size. A 200 (the server ignores Range, or the file
 * changed) starts from zero: the partial is truncated, never appended to.
 */
async function fetchOnce(url: string, s: Staging, name: string, opts: DownloadOptions): Promise<void> {
  const disk = await onDisk(url, s);
  const watch = idleWatch(opts.idleTimeoutMs ?? 60_000, opts.signal);
  try {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (disk.resume) {
      headers.range = `bytes=${disk.have}-`;
      if (disk.resume.validator !== undefined) headers['if-range'] = disk.resume.validator;
    }
    let res: Response;
    try {
      res = await httpGet(url, headers, watch.signal);
    } catch (err) {
      if (err instanceof LabError || opts.signal?.aborted) throw err;
      throw new CutError(`cannot reach ${url}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    watch.touch();
    const plan = await readAnswer(res, url, disk, s, name, opts);
    if (!plan) return; // the partial was whole
    if (!res.body) throw new CutError(`${url} answered without a body`);
    const { size, offset, fresh } = plan;
    try {
      await ensureRoom(s.dir, size === undefined ? undefined : size - offset - (fresh ? disk.have : 0));
    } catch (err) {
      await res.body.cancel().catch(() => undefined);
      throw err;
    }
    const done = await writeBody(res.body, s, plan, name, opts, watch);
    if (size !== undefined && done !== size)
      throw new CutError(`download of ${url} was cut at ${done} of ${size} bytes`, {
        hint: 'run lab up again: it resumes',
      });
  } finally {
    watch.stop();
  }
}

/** What the server's answer means: a plan for its body, or undefined when the partial was whole. */
async function readAnswer(
  res: Response,
  url: string,
  disk: OnDisk,
  s: Staging,
  name: string,
  opts: DownloadOptions,
): Promise<BodyPlan | undefined> {
  const { have, resume } = disk;
  if (resume && res.status === 416) {
    await res.body?.cancel();
    const total = parseContentRange(res.headers.get('content-range'))?.total;
    if (total === have && (resume.meta.size === undefined || resume.meta.size === have)) return undefined;
    await truncate(s.partial, 0);
    throw new CutError(`the server cannot resume at byte ${have}; starting over`);
  }
  if (resume && res.status === 206) return resumedAnswer(res, disk.have, resume, s, name, opts);
  if (res.status === 200) return freshAnswer(res, url, disk, name, opts);
  await res.body?.cancel();
  const why = `cannot download ${url}: HTTP ${res.status}`;
  if (res.status >= 500 || res.status === 408 || res.status === 429) throw new CutError(why);
  throw new HostError(why);
}

/** A 206: the rest of the same file from byte `have`, or the partial is emptied and the try cut. */
async function resumedAnswer(
  res: Response,
  have: number,
  resume: NonNullable<OnDisk['resume']>,
  s: Staging,
  name: string,
  opts: DownloadOptions,
): Promise<BodyPlan> {
  const { meta, validator } = resume;
  const range = parseContentRange(res.headers.get('content-range'));
  const total = range?.total ?? meta.size;
  const sameFile =
    meta.size !== undefined && total !== undefined ? total === meta.size : validator !== undefined;
  if (range?.start !== have || !sameFile) {
    await res.body?.cancel();
    await truncate(s.partial, 0);
    throw new CutError(
      `the server answered ${res.headers.get('content-range') ?? 'no Content-Range'} to bytes=${have}-; starting over`,
    );
  }
  opts.onEvent({
    kind: 'log',
    level: 'info',
    message: `resuming the download of ${name} at byte ${have}${total ? ` of ${total}` : ''}`,
  });
  return { offset: have, size: total };
}

/** A 200: the whole file from byte 0, with the validators a later resume sends back. */
function freshAnswer(
  res: Response,
  url: string,
  disk: OnDisk,
  name: string,
  opts: DownloadOptions,
): BodyPlan {
  if (disk.have > 0)
    opts.onEvent({
      kind: 'log',
      level: 'info',
      message: `downloading ${name} from the start: ${disk.resume ? 'the server ignored the range (or the file changed)' : 'the partial download cannot be resumed safely'}`,
    });
  const length = res.headers.get('content-length');
  const size = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
  const etag = res.headers.get('etag');
  const lastModified = res.headers.get('last-modified');
  const fresh: PartialMeta = {
    url,
    ...(etag && !etag.startsWith('W/') ? { etag } : {}), // If-Range takes strong ETags only
    ...(lastModified ? { lastModified } : {}),
    ...(size !== undefined ? { size } : {}),
  };
  return { offset: 0, size, fresh };
}

/** Streams the body into the partial as the plan says; returns how many bytes the partial holds. */
async function writeBody(
  body: NonNullable<Response['body']>,
  s: Staging,
  plan: BodyPlan,
  name: string,
  opts: DownloadOptions,
  watch: IdleWatch,
): Promise<number> {
  const { size, fresh } = plan;
  if (fresh) await rm(s.meta, { force: true }); // no stale validators over new bytes
  const fh = await open(s.partial, fresh ? 'w' : 'a', 0o600);
  let done = plan.offset;
  try {
    // The validators are on disk before the first byte: a partial is always resumable.
    if (fresh) await writeFile(s.meta, JSON.stringify(fresh), { mode: 0o600 });
    let flushed = false;
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        await fh.write(chunk);
        done += chunk.length;
        watch.touch();
        if (!flushed) {
          await fh.datasync();
          flushed = true;
          failpoint('mid-download');
        }
        opts.onEvent({
          kind: 'progress',
          step: `download ${name}`,
          done,
          ...(size ? { total: size } : {}),
          unit: 'bytes',
        });
      }
    } catch (err) {
      if (isNoSpace(err) || opts.signal?.aborted) throw err;
      throw new CutError(
        `the transfer broke at byte ${done}${size ? ` of ${size}` : ''}${watch.fired() ? ` (nothing came for ${watch.ms / 1000} s)` : ''}`,
        { cause: err, hint: 'run lab up again: it resumes' },
      );
    }
  } finally {
    await fh.close();
  }
  return done;
}
