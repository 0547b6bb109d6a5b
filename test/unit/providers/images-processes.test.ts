// R15/S14 across processes: two lab processes needing one image share one download (the
// per-entry lock), a download killed by SIGKILL mid-body resumes with Range, and nothing
// downloaded is ever executed (every execve traced with strace).
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadImage } from '../../../lab/providers/images.js';
import { quarantineDir } from '../../../lab/providers/images/quarantine.js';
import { run } from '../../../lab/runtime/exec.js';
import type { Template } from '../../../lab/templates/schema.js';
import { gpgWorkspace, requireGpg } from './gpg-fixture.js';
import {
  executables,
  imageTemplate,
  listTree,
  payloadOf,
  sha256,
  startImageServer,
  type ImageServer,
} from './image-server.js';

const childScript = path.join(import.meta.dirname, 'download-child.ts');
const SIZE = 3 * 1024 * 1024;
let srv: ImageServer;
let n = 0;

beforeAll(async () => {
  srv = await startImageServer();
});
afterAll(() => srv.close());

type Line = {
  started?: number;
  event?: { kind: string; message?: string };
  done?: boolean;
  sha256?: string;
  error?: string;
};

/**
 * One download in a child process. Not async and the child wrapped in an object: an execa
 * child is a thenable, and returning it from an async function would await it.
 */
function spawnDownload(
  job: { template: Template; target: string; key?: { file: string; fingerprint: string } },
  opts: { env?: Record<string, string>; wrap?: string[] } = {},
) {
  const argv = [...(opts.wrap ?? []), process.execPath, '--import', 'tsx', childScript, JSON.stringify(job)];
  const proc: ResultPromise = execa(argv[0]!, argv.slice(1), {
    reject: false,
    env: { LAB_FAILPOINT: '', ...opts.env },
    stdin: 'ignore',
    buffer: { stdout: false, stderr: true },
  });
  const lines: Line[] = [];
  let rest = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    rest += chunk.toString();
    const parts = rest.split('\n');
    rest = parts.pop()!;
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Line);
  });
  const until = async (pred: (l: Line) => boolean, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!lines.some(pred)) {
      if (Date.now() > deadline || proc.exitCode !== null)
        throw new Error(`child ${proc.pid} never said that; it said ${JSON.stringify(lines)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return lines.find(pred)!;
  };
  return { proc, lines, until };
}

function entry(ext = 'raw') {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lab-proc-'));
  const p = `/p${n++}.${ext}`;
  return { dir, target: path.join(dir, 't', `disk.${ext}`), p, url: `${srv.base}${p}` };
}

describe('R15: one image, several lab processes', () => {
  it('two processes downloading the same image at once: exactly one GET, both end with the same verified file', async () => {
    const e = entry();
    const body = payloadOf(SIZE, 11);
    let release!: () => void;
    srv.files.set(e.p, { body, hold: new Promise<void>((r) => (release = r)) });
    const job = {
      template: imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` }),
      target: e.target,
    };
    const a = spawnDownload(job);
    const b = spawnDownload(job);
    // The body is held until one of them says it waits for the other: they really overlap.
    const pids = await Promise.all([a.until((l) => !!l.started), b.until((l) => !!l.started)]);
    const waiting = await Promise.race(
      [a, b].map((c) => c.until((l) => /^waiting for pid \d+/.test(l.event?.message ?? ''))),
    );
    const holder = Number(/^waiting for pid (\d+)/.exec(waiting.event!.message!)![1]);
    expect(pids.map((p) => p.started)).toContain(holder);
    release();
    const [ra, rb] = await Promise.all([a.proc, b.proc]);
    expect([ra.exitCode, rb.exitCode], `${String(ra.stderr)}\n${String(rb.stderr)}`).toEqual([0, 0]);
    const results = [a, b].map((c) => c.lines.find((l) => l.done)!.sha256);
    expect(results).toEqual([sha256(body), sha256(body)]);
    // Measured: one request for the image, the whole file once.
    expect(srv.requestsFor(e.p).map((r) => [r.status, r.sent, r.range])).toEqual([[200, SIZE, undefined]]);
    const waiter = [a, b].find((c) => c.lines.includes(waiting))!;
    expect(waiter.lines.map((l) => l.event?.message)).toContainEqual(
      expect.stringMatching(/ready: another lab process prepared it meanwhile/),
    );
    expect(statSync(e.target).mode & 0o777).toBe(0o444);
    expect(readdirSync(path.dirname(e.target))).toEqual(['disk.raw', 'disk.raw.lock']);
  }, 40_000);

  it('a download killed by SIGKILL mid-body (failpoint mid-download) resumes with Range and verifies', async () => {
    const e = entry();
    const body = payloadOf(SIZE, 12);
    srv.files.set(e.p, { body });
    const template = imageTemplate({ url: e.url, digest: `sha256:${sha256(body)}` });
    const c = spawnDownload({ template, target: e.target }, { env: { LAB_FAILPOINT: 'mid-download' } });
    const r = await c.proc;
    expect(r.signal).toBe('SIGKILL');
    expect(String(r.stderr)).toContain('failpoint mid-download: SIGKILL');
    const partial = listTree(quarantineDir(e.target)).find((f) => f.path.endsWith('.partial'))!;
    expect(partial.size).toBeGreaterThan(0);
    expect(partial.size).toBeLessThan(SIZE);
    expect(partial.mode).toBe(0o600);
    await downloadImage(template, e.target, { onEvent: () => {} });
    const [first, second, ...more] = srv.requestsFor(e.p);
    expect(more).toEqual([]);
    expect(first!.range).toBeUndefined();
    expect(second).toMatchObject({ status: 206, range: `bytes=${partial.size}-`, sent: SIZE - partial.size });
    expect(second!.ifRange).toMatch(/^"/);
    expect(sha256(readFileSync(e.target))).toBe(sha256(body));
    expect(executables(e.dir)).toEqual([]);
  }, 30_000);
});

describe('S14: nothing downloaded is ever executed', () => {
  let ws: ReturnType<typeof gpgWorkspace>;
  beforeAll(async () => {
    await requireGpg();
    await run('strace', ['-V'], { timeoutMs: 10_000 }).catch((err: unknown) => {
      throw new Error('strace is needed by this test: apt-get install strace', { cause: err });
    });
    ws = gpgWorkspace();
  }, 60_000);
  afterAll(() => ws?.cleanup());

  it('every program a signed xz download runs (strace -f execve) is a host tool, none from the cache', async () => {
    const key = await ws.makeKey('Images <images@example.invalid>');
    const e = entry('qcow2');
    const local = path.join(ws.dir, 'img.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', local, '8M']);
    await run('xz', ['-k', local]);
    const xz = readFileSync(`${local}.xz`);
    await key.sign(`${local}.xz`, `${local}.xz.sig`);
    const keyFile = path.join(ws.dir, 'key.asc');
    writeFileSync(keyFile, key.publicKey);
    srv.files.set(`${e.p}.xz`, { body: xz });
    srv.files.set(`${e.p}.xz.sig`, { body: readFileSync(`${local}.xz.sig`) });
    const template = imageTemplate({
      url: `${e.url}.xz`,
      digest: `sha256:${sha256(xz)}`,
      signatureUrl: `${e.url}.xz.sig`,
      signingKey: 'key.asc',
      format: 'qcow2',
      compression: 'xz',
    });
    const trace = path.join(e.dir, 'execve.log');
    const c = spawnDownload(
      { template, target: e.target, key: { file: keyFile, fingerprint: key.fingerprint } },
      { wrap: ['strace', '-f', '-qq', '--seccomp-bpf', '-e', 'trace=execve', '-o', trace] },
    );
    const r = await c.proc;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(c.lines.find((l) => l.done)?.sha256).toBe(sha256(readFileSync(local)));
    // The programs that really started (execve returned 0), by path.
    const ran = [...readFileSync(trace, 'utf8').matchAll(/execve\("([^"]+)", .*\) = 0$/gm)].map((m) => m[1]!);
    const cache = path.dirname(e.target);
    expect(ran.filter((p) => p.startsWith(cache) || p.startsWith(srv.base))).toEqual([]);
    const names = new Set(ran.map((p) => path.basename(p)));
    // It did trace the work (else the test proves nothing) ...
    for (const tool of ['gpgv', 'xz', 'prlimit', 'qemu-img']) expect(names).toContain(tool);
    // ... and nothing else ran: no gpg/dirmngr (keyservers), no shell, nothing downloaded.
    expect([...names].sort()).toEqual(
      [path.basename(process.execPath), 'flock', 'gpgv', 'prlimit', 'qemu-img', 'xz'].sort(),
    );
    expect(executables(e.dir)).toEqual([]);
    expect(statSync(e.target).mode & 0o777).toBe(0o444);
  }, 40_000);
});
