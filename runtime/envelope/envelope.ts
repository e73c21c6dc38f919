// The envelope v1: its in-memory shape (wire names), its constants, and message ids.

/** The only envelope version this implementation speaks. */
export const ENVELOPE_VERSION = 1;

/** Value of `enc` on a sealed envelope: ephemeral-static X25519, HKDF-SHA256, AES-256-GCM. */
export const SEALED_ENC = 'x25519-a256gcm';

/**
 * The outer `type` of every sealed envelope. The real type, like every field that is not
 * addressing, travels inside the ciphertext, so the relay learns nothing but who talks to whom.
 */
export const SEALED_TYPE = 'anx.sealed';

/**
 * The type of the kernel's own event for several envelopes taken in one transition: no message may
 * carry it, or it would reach a machine as a batch of nothing and be neither stored nor refused.
 */
export const BATCH_TYPE = 'anx.batch';

/** The context keys an envelope may carry, in the order the signing input writes them. */
export const CONTEXT_KEYS = ['session_id', 'run_id', 'enclave_id', 'task_id', 'stage'] as const;

/** One of `CONTEXT_KEYS`. */
export type ContextKey = (typeof CONTEXT_KEYS)[number];

/** Where a message belongs: the session, run, enclave, task and stage it is part of. */
export type EnvelopeContext = { [K in ContextKey]?: string };

/**
 * An envelope as it travels, with its wire names. `body` is always bytes: the msgpack encoding of
 * the payload for a plain envelope, or AES-256-GCM ciphertext and tag for a sealed one. Carrying the
 * body as opaque bytes is what makes the signature independent of how any msgpack library orders maps.
 * A sealed envelope has `type` `SEALED_TYPE` and no `thread`, `reply`, `ctx`, `actor` or `cap` in
 * clear: those travel in its `SealedContent`.
 */
export interface Envelope {
  /** Format version, always 1. */
  v: 1;
  /** Message id, unique per sender: dedupe and replay protection. */
  id: string;
  /** Message type, e.g. `task.propose` (`SEALED_TYPE` on the outside of a sealed envelope). */
  type: string;
  /** Sender DID; its key signs the envelope. */
  from: string;
  /** Recipient DID or actor address such as `enclave/abc`. */
  to: string;
  /** Send time, milliseconds since the epoch. */
  ts: number;
  /** Time after which the message must not be accepted, milliseconds since the epoch. */
  exp?: number;
  /** Id of the first message of the conversation. */
  thread?: string;
  /** Id of the message this one answers. */
  reply?: string;
  ctx?: EnvelopeContext;
  /** DID acting for the principal in `from`, when not `from` itself. */
  actor?: string;
  /** Capability token (its encoded bytes) or a reference to one (a string). */
  cap?: string | Uint8Array;
  /** Sealed mode marker: `SEALED_ENC`; absent on plain envelopes. */
  enc?: typeof SEALED_ENC;
  /** Sealed mode: the sender's ephemeral X25519 public key, 32 bytes. */
  epk?: Uint8Array;
  /** Sealed mode: the AES-256-GCM nonce, 12 bytes. */
  nonce?: Uint8Array;
  /** Encoded payload (plain) or ciphertext || tag (sealed). */
  body: Uint8Array;
  /** Ed25519 signature, 64 bytes, by the key in `from`; absent only on in-process envelopes. */
  sig?: Uint8Array;
}

/**
 * What a sealed envelope's ciphertext holds: a msgpack map of the fields that are not addressing,
 * with the payload bytes as `body`.
 */
export type SealedContent = Pick<Envelope, 'type' | 'thread' | 'reply' | 'ctx' | 'actor' | 'cap' | 'body'>;

// Crockford's base32 sorts in ASCII order, so ids sort by creation time as strings and as bytes.
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_CHARS = 10;
const RANDOM_BYTES = 10;

/**
 * A new message id: 26 characters of Crockford base32 holding a 48-bit millisecond timestamp
 * followed by 80 random bits (the ULID layout), so ids are unique and sort by creation time.
 *
 * @example
 * ```ts
 * const id = newEnvelopeId(); // e.g. "01JDQ8Z6M4X9C2V7B1N5T3K8RW"
 * ```
 */
export function newEnvelopeId(now: number = Date.now(), random?: Uint8Array): string {
  const entropy = random ?? globalThis.crypto.getRandomValues(new Uint8Array(RANDOM_BYTES));
  let time = Math.max(0, Math.floor(now));
  const chars: string[] = new Array(TIME_CHARS + 16);
  for (let i = TIME_CHARS - 1; i >= 0; i--) {
    chars[i] = CROCKFORD[time % 32] as string;
    time = Math.floor(time / 32);
  }
  let acc = 0;
  let bits = 0;
  let out = TIME_CHARS;
  for (let i = 0; i < RANDOM_BYTES; i++) {
    acc = ((acc << 8) | (entropy[i] ?? 0)) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      chars[out++] = CROCKFORD[(acc >> bits) & 31] as string;
    }
  }
  return chars.join('');
}
