import { XMLBuilder } from 'fast-xml-parser';
import { LabError } from '../errors.js';

/**
 * One code point that XML 1.0 cannot carry at all, not even as a character reference:
 * C0 controls other than TAB, LF and CR, lone surrogates, U+FFFE and U+FFFF
 * (XML 1.0 §2.2, production [2] Char).
 */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const NOT_XML_CHARS = new RegExp(NOT_XML_CHAR.source, 'gu');

/** The first code point of `s` that XML 1.0 cannot carry, or undefined. Pure. */
export function findNonXmlChar(s: string): { index: number; codePoint: number } | undefined {
  const m = NOT_XML_CHAR.exec(s);
  return m ? { index: m.index, codePoint: m[0].codePointAt(0)! } : undefined;
}

/** `s` without the code points XML 1.0 cannot carry (for tests and display, never for rendering). */
export function stripNonXmlChars(s: string): string {
  return s.replace(NOT_XML_CHARS, '');
}

/**
 * A value bound for libvirt XML holds a code point XML 1.0 cannot carry. lab refuses it
 * rather than dropping it: without the character a path names another file and a name
 * another domain. Names are validated long before; this is the renderer not trusting that.
 */
export class XmlCharError extends LabError {
  constructor(
    readonly where: string,
    readonly codePoint: number,
  ) {
    const u = `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
    super(`XML value ${where} holds ${u}, which XML 1.0 cannot carry`, {
      hint: 'remove control characters (and lone surrogates) from names, paths and template text',
    });
  }
}

/** Throws XmlCharError for the first string in the tree (by its path) XML cannot carry. */
function assertXmlChars(value: unknown, where: string): void {
  if (typeof value === 'string') {
    const bad = findNonXmlChar(value);
    if (bad) throw new XmlCharError(where, bad.codePoint);
  } else if (Array.isArray(value)) value.forEach((v, i) => assertXmlChars(v, `${where}[${i}]`));
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) assertXmlChars(v, where ? `${where}.${k}` : k);
}

/**
 * Escapes once, `&` first: the five markup characters, and TAB, LF and CR as character
 * references. A parser keeps no raw CR (it becomes LF) and turns a raw TAB or LF in an
 * attribute into a space (attribute-value normalization): only references carry them.
 */
export function escapeXml(s: string): string {
  return s.replace(/[&<>'"\t\n\r]/g, (c) => ESCAPES[c]!);
}
const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  "'": '&apos;',
  '"': '&quot;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};
const escapeValue = (_name: string, v: unknown) => (typeof v === 'string' ? escapeXml(v) : v);

// processEntities off: the value processors above do all the escaping, once.
const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  textNodeName: '#text',
  format: true,
  indentBy: '  ',
  suppressEmptyNode: true,
  // The default writes an attribute whose value is "true" bare (`<source file/>`): not XML.
  suppressBooleanAttributes: false,
  processEntities: false,
  tagValueProcessor: escapeValue,
  attributeValueProcessor: escapeValue,
});

/**
 * libvirt XML from an object tree (`@_` attributes, `#text` text): every value escaped
 * once, and a value XML cannot carry refused with XmlCharError naming where it is. Pure.
 */
export function buildXml(tree: Record<string, unknown>): string {
  assertXmlChars(tree, '');
  return builder.build(tree);
}

/**
 * Reads values exactly as written: untrimmed, and with character references (`&#10;`,
 * which buildXml writes for TAB, LF and CR) decoded.
 */
export const EXACT_XML = {
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  textNodeName: '#text',
  trimValues: false,
  htmlEntities: true,
} as const;
