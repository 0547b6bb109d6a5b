/**
 * The libvirt URI lab talks to, from wherever it comes, checked before the first libvirt
 * call (S11). Sources, as libvirt itself takes them: the Labfile's `libvirt:` (or a
 * command's `--uri`), else LIBVIRT_DEFAULT_URI, else `uri_default` in libvirt.conf, else
 * qemu:///system; then a name in libvirt.conf's `uri_aliases` stands for its URI. lab
 * resolves the alias itself and always passes the URI it checked with `-c`, so that what
 * virsh connects to is what was checked. libvirt.conf is root's /etc/libvirt/libvirt.conf,
 * another user's $XDG_CONFIG_HOME/libvirt/libvirt.conf (libvirt's virConfLoadConfigPath:
 * one of them, by effective uid).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadInputError } from '../errors.js';

/** The libvirt URI lab talks to, before aliases: the given one (Labfile, --uri), else LIBVIRT_DEFAULT_URI, else libvirt.conf's uri_default, else qemu:///system. */
export function resolveUri(given?: string, conf: LibvirtConf = loadLibvirtConf()): string {
  return given || process.env.LIBVIRT_DEFAULT_URI || conf.uriDefault || 'qemu:///system';
}

/** What lab reads of libvirt.conf. */
export interface LibvirtConf {
  file?: string;
  uriDefault?: string;
  /** `uri_aliases`: alias name to URI. */
  aliases: Map<string, string>;
}

/** The libvirt.conf libvirt reads for this user (root's in /etc, another user's in its config folder). */
export function libvirtConfPath(): string {
  const euid = typeof process.geteuid === 'function' ? process.geteuid() : 0;
  if (euid === 0) return '/etc/libvirt/libvirt.conf';
  const config = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(config, 'libvirt', 'libvirt.conf');
}

/** This user's libvirt.conf, read (none is an empty one). */
export function loadLibvirtConf(file = libvirtConfPath()): LibvirtConf {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { aliases: new Map() };
  }
  return { file, ...parseLibvirtConf(text) };
}

/**
 * `uri_default` and `uri_aliases` from libvirt.conf's text (libvirt's virconf syntax: `#`
 * comments, `name = value`, strings in double or single quotes, lists in brackets). An
 * alias entry is `name=uri` with a name of letters, digits, `_` and `-`, as libvirt's
 * virURIFindAliasMatch requires; others are skipped as libvirt refuses them. Pure.
 */
export function parseLibvirtConf(text: string): Omit<LibvirtConf, 'file'> {
  const values = new Map<string, string | string[]>();
  const tokens = tokenize(text);
  for (let i = 0; i + 2 < tokens.length; i++) {
    const [name, eq] = [tokens[i]!, tokens[i + 1]!];
    if (name.kind !== 'word' || eq.kind !== 'eq') continue;
    const first = tokens[i + 2]!;
    if (first.kind === 'string') values.set(name.text, first.text);
    else if (first.kind === 'open') {
      const list: string[] = [];
      for (let j = i + 3; j < tokens.length && tokens[j]!.kind !== 'close'; j++)
        if (tokens[j]!.kind === 'string') list.push(tokens[j]!.text);
      values.set(name.text, list);
    }
  }
  const uriDefault = values.get('uri_default');
  const aliases = new Map<string, string>();
  const list = values.get('uri_aliases');
  for (const entry of Array.isArray(list) ? list : []) {
    const eq = entry.indexOf('=');
    const alias = entry.slice(0, eq);
    if (eq > 0 && /^[A-Za-z0-9_-]+$/.test(alias) && !aliases.has(alias))
      aliases.set(alias, entry.slice(eq + 1));
  }
  return { ...(typeof uriDefault === 'string' && uriDefault ? { uriDefault } : {}), aliases };
}

type Token = { kind: 'word' | 'string' | 'eq' | 'open' | 'close' | 'other'; text: string };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < text.length;) {
    const c = text[i]!;
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      const stop = end < 0 ? text.length : end;
      out.push({ kind: 'string', text: text.slice(i + 1, stop) });
      i = stop + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z0-9_.-]+/.exec(text.slice(i))![0];
      out.push({ kind: 'word', text: m });
      i += m.length;
    } else {
      if (c === '=') out.push({ kind: 'eq', text: c });
      else if (c === '[') out.push({ kind: 'open', text: c });
      else if (c === ']') out.push({ kind: 'close', text: c });
      else if (!/[\s,;]/.test(c)) out.push({ kind: 'other', text: c });
      i++;
    }
  }
  return out;
}

/** Refused: a libvirt URI that turns a check off. Exit 2: the Labfile, flag or environment says so. */
export class UnsafeUriError extends BadInputError {}

const warned = new Set<string>();

/**
 * The URI to pass to virsh for `uri` (an alias resolved), or UnsafeUriError when it turns
 * checks off (checkUriSafety) and LAB_ALLOW_INSECURE_URI=1 is not set; with it, a
 * warning on stderr, once per URI and command. Every Virsh is made through this.
 */
export function approveUri(uri: string, conf: LibvirtConf = loadLibvirtConf()): string {
  const alias = conf.aliases.get(uri);
  const resolved = alias ?? uri;
  const shown = alias ? `${uri} (an alias in ${conf.file ?? 'libvirt.conf'} for ${alias})` : uri;
  const why = checkUriSafety(resolved);
  if (!why) return resolved;
  if (process.env.LAB_ALLOW_INSECURE_URI !== '1')
    throw new UnsafeUriError(`refusing libvirt URI ${shown}: ${why}`, {
      hint: 'use a URI that keeps the checks on (qemu+libssh://HOST/system?known_hosts=FILE&keyfile=KEY, qemu+tls://…); LAB_ALLOW_INSECURE_URI=1 allows it anyway',
    });
  if (!warned.has(resolved)) {
    warned.add(resolved);
    process.stderr.write(
      `lab: warning: libvirt URI ${shown}: ${why}; used because LAB_ALLOW_INSECURE_URI=1\n`,
    );
  }
  return resolved;
}

export interface LibvirtUri {
  /** The scheme, lower case: `qemu`, `qemu+ssh`. */
  scheme: string;
  /** The transport after `+` in the scheme, lower case (`ssh`, `tls`, `tcp`), or '' for none. */
  transport: string;
  /** The query's parameters in order, names and values URI-unescaped, as libvirt reads them. */
  params: { name: string; value: string }[];
}

/**
 * `%XX` decoded (as libxml2's xmlURIUnescapeString does; a broken escape is kept as is),
 * and cut at a NUL as libvirt's C strings are (`no_verify%00x=1` is `no_verify=1` there).
 */
function unescapeUriPart(s: string): string {
  return decodePercent(s).split('\0')[0]!;
}
function decodePercent(s: string): string {
  return s.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return Buffer.from(run.replace(/%/g, ''), 'hex').toString('latin1');
    }
  });
}

/**
 * A libvirt URI's scheme, transport and query parameters, as libvirt's own parser sees
 * them: parameter names and values URI-unescaped (names are matched case-insensitively by
 * libvirt). Separators are `&` and `;` (libvirt splits on `;` only where no `&` follows:
 * splitting on both finds every parameter libvirt could see, and more). Pure.
 */
export function parseLibvirtUri(uri: string): LibvirtUri {
  uri = uri.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase() ?? '';
  const transport = scheme.includes('+') ? scheme.slice(scheme.indexOf('+') + 1) : '';
  const q = uri.indexOf('?');
  const query = q < 0 ? '' : uri.slice(q + 1).split('#')[0]!;
  const params = query
    .split(/[&;]/)
    .filter((part) => part !== '' && !part.startsWith('='))
    .map((part) => {
      const eq = part.indexOf('=');
      return eq < 0
        ? { name: unescapeUriPart(part), value: '' }
        : { name: unescapeUriPart(part.slice(0, eq)), value: unescapeUriPart(part.slice(eq + 1)) };
    });
  return { scheme, transport, params };
}

/**
 * `uri` with query parameters added, each name and value URI-escaped (libvirt: "parameter
 * values must be URI-escaped"), so a value holding `&`, `=`, `#` or `%` stays one value.
 * The one way lab should put a value into a libvirt URI. Pure.
 */
export function withUriParams(uri: string, params: Record<string, string>): string {
  const esc = (s: string) => encodeURIComponent(s).replace(/%2F/g, '/');
  const pairs = Object.entries(params).map(([k, v]) => `${esc(k)}=${esc(v)}`);
  if (pairs.length === 0) return uri;
  const [base, fragment] = uri.includes('#')
    ? [uri.slice(0, uri.indexOf('#')), uri.slice(uri.indexOf('#'))]
    : [uri, ''];
  const sep = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&';
  return `${base}${sep}${pairs.join('&')}${fragment}`;
}

/**
 * Why a libvirt URI weakens security, or undefined when it does not. lab refuses such a
 * URI unless the user says so (LAB_ALLOW_INSECURE_URI=1). Refused: the tcp transport
 * (unencrypted, unauthenticated) and ext (runs `command`, which libvirt itself does not
 * count as secure), in any case; `no_verify` set to anything but 0 (libvirt reads any
 * non-zero integer as "do not check the server's certificate / host key"); a
 * `known_hosts_verify` other than `normal` (`auto` trusts a new host key on first use,
 * `ignore` any key); a `command` (a program the URI names, run in place of ssh).
 * Parameter names in any case and URI-escaped forms count as libvirt reads them.
 */
export function checkUriSafety(uri: string): string | undefined {
  const { transport, params } = parseLibvirtUri(uri);
  if (transport === 'tcp') return 'plain TCP transport is unencrypted and unauthenticated';
  if (transport === 'ext')
    return 'the ext transport runs the command the URI names, with no transport security';
  for (const { name, value } of params) {
    const key = name.toLowerCase();
    if (key === 'no_verify' && !/^\s*[+-]?0+$/.test(value))
      return `no_verify=${value} turns off TLS certificate and SSH host key checks`;
    if (key === 'known_hosts_verify' && value.toLowerCase() !== 'normal')
      return `known_hosts_verify=${value} accepts SSH host keys that are not known (only normal checks them)`;
    if (key === 'command') return `command=${value} makes libvirt run that program to connect`;
  }
  return undefined;
}
