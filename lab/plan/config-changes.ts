import { unifiedDiff } from './diff.js';
import { hostKey, userKey } from './identity.js';

/** A secret a rendered file may hold, and what stands for it when the file is shown. */
export interface KnownSecret {
  value: string;
  label: string;
}

/** The secrets one node's first-boot files may hold: its private host key, the login key, the lab's secret. */
export function renderingSecrets(secret: Buffer, lab: string, node: string): KnownSecret[] {
  return [
    { value: hostKey(secret, lab, node).privateKey, label: 'host key' },
    { value: userKey(secret, lab).privateKey, label: 'login key' },
    { value: secret.toString('hex'), label: 'lab secret' },
  ];
}

// A private key block (OpenSSH, PKCS#8, RSA, EC, PGP), as written or percent-encoded (Ignition's data URLs).
const PEM = /-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----[\s\S]*?-----END \1-----/g;
const PEM_ENCODED = /-----BEGIN((?:%20[A-Z0-9]+)*%20PRIVATE%20KEY(?:%20BLOCK)?)-----[\s\S]*?-----END\1-----/g;

/**
 * The text with each secret replaced by `<secret: WHAT>`: the known ones as they are,
 * percent-encoded or in base64, and any private key block, raw, indented (a YAML block
 * scalar) or percent-encoded, named after the known key it is, else "private key". Pure.
 */
export function maskSecrets(text: string, known: readonly KnownSecret[] = []): string {
  const bare = (s: string) => s.replace(/\s+/g, '');
  const named = (block: string) =>
    `<secret: ${known.find((k) => bare(k.value) === bare(block))?.label ?? 'private key'}>`;
  let out = text;
  for (const k of known)
    for (const form of [k.value, encodeURIComponent(k.value), Buffer.from(k.value).toString('base64')])
      out = out.replaceAll(form, `<secret: ${k.label}>`);
  out = out.replace(PEM, named);
  return out.replace(PEM_ENCODED, (block) => named(decoded(block)));
}

function decoded(uri: string): string {
  try {
    return decodeURIComponent(uri);
  } catch {
    return uri; // not valid percent-encoding: named as no known key
  }
}

/** What the Labfile's first-boot files were when a node's seed was last written (the secrets masked). */
export interface StoredRendering {
  /** The config hash of the files as written (secrets and all): the one recorded in the domain. */
  configHash: string;
  /** File name in the seed -> content. */
  files: Record<string, string>;
}

/** One first-boot file that changed: a unified diff, secrets masked. */
export interface FileChange {
  file: string;
  diff: string;
}

/** What `lab plan` shows of a node whose first-boot config changed: the files that did, and what to know. */
export interface ConfigChanges {
  /** Absent when nothing earlier is stored to compare with. */
  changes?: FileChange[];
  note?: string;
}

/**
 * A node's first-boot files as stored when its seed was written against those the Labfile
 * gives now: each changed file (in name order) as `--- NODE FILE (applied)` / `+++ NODE
 * FILE (Labfile)` hunks, secrets masked on both sides. `appliedHash`: the config hash
 * the domain records. Pure.
 */
export function configChanges(input: {
  node: string;
  stored: StoredRendering | undefined;
  appliedHash: string | undefined;
  desired: Record<string, string>;
  known: readonly KnownSecret[];
}): ConfigChanges {
  const { node, stored, desired, known } = input;
  if (!stored) return { note: 'no earlier rendering stored; made by an older lab' };
  const text = (files: Record<string, string>, file: string) =>
    maskSecrets(Object.hasOwn(files, file) ? files[file]! : '', known);
  const names = [...new Set([...Object.keys(stored.files), ...Object.keys(desired)])].sort();
  const changes = names.flatMap((file) => {
    const diff = unifiedDiff(
      text(stored.files, file),
      text(desired, file),
      `${node} ${file} (applied)`,
      `${node} ${file} (Labfile)`,
    );
    return diff ? [{ file, diff }] : [];
  });
  // The seed was written, then the domain not defined with it (a failed up) or defined since by another.
  if (input.appliedHash !== undefined && input.appliedHash !== stored.configHash)
    return {
      changes,
      note: `the stored rendering is of config ${stored.configHash.slice(0, 8)}, the domain has ${input.appliedHash.slice(0, 8)}: the diff may be off`,
    };
  if (changes.length === 0) return { changes, note: 'only secrets changed (masked)' };
  return { changes };
}
