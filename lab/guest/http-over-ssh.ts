/**
 * HTTP to a service inside the guest, through the SSH connection itself (direct-tcpip to
 * 127.0.0.1:PORT, or streamlocal to a unix socket): no process is started in the guest,
 * which under TCG costs a second or more per command.
 */
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { Client, ClientChannel } from 'ssh2';
import { NodeError } from '../errors.js';
import { formatSeconds } from '../runtime/clock.js';

/** Where in the guest the request goes: a TCP port on 127.0.0.1, or a unix socket. */
export type HttpTo = { port: number } | { socket: string };

/** One HTTP request; a body is sent as JSON. Default timeout 15 s. */
export interface HttpRequest {
  method: string;
  path: string;
  body?: string;
  timeoutMs?: number;
}

/** The service's answer: status code, body text, and its headers (names in lowercase). */
export interface HttpResponse {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** Sends one HTTP request over a new channel of `client`; rejects on timeout or a channel/HTTP error. */
export function httpOverSsh(
  client: Client,
  node: string,
  to: HttpTo,
  request: HttpRequest,
): Promise<HttpResponse> {
  const timeoutMs = request.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    let done = false;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(
        new NodeError(
          node,
          'http',
          `${request.method} ${request.path} via ${'port' in to ? `port ${to.port}` : to.socket}: ${err.message}`,
          { cause: err },
        ),
      );
    };
    const timer = setTimeout(() => fail(new Error(`timed out after ${formatSeconds(timeoutMs)}`)), timeoutMs);
    const onChannel = (err: Error | undefined, channel: ClientChannel) => {
      if (err) return fail(err);
      sendOnChannel(channel, request, fail, (response) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(response);
      });
    };
    try {
      if ('port' in to) client.forwardOut('127.0.0.1', 0, '127.0.0.1', to.port, onChannel);
      else client.openssh_forwardOutStreamLocal(to.socket, onChannel);
    } catch (err) {
      fail(err as Error);
    }
  });
}

/** Writes the request on an open channel, as the only one on it (`connection: close`), and reads the answer. */
function sendOnChannel(
  channel: ClientChannel,
  request: HttpRequest,
  fail: (err: Error) => void,
  answer: (response: HttpResponse) => void,
): void {
  const req = httpRequest(
    {
      method: request.method,
      path: request.path,
      headers: {
        host: 'localhost',
        connection: 'close',
        ...(request.body !== undefined
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(request.body) }
          : {}),
      },
      // A Duplex is all node:http needs of its connection.
      createConnection: () => channel as unknown as Socket, // eslint-disable-line @typescript-eslint/no-unnecessary-type-assertion
    },
    (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () =>
        answer({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: Object.fromEntries(
            Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
          ),
        }),
      );
    },
  );
  req.on('error', fail);
  req.end(request.body);
}
