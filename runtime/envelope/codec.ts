// Msgpack encoding of envelopes and their bodies, with a decoder that answers hostile bytes with typed errors.
import { Packr } from 'msgpackr';
import { valueProblem } from '../value-checks.ts';
import { CONTEXT_KEYS, type Envelope, type EnvelopeContext, type SealedContent } from './envelope.ts';
import {
  EnvelopeDecodeError,
  type EnvelopeErrorContext,
  EnvelopeFieldError,
  EnvelopeTooLargeError,
} from './errors.ts';
import { validateEnvelope, validateSealedContent } from './validate.ts';

/** Default largest envelope accepted, in bytes (1 MiB); checked before any decoding work. */
export const DEFAULT_MAX_ENVELOPE_BYTES = 1024 * 1024;

/**
 * Largest message body a host takes from a sender (encoded, in bytes): what still fits one envelope
 * after its headers, context, sealing and signature, so a message accepted here can reach any host.
 */
export const MAX_BODY_BYTES = DEFAULT_MAX_ENVELOPE_BYTES - 64 * 1024;

// A dedicated instance: options set here cannot leak into, or be changed by, other msgpackr users
// (LMDB shares the library). No records or structures on the wire, so any msgpack decoder reads us;
// no structured-clone references, whose decoder trusts its input; `undefined` becomes nil so bodies
// carry no extension types; maps decode as plain objects, bin as a view of the input.
const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  int64AsType: 'number',
  copyBuffers: false,
  useFloat32: 0,
});

/** Options of `decodeEnvelope`. */
export interface DecodeOptions {
  /** Largest input accepted, in bytes; default `DEFAULT_MAX_ENVELOPE_BYTES`. */
  maxBytes?: number;
}

function isMapHead(byte: number): boolean {
  return (byte & 0xf0) === 0x80 || byte === 0xde || byte === 0xdf;
}

// Entry count from the map header; comparing it with the decoded keys catches repeated keys.
function mapHeadCount(bytes: Uint8Array): number {
  const head = bytes[0] as number;
  if (head <= 0x8f) return head & 0x0f;
  if (head === 0xde) return ((bytes[1] ?? 0) << 8) | (bytes[2] ?? 0);
  return (
    ((bytes[1] ?? 0) * 0x1000000 + ((bytes[2] ?? 0) << 16) + ((bytes[3] ?? 0) << 8) + (bytes[4] ?? 0)) >>> 0
  );
}

function firstByteKind(byte: number): string {
  if (byte <= 0x7f || byte >= 0xe0 || (byte >= 0xcc && byte <= 0xd3)) return 'an integer';
  if ((byte & 0xf0) === 0x90 || byte === 0xdc || byte === 0xdd) return 'an array';
  if ((byte & 0xe0) === 0xa0 || (byte >= 0xd9 && byte <= 0xdb)) return 'a string';
  if (byte >= 0xc4 && byte <= 0xc6) return 'bytes';
  if (byte === 0xca || byte === 0xcb) return 'a float';
  if (byte === 0xc0) return 'nil';
  if (byte === 0xc2 || byte === 0xc3) return 'a boolean';
  if ((byte >= 0xc7 && byte <= 0xc9) || (byte >= 0xd4 && byte <= 0xd8)) return 'an extension value';
  return `the unused byte 0x${byte.toString(16)}`;
}

// msgpackr writes integers above 2^32 as float 64, which strictly typed decoders (Rust, Go) refuse
// for an integer field; a bigint makes it write int 64 (0xd3) instead.
function wireTime(ms: number): number | bigint {
  return Number.isSafeInteger(ms) ? BigInt(ms) : ms;
}

// Exactly one msgpack map and nothing else, or a typed error; `what` names it in messages.
function unpackMap(bytes: Uint8Array, what: string, context: EnvelopeErrorContext): Record<string, unknown> {
  const head = bytes[0];
  if (head === undefined)
    throw new EnvelopeDecodeError(`${what} expected a msgpack map, got 0 bytes`, context);
  if (!isMapHead(head)) {
    throw new EnvelopeDecodeError(`${what} expected a msgpack map, got ${firstByteKind(head)}`, context);
  }
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (cause) {
    // msgpackr's own message may quote decoded content, so it stays in `cause` only.
    const truncated =
      typeof cause === 'object' && cause !== null && (cause as { incomplete?: boolean }).incomplete;
    throw new EnvelopeDecodeError(
      truncated
        ? `${what} expected a complete msgpack map, got ${bytes.length} bytes that end inside a value`
        : `${what} expected one well-formed msgpack map, got ${bytes.length} bytes that do not decode`,
      { ...context, cause },
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || raw instanceof Uint8Array) {
    throw new EnvelopeDecodeError(`${what} expected a msgpack map, got another value`, context);
  }
  return raw as Record<string, unknown>;
}

function orderedContext(ctx: EnvelopeContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of CONTEXT_KEYS) {
    const value = ctx[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * Encodes an envelope as one msgpack map, keys in the documented order and absent optional fields
 * left out. Trusts its input (build envelopes with `createEnvelope`, `signEnvelope`, `seal`); the
 * receiver validates. The result may share an allocation slab with other encodings: do not mutate it.
 *
 * @example
 * ```ts
 * const bytes = encodeEnvelope(signEnvelope(env, alice.seed, suite));
 * ```
 */
export function encodeEnvelope(env: Envelope): Uint8Array<ArrayBuffer> {
  // A fresh object with a fixed key order makes equal envelopes encode to equal bytes.
  const wire: Record<string, unknown> = {
    v: env.v,
    id: env.id,
    type: env.type,
    from: env.from,
    to: env.to,
    ts: wireTime(env.ts),
  };
  if (env.exp !== undefined) wire.exp = wireTime(env.exp);
  if (env.thread !== undefined) wire.thread = env.thread;
  if (env.reply !== undefined) wire.reply = env.reply;
  if (env.ctx !== undefined) wire.ctx = orderedContext(env.ctx);
  if (env.actor !== undefined) wire.actor = env.actor;
  if (env.cap !== undefined) wire.cap = env.cap;
  if (env.enc !== undefined) {
    wire.enc = env.enc;
    wire.epk = env.epk;
    wire.nonce = env.nonce;
  }
  wire.body = env.body;
  if (env.sig !== undefined) wire.sig = env.sig;
  // msgpackr allocates its output from a plain ArrayBuffer, never a shared one; saying so lets
  // callers hand the bytes to fetch, Blob or postMessage without a copy.
  return packr.pack(wire) as Uint8Array<ArrayBuffer>;
}

/**
 * Decodes and validates one envelope. Refuses, in this order: input over `maxBytes`
 * (`EnvelopeTooLargeError`, before decoding), bytes that are not exactly one msgpack map —
 * empty, truncated, garbage, trailing bytes, another top-level type, duplicate keys
 * (`EnvelopeDecodeError`) — an unknown `v` (`EnvelopeVersionError`), then bad or unknown fields
 * (`EnvelopeFieldError`). It does not check the signature or time: `acceptEnvelope` does.
 * Binary fields of the result are views of `bytes`: keep `bytes` unchanged while using them.
 *
 * @example
 * ```ts
 * const env = decodeEnvelope(bytes, { maxBytes: 64 * 1024 });
 * ```
 */
export function decodeEnvelope(bytes: Uint8Array, options: DecodeOptions = {}): Envelope {
  if (!(bytes instanceof Uint8Array)) {
    throw new EnvelopeDecodeError(`envelope expected bytes, got a ${bytes === null ? 'null' : typeof bytes}`);
  }
  const max = options.maxBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
  if (bytes.length > max) {
    throw new EnvelopeTooLargeError(`envelope expected at most ${max} bytes, got ${bytes.length} bytes`, {
      hint: 'large content belongs in the vault; send an artifact ref',
    });
  }
  const raw = unpackMap(bytes, 'envelope', {});
  return validateEnvelope(raw, mapHeadCount(bytes));
}

/**
 * Encodes the content a sealed envelope encrypts: a msgpack map of `type`, the optional `thread`,
 * `reply`, `ctx`, `actor`, `cap` (absent ones left out) and the payload bytes as `body`, keys in
 * that order.
 *
 * @example
 * ```ts
 * const plaintext = encodeSealedContent({ type: 'vote', body: encodeBody({ yes: true }) });
 * ```
 */
export function encodeSealedContent(content: SealedContent): Uint8Array {
  const wire: Record<string, unknown> = { type: content.type };
  if (content.thread !== undefined) wire.thread = content.thread;
  if (content.reply !== undefined) wire.reply = content.reply;
  if (content.ctx !== undefined) wire.ctx = orderedContext(content.ctx);
  if (content.actor !== undefined) wire.actor = content.actor;
  if (content.cap !== undefined) wire.cap = content.cap;
  wire.body = content.body;
  return packr.pack(wire);
}

/**
 * Decodes and validates opened sealed content. Throws `EnvelopeDecodeError` for bytes that are not
 * exactly one msgpack map and `EnvelopeFieldError` (fields named `sealed.<name>`) for bad fields;
 * `context` (the outer `id` and `from`) is attached to either.
 *
 * @example
 * ```ts
 * const content = decodeSealedContent(plaintext, { id: env.id, from: env.from });
 * ```
 */
export function decodeSealedContent(bytes: Uint8Array, context: EnvelopeErrorContext = {}): SealedContent {
  const raw = unpackMap(bytes, 'sealed content', context);
  return validateSealedContent(raw, context, mapHeadCount(bytes));
}

/**
 * Encodes a payload for an envelope body with the envelope's msgpack options (plain msgpack, no
 * extension types except the standard timestamp for `Date`; `undefined` becomes nil). Throws
 * `EnvelopeFieldError` for a value msgpack cannot carry (a cycle, an integer beyond 64 bits...).
 *
 * @example
 * ```ts
 * const env = { ...header, body: encodeBody({ title: 'spec' }) };
 * ```
 */
export function encodeBody(value: unknown): Uint8Array {
  try {
    return packr.pack(value === undefined ? null : value);
  } catch (cause) {
    throw new EnvelopeFieldError('body', '"body" expected a value msgpack can encode, got one it cannot', {
      cause,
    });
  }
}

/**
 * Decodes a body payload. Throws `EnvelopeDecodeError` when the bytes are not exactly one msgpack value.
 *
 * @example
 * ```ts
 * const payload = decodeBody(env.body) as { title: string };
 * ```
 */
export function decodeBody(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new EnvelopeDecodeError('body expected msgpack bytes, got nothing');
  }
  let body: unknown;
  try {
    body = packr.unpack(bytes);
  } catch (cause) {
    throw new EnvelopeDecodeError(
      `body expected one well-formed msgpack value, got ${bytes.length} bytes that do not decode`,
      {
        cause,
      },
    );
  }
  // Stored bodies are encoded again (inbox records): one nested too deep would fail a whole commit.
  const problem = valueProblem(body);
  if (problem !== undefined)
    throw new EnvelopeDecodeError(`body${problem.path.slice(1)} expected ${problem.expected}`);
  return body;
}
