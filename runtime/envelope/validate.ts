// Field checks of an envelope at the edge: every wire field's type and shape, unknown fields refused.
import { describeValue } from '../errors.ts';
import { DID_PREFIX, publicKeyOfDid } from '../identity/did.ts';
// Lone surrogates would be replaced during UTF-8 encoding, so two different strings could sign alike.
import { LONE_SURROGATE, valueProblem } from '../value-checks.ts';
import {
  BATCH_TYPE,
  CONTEXT_KEYS,
  ENVELOPE_VERSION,
  type Envelope,
  SEALED_ENC,
  SEALED_TYPE,
  type SealedContent,
} from './envelope.ts';
import { EnvelopeDecodeError, EnvelopeFieldError, EnvelopeVersionError } from './errors.ts';

/** Limits on header fields; see docs/protocol.md, "Fields". */
export const FIELD_LIMITS = {
  idMin: 16,
  idMax: 64,
  typeMax: 128,
  addressMax: 256,
  ctxValueMax: 256,
  capStringMax: 1024,
  capBytesMax: 65536,
  fromMax: 256,
} as const;

const ID_RE = /^[0-9A-Za-z_-]{16,64}$/;
const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
// `kind/name`: the kind says which actor family routes it (enclave, run, task, inbox...).
const ADDRESS_RE = /^[a-z][a-z0-9_-]{0,31}\/[A-Za-z0-9._:~@+=/-]{1,223}$/;
const MAX_SAFE_TS = Number.MAX_SAFE_INTEGER;

const KNOWN_FIELDS = new Set([
  'v',
  'id',
  'type',
  'from',
  'to',
  'ts',
  'exp',
  'thread',
  'reply',
  'ctx',
  'actor',
  'cap',
  'enc',
  'epk',
  'nonce',
  'body',
  'sig',
]);
// The fields a sealed envelope carries inside its ciphertext rather than in clear.
const SEALED_CONTENT_FIELDS = new Set(['type', 'thread', 'reply', 'ctx', 'actor', 'cap', 'body']);
const KNOWN_CTX = new Set<string>(CONTEXT_KEYS);
const KNOWN_DIDS_LIMIT = 4096;
const knownDids = new Set<string>();

// Sealed content was confidential: errors about it name the type of a value, never the value.
function show(value: unknown, prefix: string): string {
  return prefix === '' ? describeValue(value) : describeType(value);
}

// Binary fields and the body may be secret or large: name their type, never their content.
function describeType(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * True for a canonical `did:agentnexus:z6Mk…` DID whose key decodes. The did:key alias is not
 * accepted on the wire: one spelling per sender keeps dedupe by (`from`, `id`) sound.
 */
export function isWireDid(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  if (knownDids.has(text)) return true;
  if (!text.startsWith(DID_PREFIX) || text.length > 128) return false;
  try {
    publicKeyOfDid(text);
  } catch {
    return false;
  }
  // Peers repeat: skip the key decoding for DIDs already seen well-formed (dropped wholesale when full).
  if (knownDids.size >= KNOWN_DIDS_LIMIT) knownDids.clear();
  knownDids.add(text);
  return true;
}

/** True for an actor address such as `enclave/abc` (a kind, a slash, a name). */
export function isActorAddress(text: unknown): text is string {
  return typeof text === 'string' && text.length <= FIELD_LIMITS.addressMax && ADDRESS_RE.test(text);
}

/** True for a well-formed message id: 16 to 64 characters of `[0-9A-Za-z_-]`. */
export function isEnvelopeId(text: unknown): text is string {
  return typeof text === 'string' && ID_RE.test(text);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isTimestamp(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_SAFE_TS;
}

type ErrorContext = { id?: string; from?: string };

function fail(context: ErrorContext, field: string, expected: string, got: string): never {
  throw new EnvelopeFieldError(field, `"${field}" expected ${expected}, got ${got}`, context);
}

/**
 * Checks a decoded msgpack map field by field and returns it typed as an `Envelope` (the same
 * object, not a copy). Throws `EnvelopeVersionError` when `v` is not 1, and `EnvelopeFieldError`
 * for a missing, wrongly typed, malformed or unknown field; once `id` and `from` are read they ride
 * along on later errors so the event can name them. A sealed envelope (`enc` set) must have the
 * outer `type` `SEALED_TYPE` and none of the fields that travel inside its ciphertext.
 * `wireEntries`, the entry count of the map header on the wire, lets repeated keys be refused
 * (`EnvelopeDecodeError`).
 *
 * @example
 * ```ts
 * const env = validateEnvelope(unpacked);
 * ```
 */
export function validateEnvelope(raw: Record<string, unknown>, wireEntries?: number): Envelope {
  if (raw.v !== ENVELOPE_VERSION) {
    throw new EnvelopeVersionError(
      `"v" expected ${ENVELOPE_VERSION}, got ${typeof raw.v === 'number' ? raw.v : describeType(raw.v)}`,
      { hint: 'this host speaks envelope version 1 only' },
    );
  }
  // Filled in as `id` and `from` pass, so later errors can name them. Module-level helpers (no
  // closures) keep this hot path free of per-call allocations.
  const context: ErrorContext = {};

  const id = raw.id;
  if (!isEnvelopeId(id))
    fail(context, 'id', 'a message id of 16 to 64 characters [0-9A-Za-z_-]', describeValue(id));
  context.id = id as string;

  const from = raw.from;
  if (typeof from !== 'string' || from.length === 0 || from.length > FIELD_LIMITS.fromMax) {
    fail(context, 'from', 'a DID string', describeValue(from));
  }
  // Only a well-formed string is echoed into error events; the key itself is checked with the signature.
  if (!LONE_SURROGATE.test(from as string)) context.from = from as string;

  let present = 5; // v, id, from, type and body (each checked or failed below)
  const sealed = raw.enc !== undefined;
  if (sealed && raw.enc !== SEALED_ENC) fail(context, 'enc', `"${SEALED_ENC}"`, describeValue(raw.enc));
  checkType(raw.type, context, 'type');
  if (sealed && raw.type !== SEALED_TYPE) {
    fail(
      context,
      'type',
      `"${SEALED_TYPE}" on a sealed envelope (the real type is sealed inside)`,
      describeValue(raw.type),
    );
  }
  if (!sealed && raw.type === SEALED_TYPE) {
    fail(
      context,
      'type',
      `a message type other than "${SEALED_TYPE}" on a plain envelope`,
      describeValue(raw.type),
    );
  }

  const to = raw.to;
  if (!isActorAddress(to) && !isWireDid(to)) {
    fail(context, 'to', 'a DID or actor address', describeValue(to));
  }
  present++;

  if (!isTimestamp(raw.ts))
    fail(context, 'ts', 'milliseconds since the epoch (a non-negative integer)', describeValue(raw.ts));
  present++;

  if (raw.exp !== undefined) {
    if (!isTimestamp(raw.exp)) {
      fail(context, 'exp', 'milliseconds since the epoch (a non-negative integer)', describeValue(raw.exp));
    }
    present++;
  }

  if (sealed) {
    for (const field of ['thread', 'reply', 'ctx', 'actor', 'cap'] as const) {
      if (raw[field] !== undefined) {
        fail(
          context,
          field,
          'no value in clear on a sealed envelope (it travels inside the ciphertext)',
          'a value',
        );
      }
    }
    if (!(raw.epk instanceof Uint8Array) || raw.epk.length !== 32) {
      fail(context, 'epk', 'a 32-byte X25519 public key', describeType(raw.epk));
    }
    if (!(raw.nonce instanceof Uint8Array) || raw.nonce.length !== 12) {
      fail(context, 'nonce', 'a 12-byte nonce', describeType(raw.nonce));
    }
    present += 3;
  } else {
    present += checkRouting(raw, context, '');
    if (raw.epk !== undefined || raw.nonce !== undefined) {
      fail(context, raw.epk !== undefined ? 'epk' : 'nonce', `no value without "enc"`, 'a value');
    }
  }

  const body = raw.body;
  if (!(body instanceof Uint8Array)) fail(context, 'body', 'bytes (msgpack bin)', describeType(body));
  if (sealed && (body as Uint8Array).length < 16) {
    fail(context, 'body', 'sealed ciphertext of at least 16 bytes', describeType(body));
  }

  if (raw.sig !== undefined) {
    if (!(raw.sig instanceof Uint8Array) || raw.sig.length !== 64) {
      fail(context, 'sig', 'a 64-byte Ed25519 signature', describeType(raw.sig));
    }
    present++;
  }

  // Counting beats walking the keys on the common path; walk only to name the culprit.
  const keys = Object.keys(raw);
  // msgpackr keeps the last of repeated keys silently; another decoder might keep the first.
  if (wireEntries !== undefined && wireEntries !== keys.length) {
    throw new EnvelopeDecodeError('envelope expected a map with distinct keys, got a repeated key', context);
  }
  if (keys.length !== present) findStray(raw, keys, KNOWN_FIELDS, context, '', 'envelope v1');
  return raw as unknown as Envelope;
}

/**
 * Checks the content map a sealed envelope carries inside its ciphertext: `type` and `body`
 * required, `thread`, `reply`, `ctx`, `actor`, `cap` optional, nothing else. Field errors name the
 * field as `sealed.<name>`; `context` (the outer `id` and `from`) rides along.
 *
 * @example
 * ```ts
 * const content = validateSealedContent(unpacked, { id: env.id, from: env.from }, entries);
 * ```
 */
export function validateSealedContent(
  raw: Record<string, unknown>,
  context: ErrorContext,
  wireEntries?: number,
): SealedContent {
  checkType(raw.type, context, 'sealed.type');
  if (raw.type === SEALED_TYPE) fail(context, 'sealed.type', 'a message type', describeType(raw.type));
  const present = 2 + checkRouting(raw, context, 'sealed.');
  if (!(raw.body instanceof Uint8Array))
    fail(context, 'sealed.body', 'bytes (msgpack bin)', describeType(raw.body));
  const keys = Object.keys(raw);
  if (wireEntries !== undefined && wireEntries !== keys.length) {
    throw new EnvelopeDecodeError(
      'sealed content expected a map with distinct keys, got a repeated key',
      context,
    );
  }
  if (keys.length !== present)
    findStray(raw, keys, SEALED_CONTENT_FIELDS, context, 'sealed.', 'sealed content');
  return raw as unknown as SealedContent;
}

function checkType(type: unknown, context: ErrorContext, field: string): void {
  if (typeof type !== 'string' || !TYPE_RE.test(type)) {
    fail(
      context,
      field,
      'a message type of 1 to 128 characters [A-Za-z0-9._:/-]',
      field.startsWith('sealed.') ? describeType(type) : describeValue(type),
    );
  }
  if (type === BATCH_TYPE)
    fail(
      context,
      field,
      `a message type other than "${BATCH_TYPE}" (the kernel's own event)`,
      `"${BATCH_TYPE}"`,
    );
}

// The optional fields that say where a message belongs and who may send it; returns how many are present.
function checkRouting(raw: Record<string, unknown>, context: ErrorContext, prefix: string): number {
  let present = 0;
  if (raw.thread !== undefined) {
    if (!isEnvelopeId(raw.thread)) fail(context, `${prefix}thread`, 'a message id', show(raw.thread, prefix));
    present++;
  }
  if (raw.reply !== undefined) {
    if (!isEnvelopeId(raw.reply)) fail(context, `${prefix}reply`, 'a message id', show(raw.reply, prefix));
    present++;
  }
  if (raw.ctx !== undefined) {
    validateContext(raw.ctx, context, prefix);
    present++;
  }
  if (raw.actor !== undefined) {
    if (!isWireDid(raw.actor))
      fail(context, `${prefix}actor`, 'a did:agentnexus DID', show(raw.actor, prefix));
    present++;
  }
  if (raw.cap !== undefined) {
    const cap = raw.cap;
    const field = `${prefix}cap`;
    if (typeof cap === 'string') {
      if (cap.length === 0 || cap.length > FIELD_LIMITS.capStringMax || LONE_SURROGATE.test(cap)) {
        fail(
          context,
          field,
          `a token reference of 1 to ${FIELD_LIMITS.capStringMax} characters`,
          `${cap.length} characters`,
        );
      }
    } else if (cap instanceof Uint8Array) {
      if (cap.length === 0 || cap.length > FIELD_LIMITS.capBytesMax) {
        fail(context, field, `a token of 1 to ${FIELD_LIMITS.capBytesMax} bytes`, describeType(cap));
      }
    } else {
      fail(context, field, 'a token (bytes) or token reference (string)', describeType(cap));
    }
    present++;
  }
  return present;
}

// Runs only when the key count is off: names an unknown key, or a known key holding `undefined`.
function findStray(
  raw: Record<string, unknown>,
  keys: string[],
  known: Set<string>,
  context: ErrorContext,
  prefix: string,
  what: string,
): never {
  for (const key of keys) {
    if (!known.has(key)) {
      fail(
        context,
        `${prefix}${JSON.stringify(key).slice(1, -1).slice(0, 64)}`,
        `no such field in ${what}`,
        'a value',
      );
    }
    if (raw[key] === undefined) fail(context, `${prefix}${key}`, 'a value or no key at all', 'undefined');
  }
  fail(
    context,
    prefix === '' ? 'envelope' : 'sealed',
    'each field once',
    'a field count that does not add up',
  );
}

/**
 * Checks the kernel form of an envelope that a relay session carries (its body already a value, no
 * signature: the session authenticated the peer) with the wire rules for every header field: `id`,
 * `type` (the kernel's batch event refused), `ts` and `exp`, and `thread`, `reply`, `ctx`, `actor`,
 * `cap` when present. `from` and `to` are the session's to check. Fields it does not know are not
 * refused here; the caller keeps only the kernel's. Throws `EnvelopeFieldError` naming the field.
 *
 * @example
 * ```ts
 * validateSessionEnvelope(packr.unpack(plaintext));
 * ```
 */
export function validateSessionEnvelope(raw: Record<string, unknown>): void {
  const context: ErrorContext = {};
  if (!isEnvelopeId(raw.id))
    fail(context, 'id', 'a message id of 16 to 64 characters [0-9A-Za-z_-]', describeValue(raw.id));
  context.id = raw.id as string;
  checkType(raw.type, context, 'type');
  if (!isTimestamp(raw.ts))
    fail(context, 'ts', 'milliseconds since the epoch (a non-negative integer)', describeValue(raw.ts));
  if (raw.exp !== undefined && !isTimestamp(raw.exp))
    fail(context, 'exp', 'milliseconds since the epoch (a non-negative integer)', describeValue(raw.exp));
  checkRouting(raw, context, '');
  // The body is stored (and encoded again) as it came: nesting deep enough to overflow an encoder
  // would fail the whole group commit it joins.
  const problem = valueProblem(raw.body);
  if (problem !== undefined)
    fail(context, `body${problem.path.slice(1)}`, problem.expected, 'deeper nesting');
}

function validateContext(ctx: unknown, context: ErrorContext, prefix: string): void {
  if (!isPlainObject(ctx)) fail(context, `${prefix}ctx`, 'a map of context strings', describeType(ctx));
  const entries = ctx as Record<string, unknown>;
  let count = 0;
  for (const key of Object.keys(entries)) {
    if (!KNOWN_CTX.has(key)) {
      fail(
        context,
        `${prefix}ctx.${JSON.stringify(key).slice(1, -1).slice(0, 64)}`,
        `one of ${CONTEXT_KEYS.join(', ')}`,
        'a value',
      );
    }
    const value = entries[key];
    if (
      typeof value !== 'string' ||
      value.length === 0 ||
      value.length > FIELD_LIMITS.ctxValueMax ||
      LONE_SURROGATE.test(value)
    ) {
      fail(
        context,
        `${prefix}ctx.${key}`,
        `a string of 1 to ${FIELD_LIMITS.ctxValueMax} characters`,
        show(value, prefix),
      );
    }
    count++;
  }
  if (count === 0)
    fail(context, `${prefix}ctx`, 'at least one context key (leave ctx out when empty)', 'an empty map');
}
