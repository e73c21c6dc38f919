// Canonical JSON for everything the authority layer signs or hashes: one byte string per value.
import { AnxError } from '../errors.ts';

/**
 * Canonical JSON: object keys sorted by UTF-16 code units, no whitespace, strings escaped as
 * `JSON.stringify` does, finite numbers in ECMAScript's shortest round-trip form (`-0` as `0`):
 * the JSON Canonicalization Scheme of RFC 8785. Object members whose value is `undefined` are left
 * out. Anything else (NaN, Infinity, bigint, bytes, functions) throws.
 */
export function canonicalize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value))
        throw new AnxError('ANX_CANONICAL', `canonical JSON takes finite numbers only, got ${value}`);
      return Object.is(value, -0) ? '0' : String(value);
    case 'object': {
      if (Array.isArray(value))
        return `[${value.map((v) => (v === undefined ? 'null' : canonicalize(v))).join(',')}]`;
      if (value instanceof Uint8Array)
        throw new AnxError('ANX_CANONICAL', 'canonical JSON takes no raw bytes; encode them as text first');
      const obj = value as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(obj).sort()) {
        const v = obj[key];
        if (v === undefined) continue;
        parts.push(`${JSON.stringify(key)}:${canonicalize(v)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new AnxError('ANX_CANONICAL', `canonical JSON cannot encode a ${typeof value}`);
  }
}

const encoder = new TextEncoder();

/** `prefix` (ASCII, then a 0x00 byte) followed by the UTF-8 canonical JSON of `value`. */
export function domainBytes(prefix: string, value: unknown): Uint8Array {
  return encoder.encode(`${prefix}\0${canonicalize(value)}`);
}

export const utf8 = (text: string): Uint8Array => encoder.encode(text);

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

export const toB64u = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

const B64U = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Strict base64url decode (no padding); undefined for anything else, including a spelling that is
 * not the one `toB64u` gives (a length that leaves 6 stray bits, stray bits set in the last character).
 */
export function fromB64u(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const rest = text.length % 4;
  if (rest === 1) return undefined;
  if (rest !== 0) {
    const last = B64U.indexOf(text[text.length - 1] as string);
    if ((last & (rest === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  }
  return new Uint8Array(Buffer.from(text, 'base64url'));
}
