// The deterministic signing input of an envelope (byte layout in docs/protocol.md), and signing and verifying it.
import type { CryptoSuite } from '../crypto/suite.ts';
import { describeValue } from '../errors.ts';
import { DID_PREFIX, DidError, didFromPublicKey, publicKeyOfDid } from '../identity/did.ts';
import { CONTEXT_KEYS, type Envelope } from './envelope.ts';
import { EnvelopeSenderKeyError, EnvelopeSignatureError } from './errors.ts';

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Domain-separation prefix of the signing input: ASCII `anx-envelope-sig` and a 0x00 byte. */
export const SIGNING_PREFIX: Readonly<Uint8Array> = ascii('anx-envelope-sig\0');
/** Domain-separation prefix of a sealed envelope's AES-GCM associated data: `anx-envelope-aad` and 0x00. */
export const AAD_PREFIX: Readonly<Uint8Array> = ascii('anx-envelope-aad\0');

const encoder = new TextEncoder();
const ABSENT = 0x00;
const PRESENT = 0x01;
const CAP_STRING = 0x01;
const CAP_BYTES = 0x02;

// Collects the header's pieces first so the output is allocated once at its exact size.
class Builder {
  private readonly parts: (Uint8Array | number)[] = [];
  private readonly kinds: number[] = [];
  length = 0;

  byte(value: number): void {
    this.parts.push(value);
    this.kinds.push(1);
    this.length += 1;
  }

  u64(value: number): void {
    this.parts.push(value);
    this.kinds.push(8);
    this.length += 8;
  }

  bytes(value: Uint8Array): void {
    this.parts.push(value);
    this.kinds.push(0);
    this.length += 4 + value.length;
  }

  str(value: string): void {
    this.bytes(encoder.encode(value));
  }

  optStr(value: string | undefined): void {
    if (value === undefined) this.byte(ABSENT);
    else {
      this.byte(PRESENT);
      this.str(value);
    }
  }

  optBytes(value: Uint8Array | undefined): void {
    if (value === undefined) this.byte(ABSENT);
    else {
      this.byte(PRESENT);
      this.bytes(value);
    }
  }

  finish(prefix: Readonly<Uint8Array>, tail?: Uint8Array): Uint8Array {
    const total = prefix.length + this.length + (tail === undefined ? 0 : 4 + tail.length);
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    out.set(prefix, 0);
    let at = prefix.length;
    for (let i = 0; i < this.parts.length; i++) {
      const part = this.parts[i] as Uint8Array | number;
      const kind = this.kinds[i];
      if (kind === 1) {
        out[at++] = part as number;
      } else if (kind === 8) {
        const n = part as number;
        view.setUint32(at, Math.floor(n / 0x100000000));
        view.setUint32(at + 4, n >>> 0);
        at += 8;
      } else {
        const b = part as Uint8Array;
        view.setUint32(at, b.length);
        out.set(b, at + 4);
        at += 4 + b.length;
      }
    }
    if (tail !== undefined) {
      view.setUint32(at, tail.length);
      out.set(tail, at + 4);
    }
    return out;
  }
}

// The canonical header H: every field but `body` and `sig`, in a fixed order, absent ones explicit.
function header(env: Envelope): Builder {
  const b = new Builder();
  b.byte(env.v);
  b.str(env.id);
  b.str(env.type);
  b.str(env.from);
  b.str(env.to);
  b.u64(env.ts);
  if (env.exp === undefined) b.byte(ABSENT);
  else {
    b.byte(PRESENT);
    b.u64(env.exp);
  }
  b.optStr(env.thread);
  b.optStr(env.reply);
  for (const key of CONTEXT_KEYS) b.optStr(env.ctx?.[key]);
  b.optStr(env.actor);
  if (env.cap === undefined) b.byte(ABSENT);
  else if (typeof env.cap === 'string') {
    b.byte(CAP_STRING);
    b.str(env.cap);
  } else {
    b.byte(CAP_BYTES);
    b.bytes(env.cap);
  }
  b.optStr(env.enc);
  b.optBytes(env.epk);
  b.optBytes(env.nonce);
  return b;
}

/**
 * The bytes an envelope's signature covers: `SIGNING_PREFIX || H || u32be(len(body)) || body`,
 * where H is the canonical header (docs/protocol.md, "Signing input"). For a sealed envelope the
 * body is the ciphertext, so the signature covers header and ciphertext.
 *
 * @example
 * ```ts
 * const ok = suite.verify(publicKey, envelopeSigningInput(env), env.sig!);
 * ```
 */
export function envelopeSigningInput(env: Envelope): Uint8Array {
  return header(env).finish(SIGNING_PREFIX, env.body);
}

/**
 * The associated data a sealed envelope's AES-256-GCM binds: `AAD_PREFIX || H`, with `enc`, `epk`
 * and `nonce` already set in the header.
 *
 * @example
 * ```ts
 * const aad = envelopeAad({ ...env, enc: SEALED_ENC, epk, nonce });
 * ```
 */
export function envelopeAad(env: Envelope): Uint8Array {
  return header(env).finish(AAD_PREFIX);
}

// Signing checks that `from` belongs to the seed; deriving the public key is a scalar
// multiplication, so remember the answer per seed object (the keystore hands out the same one).
const didOfSeed = new WeakMap<Uint8Array, string>();

function didOf(seed: Uint8Array, suite: CryptoSuite): string {
  let did = didOfSeed.get(seed);
  if (did === undefined) {
    did = didFromPublicKey(suite.ed25519PublicKey(seed));
    didOfSeed.set(seed, did);
  }
  return did;
}

/**
 * Returns a copy of `env` with `sig` set: the Ed25519 signature of `envelopeSigningInput(env)` by
 * `seed`. Throws `EnvelopeSenderKeyError` when `env.from` is not the DID of that seed, since the
 * receiver would refuse the envelope anyway.
 *
 * @example
 * ```ts
 * const signed = signEnvelope(createEnvelope({ type: 'ping', from: alice.did, to: bob.did }), alice.seed, suite);
 * ```
 */
export function signEnvelope(env: Envelope, seed: Uint8Array, suite: CryptoSuite): Envelope {
  const did = didOf(seed, suite);
  if (env.from !== did) {
    throw new EnvelopeSenderKeyError(
      `"from" expected the signing key's DID ${did}, got ${describeValue(env.from)}`,
      {
        id: env.id,
        hint: 'set from to the DID of the identity whose seed signs',
      },
    );
  }
  const { sig: _old, ...unsigned } = env;
  const signed: Envelope = { ...unsigned, sig: suite.sign(seed, envelopeSigningInput(env)) };
  return signed;
}

/**
 * The Ed25519 public key named by an envelope's `from`. Throws `EnvelopeSenderKeyError` when
 * `from` is not a canonical did:agentnexus DID with a decodable Ed25519 key.
 *
 * @example
 * ```ts
 * const publicKey = senderPublicKey(env);
 * ```
 */
export function senderPublicKey(env: Envelope): Uint8Array {
  const context = { id: env.id, from: env.from };
  if (typeof env.from !== 'string' || !env.from.startsWith(DID_PREFIX)) {
    throw new EnvelopeSenderKeyError(
      `"from" expected a did:agentnexus DID, got ${describeValue(env.from)}`,
      context,
    );
  }
  try {
    return publicKeyOfDid(env.from, 'from');
  } catch (cause) {
    const detail = cause instanceof DidError ? cause.message : 'an undecodable key';
    throw new EnvelopeSenderKeyError(`"from" expected a DID naming an Ed25519 key: ${detail}`, {
      ...context,
      cause,
    });
  }
}

/**
 * Checks `env.sig` against the key in `env.from`; returns nothing when it verifies. Throws
 * `EnvelopeSenderKeyError` when `from` is not a valid DID, and `EnvelopeSignatureError` when the
 * signature is missing or does not verify (a `from` naming someone else's key lands here too).
 *
 * @example
 * ```ts
 * verifyEnvelopeSignature(decodeEnvelope(bytes), suite);
 * ```
 */
export function verifyEnvelopeSignature(env: Envelope, suite: CryptoSuite): void {
  const publicKey = senderPublicKey(env);
  const context = { id: env.id, from: env.from };
  if (env.sig === undefined) {
    throw new EnvelopeSignatureError('"sig" expected a 64-byte Ed25519 signature, got none', context);
  }
  if (!suite.verify(publicKey, envelopeSigningInput(env), env.sig)) {
    throw new EnvelopeSignatureError(`signature does not verify against the key of ${env.from}`, context);
  }
}
