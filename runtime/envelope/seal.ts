// Sealed mode: ephemeral-static X25519, HKDF-SHA256 and AES-256-GCM over everything but addressing, signed by the sender.
import { ed25519PublicToX25519 } from '../crypto/convert.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { describeValue } from '../errors.ts';
import { publicKeyOfDid } from '../identity/did.ts';
import { decodeSealedContent, encodeSealedContent } from './codec.ts';
import { ENVELOPE_VERSION, type Envelope, SEALED_ENC, SEALED_TYPE } from './envelope.ts';
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
 * Seals a plain envelope for `recipientDid`. Everything that is not addressing — `type`, `thread`,
 * `reply`, `ctx`, `actor`, `cap` and the payload — goes into a `SealedContent` map encrypted under
 * a key agreed between a fresh ephemeral X25519 key and the recipient's X25519 key (derived from
 * the Ed25519 key in its DID), with the canonical outer header as associated data; the sender's
 * key then signs outer header and ciphertext. The result keeps `v`, `id`, `from`, `to`, `ts`,
 * `exp` in clear, has `type` `SEALED_TYPE`, and adds `enc`, `epk`, `nonce` and `sig`.
 * Throws `EnvelopeFieldError` for an already sealed envelope or a recipient that is not a DID,
 * `EnvelopeSenderKeyError` when `from` is not the sender's DID.
 *
 * @example
 * ```ts
 * const sealed = seal(createEnvelope({ type: 'vote', from: alice.did, to: bob.did, body: { yes: true } }),
 *   { senderSeed: alice.seed, recipientDid: bob.did, suite });
 * ```
 */
export function seal(env: Envelope, options: SealOptions): Envelope {
  const { suite } = options;
  if (env.enc !== undefined || env.type === SEALED_TYPE) {
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
      `"recipientDid" expected a DID with a usable Ed25519 key, got ${describeValue(String(options.recipientDid)).slice(0, 80)}`,
      { id: env.id, cause },
    );
  }
  const plaintext = encodeSealedContent(env);
  const ephemeral = options.ephemeralPrivate ?? suite.randomBytes(32);
  const nonce = options.nonce ?? suite.randomBytes(12);
  const epk = suite.x25519PublicKey(ephemeral);
  const shared = suite.x25519(ephemeral, recipientX);
  const key = sealKey(suite, shared, epk, recipientX);
  const outer: Envelope = {
    v: env.v,
    id: env.id,
    type: SEALED_TYPE,
    from: env.from,
    to: env.to,
    ts: env.ts,
    enc: SEALED_ENC,
    epk,
    nonce,
    body: EMPTY,
  };
  if (env.exp !== undefined) outer.exp = env.exp;
  outer.body = suite.aesGcmEncrypt(key, nonce, plaintext, envelopeAad(outer));
  shared.fill(0);
  key.fill(0);
  if (options.ephemeralPrivate === undefined) ephemeral.fill(0);
  return signEnvelope(outer, options.senderSeed, suite);
}

const EMPTY = new Uint8Array(0);

/** A sealed envelope after opening. */
export interface OpenedEnvelope {
  /**
   * The envelope as its sender built it before sealing: the outer addressing fields with the
   * sealed `type`, `thread`, `reply`, `ctx`, `actor`, `cap`, and the payload bytes as `body`
   * (no `enc`, `epk`, `nonce` or `sig`: the signature covers the sealed form).
   */
  envelope: Envelope;
  /** The payload bytes (decode them with `decodeBody`). */
  payload: Uint8Array;
}

/**
 * Opens a sealed envelope. Does not check the signature: `acceptEnvelope` does that first.
 * Throws `EnvelopeDecryptError` for a plain envelope, a wrong key, or a tampered header, epk,
 * nonce or ciphertext, and `EnvelopeDecodeError` / `EnvelopeFieldError` when the opened content is
 * malformed (which only its signed sender can cause).
 *
 * @example
 * ```ts
 * const { envelope, payload } = openSealed(env, {
 *   recipientX25519Private: ed25519SeedToX25519Private(bob.seed),
 *   suite,
 * });
 * ```
 */
export function openSealed(env: Envelope, options: OpenOptions): OpenedEnvelope {
  const context = { id: env.id, from: env.from };
  if (env.enc !== SEALED_ENC || env.epk === undefined || env.nonce === undefined) {
    throw new EnvelopeDecryptError('envelope expected to be sealed, got a plain envelope', context);
  }
  const { suite, recipientX25519Private } = options;
  let shared: Uint8Array | undefined;
  let key: Uint8Array | undefined;
  let plaintext: Uint8Array;
  try {
    const recipientX = suite.x25519PublicKey(recipientX25519Private);
    shared = suite.x25519(recipientX25519Private, env.epk);
    key = sealKey(suite, shared, env.epk, recipientX);
    plaintext = suite.aesGcmDecrypt(key, env.nonce, env.body, envelopeAad(env));
  } catch (cause) {
    throw new EnvelopeDecryptError('sealed body does not open with this recipient key', {
      ...context,
      cause,
    });
  } finally {
    shared?.fill(0);
    key?.fill(0);
  }
  const content = decodeSealedContent(plaintext, context);
  const envelope: Envelope = {
    v: env.v,
    id: env.id,
    type: content.type,
    from: env.from,
    to: env.to,
    ts: env.ts,
    body: content.body,
  };
  if (env.exp !== undefined) envelope.exp = env.exp;
  if (content.thread !== undefined) envelope.thread = content.thread;
  if (content.reply !== undefined) envelope.reply = content.reply;
  if (content.ctx !== undefined) envelope.ctx = content.ctx;
  if (content.actor !== undefined) envelope.actor = content.actor;
  if (content.cap !== undefined) envelope.cap = content.cap;
  return { envelope, payload: content.body };
}
