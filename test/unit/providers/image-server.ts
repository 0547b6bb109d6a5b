// A loopback HTTP server (127.0.0.1 only) for the image download tests, with switches a
// test flips per file: cut the body at a fraction, ignore Range, send no length, stall the
// body until released, change the file between two requests. Every request is logged.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Template } from '../../../lab/templates/schema.js';

export interface Served {
  body: Buffer;
  /** A strong ETag (quoted); default: from the body's sha256. `null`: none sent. */
  etag?: string | null;
  lastModified?: string | null;
  /** Cut the next response(s) after this fraction of the whole file, then drop the connection. */
  cutAt?: number;
  /** How many responses are cut (default 1 when cutAt is set). */
  cuts?: number;
  /** At the cut, stall (send nothing more, keep the connection) instead of dropping it. */
  stall?: boolean;
  /** Answer every request 200 with the whole file, as a server without Range support does. */
  ignoreRange?: boolean;
  /** No Content-Length: chunked transfer. */
  chunked?: boolean;
  /** Send the body in pieces of this size with a pause between them (ms). */
  trickle?: { bytes: number; pauseMs: number };
  /** Hold the body (after the headers) until this promise resolves. */
  hold?: Promise<void>;
  /** Answer 302 with this Location instead. */
  redirect?: string;
  /** Answer this many requests with this status first (e.g. 503). */
  failFirst?: { status: number; times: number };
}

export interface RequestLog {
  url: string;
  method: string;
  range?: string;
  ifRange?: string;
  status: number;
  /** Bytes of body sent (up to a cut). */
  sent: number;
  remote: string;
}

export interface ImageServer {
  base: string;
  files: Map<string, Served>;
  requests: RequestLog[];
  /** Requests for one path. */
  requestsFor(path: string): RequestLog[];
  close(): Promise<void>;
}

export const etagOf = (b: Buffer) => `"${createHash('sha256').update(b).digest('hex').slice(0, 20)}"`;
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function startImageServer(): Promise<ImageServer> {
  const files = new Map<string, Served>();
  const requests: RequestLog[] = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      const log: RequestLog = {
        url: req.url ?? '',
        method: req.method ?? '',
        ...(req.headers.range ? { range: req.headers.range } : {}),
        ...(typeof req.headers['if-range'] === 'string' ? { ifRange: req.headers['if-range'] } : {}),
        status: 0,
        sent: 0,
        remote: req.socket.remoteAddress ?? '',
      };
      requests.push(log);
      const f = files.get(log.url);
      if (!f) {
        log.status = 404;
        res.writeHead(404).end('not found');
        return;
      }
      if (f.redirect !== undefined) {
        log.status = 302;
        res.writeHead(302, { location: f.redirect }).end();
        return;
      }
      if (f.failFirst && f.failFirst.times > 0) {
        f.failFirst.times--;
        log.status = f.failFirst.status;
        res.writeHead(f.failFirst.status).end('try later');
        return;
      }
      const etag = f.etag === undefined ? etagOf(f.body) : f.etag;
      const validators = {
        ...(etag ? { etag } : {}),
        ...(f.lastModified ? { 'last-modified': f.lastModified } : {}),
      };
      const m = /^bytes=(\d+)-$/.exec(log.range ?? '');
      // If-Range: the range only when the validator still names this file (RFC 9110 13.1.5).
      const rangeOk =
        m !== null &&
        !f.ignoreRange &&
        (log.ifRange === undefined || log.ifRange === etag || log.ifRange === f.lastModified);
      const from = rangeOk ? Number(m[1]) : 0;
      if (rangeOk && from >= f.body.length) {
        log.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${f.body.length}`, ...validators }).end();
        return;
      }
      const chunk = f.body.subarray(from);
      log.status = rangeOk ? 206 : 200;
      res.writeHead(log.status, {
        ...validators,
        'accept-ranges': f.ignoreRange ? 'none' : 'bytes',
        ...(f.chunked ? {} : { 'content-length': chunk.length }),
        ...(rangeOk ? { 'content-range': `bytes ${from}-${f.body.length - 1}/${f.body.length}` } : {}),
      });
      if (f.hold) await f.hold;
      let end = chunk.length;
      const cut = f.cutAt !== undefined && (f.cuts ?? 1) > 0;
      if (cut) {
        f.cuts = (f.cuts ?? 1) - 1;
        end = Math.max(0, Math.floor(f.body.length * f.cutAt!) - from);
      }
      const step = f.trickle?.bytes ?? end;
      for (let at = 0; at < end; at += step) {
        const piece = chunk.subarray(at, Math.min(end, at + step));
        if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
        log.sent += piece.length;
        if (f.trickle) await new Promise((r) => setTimeout(r, f.trickle!.pauseMs));
        if (res.destroyed) return;
      }
      if (cut && f.stall) {
        await new Promise((r) => res.once('close', r));
        return;
      }
      if (cut) {
        // Close the connection mid-body, after the bytes (a FIN, not a reset that could
        // make the client drop bytes it has not read yet: `sent` is what it gets).
        await new Promise<void>((r) => res.write('', () => r()));
        res.socket?.end();
        return;
      }
      res.end();
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    files,
    requests,
    requestsFor: (p) => requests.filter((r) => r.url === p),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A downloaded-image template for the tests (raw unless told otherwise). */
export function imageTemplate(image: Record<string, unknown>, name = 't'): Template {
  const t = {
    name,
    os: 'flatcar',
    arch: 'x86_64',
    image: { format: 'raw', compression: 'none', ...image },
    boot: { firmware: 'bios' },
    provisioning: { dialect: 'ignition', delivery: 'fwcfg' },
    ssh: { user: 'core' },
    nic: 'eth0',
    network: 'networkd',
    services: {},
    minMemoryMiB: 256,
  };
  return t as Template;
}

/** Every file and folder under `dir` with its mode, relative paths, sorted. */
export function listTree(dir: string): { path: string; mode: number; size: number; dir: boolean }[] {
  const out: { path: string; mode: number; size: number; dir: boolean }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      out.push({ path: path.relative(dir, p), mode: st.mode & 0o7777, size: st.size, dir: st.isDirectory() });
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** Files (not folders) under `dir` that carry an exec bit. */
export const executables = (dir: string) => listTree(dir).filter((f) => !f.dir && (f.mode & 0o111) !== 0);

/** `size` bytes that differ at every 4 KiB (a shifted or doubled range shows in the digest). */
export function payloadOf(size: number, seed = 0): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32BE((i * 2654435761 + seed) >>> 0, i);
  return b;
}
