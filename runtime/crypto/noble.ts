// The noble suite: the portable pure-JS reference that the node:crypto suite must match byte for byte.
import { gcm } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { CryptoError, DecryptError, expectBytes, expectHkdfLength, expectRandomLength } from './errors.ts';
import type { CryptoSuite } from './suite.ts';

// Strict RFC 8032 verification (canonical encodings, no small-order keys), matching the node suite.
const STRICT = { zip215: false } as const;

/**
 * Builds a `CryptoSuite` on @noble/curves, @noble/ciphers and @noble/hashes; it runs wherever
 * JavaScript runs (browsers included) and answers byte for byte as the node:crypto suite does.
 *
 * @example
 * ```ts
 * const suite = createNobleSuite();
 * const key = suite.hkdfSha256(secret, salt, new TextEncoder().encode('anx'), 32);
 * ```
 */
export function createNobleSuite(): CryptoSuite {
  return {
    name: 'noble',

    ed25519PublicKey(seed) {
      return ed25519.getPublicKey(expectBytes(seed, 'Ed25519 seed', 32));
    },

    sign(seed, message) {
      expectBytes(seed, 'Ed25519 seed', 32);
      return ed25519.sign(expectBytes(message, 'message'), seed);
    },

    verify(publicKey, message, signature) {
      try {
        if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
        if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
        if (!(message instanceof Uint8Array)) return false;
        return ed25519.verify(signature, message, publicKey, STRICT);
      } catch {
        return false;
      }
    },

    x25519PublicKey(privateKey) {
      return x25519.getPublicKey(expectBytes(privateKey, 'X25519 private key', 32));
    },

    x25519(privateKey, publicKey) {
      expectBytes(privateKey, 'X25519 private key', 32);
      expectBytes(publicKey, 'X25519 public key', 32);
      let shared: Uint8Array;
      try {
        shared = x25519.getSharedSecret(privateKey, publicKey);
      } catch (cause) {
        throw new CryptoError('X25519 expected a peer public key of large order, got a low-order point', {
          cause,
        });
      }
      if (shared.every((b) => b === 0)) {
        throw new CryptoError('X25519 expected a peer public key of large order, got a low-order point');
      }
      return shared;
    },

    aesGcmEncrypt(key, nonce, plaintext, aad) {
      expectBytes(key, 'AES-256-GCM key', 32);
      expectBytes(nonce, 'AES-256-GCM nonce', 12);
      expectBytes(plaintext, 'plaintext');
      if (aad !== undefined) expectBytes(aad, 'associated data');
      return gcm(key, nonce, aad).encrypt(plaintext);
    },

    aesGcmDecrypt(key, nonce, sealed, aad) {
      expectBytes(key, 'AES-256-GCM key', 32);
      expectBytes(nonce, 'AES-256-GCM nonce', 12);
      expectBytes(sealed, 'sealed ciphertext');
      if (aad !== undefined) expectBytes(aad, 'associated data');
      if (sealed.length < 16) {
        throw new DecryptError(`sealed ciphertext expected at least 16 bytes, got ${sealed.length} bytes`);
      }
      try {
        return gcm(key, nonce, aad).decrypt(sealed);
      } catch (cause) {
        throw new DecryptError(undefined, { cause });
      }
    },

    hkdfSha256(ikm, salt, info, length) {
      expectBytes(ikm, 'HKDF input key material');
      expectBytes(salt, 'HKDF salt');
      expectBytes(info, 'HKDF info');
      expectHkdfLength(length);
      if (length === 0) return new Uint8Array(0);
      return hkdf(sha256, ikm, salt, info, length);
    },

    sha256(data) {
      return sha256(expectBytes(data, 'SHA-256 input'));
    },

    hmacSha256(key, data) {
      return hmac(sha256, expectBytes(key, 'HMAC key'), expectBytes(data, 'HMAC input'));
    },

    randomBytes(length) {
      const out = new Uint8Array(expectRandomLength(length));
      // Web Crypto fills at most 64 KiB per call.
      for (let offset = 0; offset < out.length; offset += 65536) {
        globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(out.length, offset + 65536)));
      }
      return out;
    },
  };
}

/** The shared noble suite. */
export const nobleSuite: CryptoSuite = createNobleSuite();
