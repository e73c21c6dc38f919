// The receiving pipeline: bytes from another host become an accepted envelope or exactly one typed error.
import type { CryptoSuite } from '../crypto/suite.ts';
import { AnxError } from '../errors.ts';
import { decodeBody, decodeEnvelope } from './codec.ts';
import { type Envelope, SEALED_ENC } from './envelope.ts';
import {
  EnvelopeDecodeError,
  EnvelopeDecryptError,
  EnvelopeDuplicateError,
  EnvelopeError,
  EnvelopeExpiredError,
  EnvelopeReplayWindowError,
  EnvelopeSignatureError,
} from './errors.ts';
import { DEFAULT_REPLAY_WINDOW_MS, type ReplayGuard } from './replay.ts';
import { openSealed } from './seal.ts';
import { verifyEnvelopeSignature } from './signing.ts';

/** Options of `acceptEnvelope`. */
export interface AcceptOptions {
  suite: CryptoSuite;
  guard: ReplayGuard;
  /** Time source; default the wall clock. */
  clock?: { now(): number };
  /** Largest `|now - ts|` accepted, in ms; default 5 minutes. */
  windowMs?: number;
  /** Largest input accepted, in bytes; default 1 MiB. */
  maxBytes?: number;
  /**
   * The X25519 private key that opens sealed bodies, or a lookup by the envelope's `to`.
   * Without one, sealed envelopes are refused with `EnvelopeDecryptError`.
   */
  recipientX25519Private?: Uint8Array | ((to: string) => Uint8Array | undefined);
}

/** An envelope that passed every check. */
export interface AcceptedEnvelope {
  /**
   * The envelope as its sender built it: for a sealed one, the opened form (real `type`, `ctx`...
   * restored, the payload as `body`); for a plain one, `wire` itself.
   */
  envelope: Envelope;
  /** The envelope exactly as it came, with its signature (keep it as proof of what was sent). */
  wire: Envelope;
  /** The plaintext payload bytes: for a plain envelope a view of the input bytes, else the opened ciphertext. */
  payload: Uint8Array;
  /** The decoded payload. */
  body: unknown;
  sealed: boolean;
}

/**
 * Accepts one envelope from outside the host. Checks, in order, and throws the first failure:
 * size (`ANX_ENVELOPE_TOO_LARGE`), msgpack (`ANX_ENVELOPE_DECODE`), version
 * (`ANX_ENVELOPE_VERSION`), fields (`ANX_ENVELOPE_FIELD`), a signature is present
 * (`ANX_ENVELOPE_SIGNATURE`), `exp` (`ANX_ENVELOPE_EXPIRED`), `ts` within the window
 * (`ANX_ENVELOPE_REPLAY_WINDOW`), `id` not seen from this sender (`ANX_ENVELOPE_DUPLICATE`),
 * `from` names a key (`ANX_ENVELOPE_SENDER_KEY`), the signature verifies
 * (`ANX_ENVELOPE_SIGNATURE`), a sealed body opens (`ANX_ENVELOPE_DECRYPT`) to well-formed content
 * (`ANX_ENVELOPE_DECODE`, `ANX_ENVELOPE_FIELD`) and the payload decodes (`ANX_ENVELOPE_DECODE`).
 * Only then is the id remembered. Every refusal is an `EnvelopeError`
 * whatever the bytes; errors thrown by the guard or the key lookup themselves pass through.
 *
 * @example
 * ```ts
 * try {
 *   const { envelope, body } = acceptEnvelope(bytes, { suite, guard, recipientX25519Private: xPriv });
 * } catch (err) {
 *   events.append(envelopeErrorEvent(err, bytes.length, Date.now()));
 * }
 * ```
 */
export function acceptEnvelope(bytes: Uint8Array, options: AcceptOptions): AcceptedEnvelope {
  const env = decodeEnvelope(bytes, { maxBytes: options.maxBytes });
  const context = { id: env.id, from: env.from };
  if (env.sig === undefined) {
    throw new EnvelopeSignatureError('"sig" expected a 64-byte Ed25519 signature, got none', context);
  }

  // Stateless time checks first, then the cheap id lookup, then the costly crypto: a flood of
  // replays or stale mail costs no signature verification.
  const now = options.clock ? options.clock.now() : Date.now();
  if (env.exp !== undefined && now > env.exp) {
    throw new EnvelopeExpiredError(
      `envelope expired at ${env.exp}, ${now - env.exp} ms before now (${now})`,
      context,
    );
  }
  const window = options.windowMs ?? DEFAULT_REPLAY_WINDOW_MS;
  if (Math.abs(now - env.ts) > window) {
    throw new EnvelopeReplayWindowError(
      `"ts" expected within ${window} ms of now (${now}), got ${env.ts} (${now - env.ts > 0 ? 'old' : 'ahead'} by ${Math.abs(now - env.ts)} ms)`,
      { ...context, hint: 'check the sender clock' },
    );
  }
  if (options.guard.seen(env.from, env.id)) {
    throw new EnvelopeDuplicateError(`message ${env.id} from ${env.from} was already accepted`, context);
  }

  verifyEnvelopeSignature(env, options.suite);

  let payload = env.body;
  let opened = env;
  const sealed = env.enc === SEALED_ENC;
  if (sealed) {
    const keyOption = options.recipientX25519Private;
    const key = typeof keyOption === 'function' ? keyOption(env.to) : keyOption;
    if (key === undefined) {
      throw new EnvelopeDecryptError(`no X25519 key to open a sealed envelope for ${env.to}`, context);
    }
    ({ envelope: opened, payload } = openSealed(env, { recipientX25519Private: key, suite: options.suite }));
  }
  let body: unknown;
  try {
    body = decodeBody(payload);
  } catch (cause) {
    throw new EnvelopeDecodeError(
      `body expected one well-formed msgpack value, got ${payload.length} bytes that do not decode`,
      { ...context, cause },
    );
  }
  options.guard.remember(env.from, env.id, env.ts);
  return { envelope: opened, wire: env, payload, body, sealed };
}

/** The EventV1-shaped record of a refused envelope; carries no body content and no key. */
export interface EnvelopeErrorEvent {
  kind: 'error';
  ts: number;
  payload: {
    code: string;
    message: string;
    /** Size of the refused input, in bytes. */
    bytes: number;
    from?: string;
    id?: string;
  };
}

/**
 * Turns a refusal from `acceptEnvelope` into the `error` event the kernel appends. Anything that
 * is not an `AnxError` is reported with code `ANX_ENVELOPE_INTERNAL` and a fixed message, since
 * a foreign message could quote anything.
 *
 * @example
 * ```ts
 * events.append(envelopeErrorEvent(err, bytes.length, clock.now()));
 * ```
 */
export function envelopeErrorEvent(err: unknown, bytesLength: number, now: number): EnvelopeErrorEvent {
  if (!(err instanceof AnxError)) {
    return {
      kind: 'error',
      ts: now,
      payload: {
        code: 'ANX_ENVELOPE_INTERNAL',
        message: 'unexpected failure while receiving an envelope',
        bytes: bytesLength,
      },
    };
  }
  const payload: EnvelopeErrorEvent['payload'] = { code: err.code, message: err.message, bytes: bytesLength };
  if (err instanceof EnvelopeError) {
    if (err.from !== undefined) payload.from = err.from;
    if (err.id !== undefined) payload.id = err.id;
  }
  return { kind: 'error', ts: now, payload };
}
