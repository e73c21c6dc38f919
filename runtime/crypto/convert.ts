// Ed25519 → X25519 key conversion (as did:key derives its key-agreement key), shared by both suites.
import { ed25519 } from '@noble/curves/ed25519.js';
import { CryptoError, expectBytes } from './errors.ts';

// Converting a public key decompresses a point (a field inversion and square root); peers' keys
// are converted again and again on the messaging path, so remember recent answers.
const PUBLIC_CACHE_LIMIT = 1024;
const publicCache = new Map<string, Uint8Array>();

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * The X25519 public key (Montgomery u-coordinate) of an Ed25519 public key.
 * Throws `CryptoError` when the bytes are not a valid Ed25519 point or map to no usable X25519 key.
 *
 * @example
 * ```ts
 * const x = ed25519PublicToX25519(publicKeyOfDid(did));
 * ```
 */
export function ed25519PublicToX25519(publicKey: Uint8Array): Uint8Array {
  expectBytes(publicKey, 'Ed25519 public key', 32);
  const id = hexOf(publicKey);
  const hit = publicCache.get(id);
  if (hit !== undefined) return hit.slice();
  let converted: Uint8Array;
  try {
    converted = ed25519.utils.toMontgomery(publicKey);
  } catch (cause) {
    throw new CryptoError('Ed25519 public key expected a valid curve point, got bytes that do not decode', {
      cause,
    });
  }
  // The identity point maps to u = 0 (and the like): a key nobody can agree with.
  if (converted.every((b) => b === 0)) {
    throw new CryptoError('Ed25519 public key expected a usable point, got one that maps to X25519 zero');
  }
  if (publicCache.size >= PUBLIC_CACHE_LIMIT) {
    const oldest = publicCache.keys().next().value;
    if (oldest !== undefined) publicCache.delete(oldest);
  }
  publicCache.set(id, converted);
  return converted.slice();
}

/**
 * The X25519 private key of an Ed25519 seed: the clamped first half of SHA-512(seed), RFC 8032's
 * secret scalar, so `x25519PublicKey(result)` equals `ed25519PublicToX25519(ed25519PublicKey(seed))`.
 *
 * @example
 * ```ts
 * const xPriv = ed25519SeedToX25519Private(seed);
 * ```
 */
export function ed25519SeedToX25519Private(seed: Uint8Array): Uint8Array {
  expectBytes(seed, 'Ed25519 seed', 32);
  // noble returns a view into the whole SHA-512 output; hand back an exact copy so the other
  // half (the signing nonce prefix) never travels with the key.
  const view = ed25519.utils.toMontgomerySecret(seed);
  const out = view.slice();
  view.fill(0);
  return out;
}
