// Sealed mode: ephemeral-static X25519, HKDF-SHA256 and AES-256-GCM over the body, signed by the sender.
import { ed25519PublicToX25519 } from '../crypto/convert.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { publicKeyOfDid } from '../identity/did.ts';
import { ENVELOPE_VERSION, type Envelope, SEALED_ENC } from './envelope.ts';
import { EnvelopeDecryptError, EnvelopeFieldError } from './errors.ts';
import { envelopeAad, signEnvelope } from './signing.ts';

/** HKDF info of the sealed-mode key: ASCII `anx-envelope-seal`, 0x00, the version byte, then `enc`. */
export const SEAL_INFO: Readonly<Uint8Array> = new TextEncoder().encode(
  `anx-envelope-seal\0${String.fromCharCode(ENVELOPE_VERSION)}${SEALED_ENC}`,
);

/** Options of `seal`. */
export interface SealOptions {
  /** The sender's Ed25519 seed; its DID must be the envelope's `from`. */
  senderSeed: Uint8Array;
  /** The DID whose key may open the body. */
  recipientDid: string;
  suite: CryptoSuite;
  /** Test vectors only: a fixed ephemeral X25519 private key. Never reuse one. */
  ephemeralPrivate?: Uint8Array;
  /** Test vectors only: a fixed 12-byte nonce. */
  nonce?: Uint8Array;
}

/** Options of `openSealed`. */
export interface OpenOptions {
  /** The recipient's X25519 private key (`ed25519SeedToX25519Private(seed)`). */
  recipientX25519Private: Uint8Array;
  suite: CryptoSuite;
}

/**
 * The AES-256-GCM key of a sealed envelope: HKDF-SHA256 with the X25519 shared secret as input
 * key material, `epk || recipient X25519 public key` as salt and `SEAL_INFO` as info, 32 bytes.
 * Salt and info bind the key to both public keys and to the protocol version.
 *
 * @example
 * ```ts
 * const key = sealKey(suite, suite.x25519(ephemeral, recipientX), epk, recipientX);
 * ```
 */
export function sealKey(
  suite: CryptoSuite,
  sharedSecret: Uint8Array,
  epk: Uint8Array,
  recipientX25519Public: Uint8Array,
): Uint8Array {
  const salt = new Uint8Array(64);
  salt.set(epk, 0);
  salt.set(recipientX25519Public, 32);
  return suite.hkdfSha256(sharedSecret, salt, SEAL_INFO as Uint8Array, 32);
}

/**
 * Seals a plain envelope for `recipientDid`: encrypts its body (the encoded payload) under a key
 * agreed between a fresh ephemeral X25519 key and the recipient's X25519 key (derived from the
 * Ed25519 key in its DID), with the canonical header as associated data, then signs header and
 * ciphertext with the sender's key. Returns a new envelope with `enc`, `epk`, `nonce`, the
 * ciphertext as `body`, and `sig`. Throws `EnvelopeFieldError` for an already sealed envelope or a
 * recipient that is not a DID, `EnvelopeSenderKeyError` when `from` is not the sender's DID.
 *
 * @example
 * ```ts
 * const sealed = seal(createEnvelope({ type: 'vote', from: alice.did, to: bob.did, body: { yes: true } }),
 *   { senderSeed: alice.seed, recipientDid: bob.did, suite });
 * ```
 */
export function seal(env: Envelope, options: SealOptions): Envelope {
  const { suite } = options;
  if (env.enc !== undefined) {
    throw new EnvelopeFieldError('enc', '"enc" expected a plain envelope to seal, got one already sealed', {
      id: env.id,
    });
  }
  let recipientX: Uint8Array;
  try {
    recipientX = ed25519PublicToX25519(publicKeyOfDid(options.recipientDid, 'recipientDid'));
  } catch (cause) {
    throw new EnvelopeFieldError(
      'recipientDid',
      `"recipientDid" expected a DID with a usable Ed25519 key, got ${JSON.stringify(String(options.recipientDid)).slice(0, 80)}`,
      { id: env.id, cause },
    );
  }
  const ephemeral = options.ephemeralPrivate ?? suite.randomBytes(32);
  const nonce = options.nonce ?? suite.randomBytes(12);
  const epk = suite.x25519PublicKey(ephemeral);
  const shared = suite.x25519(ephemeral, recipientX);
  const key = sealKey(suite, shared, epk, recipientX);
  const { sig: _old, ...plain } = env;
  const headerOnly: Envelope = { ...plain, enc: SEALED_ENC, epk, nonce };
  const ciphertext = suite.aesGcmEncrypt(key, nonce, env.body, envelopeAad(headerOnly));
  shared.fill(0);
  key.fill(0);
  if (options.ephemeralPrivate === undefined) ephemeral.fill(0);
  return signEnvelope({ ...headerOnly, body: ciphertext }, options.senderSeed, suite);
}

/**
 * Opens a sealed envelope's body and returns the plaintext payload bytes (decode them with
 * `decodeBody`). Does not check the signature: `acceptEnvelope` does that first. Throws
 * `EnvelopeDecryptError` for a plain envelope, a wrong key, or a tampered header, epk, nonce or
 * ciphertext.
 *
 * @example
 * ```ts
 * const payload = openSealed(env, { recipientX25519Private: ed25519SeedToX25519Private(bob.seed), suite });
 * ```
 */
export function openSealed(env: Envelope, options: OpenOptions): Uint8Array {
  const context = { id: env.id, from: env.from };
  if (env.enc !== SEALED_ENC || env.epk === undefined || env.nonce === undefined) {
    throw new EnvelopeDecryptError('envelope expected to be sealed, got a plain envelope', context);
  }
  const { suite, recipientX25519Private } = options;
  let shared: Uint8Array | undefined;
  let key: Uint8Array | undefined;
  try {
    const recipientX = suite.x25519PublicKey(recipientX25519Private);
    shared = suite.x25519(recipientX25519Private, env.epk);
    key = sealKey(suite, shared, env.epk, recipientX);
    return suite.aesGcmDecrypt(key, env.nonce, env.body, envelopeAad(env));
  } catch (cause) {
    throw new EnvelopeDecryptError('sealed body does not open with this recipient key', {
      ...context,
      cause,
    });
  } finally {
    shared?.fill(0);
    key?.fill(0);
  }
}
