// base58btc (the Bitcoin alphabet), the multibase 'z' encoding used in DIDs and multikeys.
import { AnxError, describeValue } from '../errors.ts';

/** Text that is not base58btc (a character outside the alphabet, or not a string at all). */
export class Base58Error extends AnxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ANX_BASE58_INVALID', message, options);
  }
}

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

/**
 * Encodes bytes as base58btc. Each leading zero byte becomes a leading `1`.
 *
 * @example
 * ```ts
 * base58Encode(Uint8Array.of(0, 0, 1)); // '112'
 * ```
 */
export function base58Encode(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) {
    throw new Base58Error(`base58 input expected a Uint8Array, got ${describeValue(bytes)}`);
  }
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  // Little-endian base-58 digits of the number the remaining bytes spell.
  const digits: number[] = [];
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i] as number;
    for (let j = 0; j < digits.length; j++) {
      carry += (digits[j] as number) << 8;
      digits[j] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = '1'.repeat(zeros);
  for (let j = digits.length - 1; j >= 0; j--) out += ALPHABET[digits[j] as number];
  return out;
}

/**
 * Decodes base58btc text. Throws `Base58Error` naming the first character outside the alphabet.
 *
 * @example
 * ```ts
 * base58Decode('112'); // Uint8Array [0, 0, 1]
 * ```
 */
export function base58Decode(text: string): Uint8Array {
  if (typeof text !== 'string') {
    throw new Base58Error(`base58 input expected a string, got ${describeValue(text)}`);
  }
  let zeros = 0;
  while (zeros < text.length && text.charCodeAt(zeros) === 0x31) zeros++;
  // Little-endian base-256 bytes of the number the remaining digits spell.
  const bytes: number[] = [];
  for (let i = zeros; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? (VALUE[code] as number) : -1;
    if (value < 0) {
      throw new Base58Error(
        `base58 input expected only base58btc characters, got ${describeValue(text[i])} at position ${i}`,
      );
    }
    let carry = value;
    for (let j = 0; j < bytes.length; j++) {
      carry += (bytes[j] as number) * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = new Uint8Array(zeros + bytes.length);
  for (let j = 0; j < bytes.length; j++) out[out.length - 1 - j] = bytes[j] as number;
  return out;
}
