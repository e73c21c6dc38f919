// Typed errors of the crypto suites, and the input checks that raise them identically in both suites.
import { AnxError, describeValue } from '../errors.ts';

/** A crypto primitive was given unusable input (wrong length, low-order point, bad key). */
export class CryptoError extends AnxError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('ANX_CRYPTO', message, options);
  }
}

/** AES-256-GCM refused to open: wrong key, nonce, associated data, or tampered ciphertext. */
export class DecryptError extends AnxError {
  constructor(message = 'AES-256-GCM authentication failed', options?: { cause?: unknown; hint?: string }) {
    super('ANX_DECRYPT_FAILED', message, options);
  }
}

/**
 * Checks that `value` is a `Uint8Array` (of `length` bytes when given) and returns it.
 * Both suites call this first so that bad input fails with the same `CryptoError` whichever suite runs.
 *
 * @example
 * ```ts
 * const seed = expectBytes(input, 'seed', 32);
 * ```
 */
export function expectBytes(value: unknown, what: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new CryptoError(`${what} expected a Uint8Array, got ${describeValue(value)}`);
  }
  if (length !== undefined && value.length !== length) {
    throw new CryptoError(`${what} expected ${length} bytes, got ${value.length} bytes`);
  }
  return value;
}

/** Largest HKDF-SHA256 output RFC 5869 allows (255 blocks of 32 bytes). */
export const HKDF_SHA256_MAX_LENGTH = 255 * 32;

/** Checks an HKDF output length: a non-negative integer no larger than RFC 5869 permits. */
export function expectHkdfLength(length: unknown): number {
  if (
    typeof length !== 'number' ||
    !Number.isInteger(length) ||
    length < 0 ||
    length > HKDF_SHA256_MAX_LENGTH
  ) {
    throw new CryptoError(
      `HKDF length expected an integer from 0 to ${HKDF_SHA256_MAX_LENGTH}, got ${describeValue(length)}`,
    );
  }
  return length;
}

/** Checks a requested random length: a non-negative safe integer. */
export function expectRandomLength(length: unknown): number {
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new CryptoError(`randomBytes length expected a non-negative integer, got ${describeValue(length)}`);
  }
  return length;
}
