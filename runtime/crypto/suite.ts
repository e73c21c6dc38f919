// The crypto seam: one small interface that the node:crypto and noble suites both implement byte for byte.

/**
 * The primitives the runtime needs. Keys are raw bytes: Ed25519 private keys are 32-byte seeds,
 * X25519 keys are 32 bytes, AES-256-GCM keys are 32 bytes with 12-byte nonces and a 16-byte tag
 * appended to the ciphertext. Both suites must produce identical bytes for identical inputs.
 */
export interface CryptoSuite {
  readonly name: 'node' | 'noble';
  /** Ed25519 public key (32 bytes) of a 32-byte seed. */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /** Ed25519 signature (64 bytes, deterministic, RFC 8032). */
  sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /** Verifies an Ed25519 signature; false on any malformed input, never throws. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** X25519 public key of a 32-byte private key. */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /** X25519 shared secret; throws `CryptoError` for a low-order (all-zero) result. */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** AES-256-GCM: returns ciphertext || 16-byte tag. */
  aesGcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  /** AES-256-GCM open; throws `DecryptError` when the tag does not verify. */
  aesGcmDecrypt(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array;
  /** HKDF-SHA256 (RFC 5869). */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  randomBytes(length: number): Uint8Array;
}
