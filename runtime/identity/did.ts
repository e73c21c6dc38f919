// DIDs: did:agentnexus:<multikey> derived from an Ed25519 key, parsed strictly, did:key accepted as an alias.
import { AnxError, describeValue } from '../errors.ts';
import { Base58Error, base58Decode, base58Encode } from './base58.ts';

/** A DID string. The runtime's canonical form is `did:agentnexus:z6Mk…`. */
export type Did = string;

/** The method prefix of the runtime's DIDs. */
export const DID_PREFIX = 'did:agentnexus:';
/** The did:key prefix; a did:key of an Ed25519 key names the same key as our DID. */
export const DID_KEY_PREFIX = 'did:key:';
/** Multicodec varint of an Ed25519 public key (0xed), as it prefixes a multikey. */
export const ED25519_PUB_CODEC: Readonly<Uint8Array> = Uint8Array.of(0xed, 0x01);

// 'z' + base58btc of 34 bytes that start with 0xed 0x01 is always 48 characters ("z6Mk" + 44).
const MULTIKEY_LENGTH = 48;
// Longer text is refused before decoding (base58 decoding is quadratic); other multicodecs fit.
const MULTIKEY_MAX_LENGTH = 128;

/** Text that is not a DID the runtime accepts. `field` names the input it came from, when known. */
export class DidError extends AnxError {
  readonly field: string | undefined;

  constructor(message: string, options?: { cause?: unknown; hint?: string; field?: string }) {
    super('ANX_DID_INVALID', message, options);
    this.field = options?.field;
  }
}

/** What `parseDid` found. `did` is always the did:agentnexus form, whichever method came in. */
export interface ParsedDid {
  did: Did;
  /** The method of the input text. */
  method: 'agentnexus' | 'key';
  /** The multibase multikey (`z6Mk…`). */
  multikey: string;
  /** The 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

function subject(field: string | undefined): string {
  return field === undefined ? 'input' : JSON.stringify(field);
}

function fail(field: string | undefined, expected: string, got: string, cause?: unknown): never {
  throw new DidError(`${subject(field)} expected ${expected}, got ${got}`, {
    field,
    cause,
    hint: 'a DID looks like did:agentnexus:z6Mk… (did:key:z6Mk… is accepted too)',
  });
}

/**
 * Encodes an Ed25519 public key as a multikey: 'z' + base58btc(0xed 0x01 || key).
 *
 * @example
 * ```ts
 * multikeyFromPublicKey(publicKey); // 'z6Mk…'
 * ```
 */
export function multikeyFromPublicKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new DidError(`Ed25519 public key expected 32 bytes, got ${describeValue(publicKey)}`);
  }
  const prefixed = new Uint8Array(34);
  prefixed.set(ED25519_PUB_CODEC, 0);
  prefixed.set(publicKey, 2);
  return `z${base58Encode(prefixed)}`;
}

/**
 * The DID of an Ed25519 public key. The DID is derived from the key, never chosen.
 *
 * @example
 * ```ts
 * const did = didFromPublicKey(suite.ed25519PublicKey(seed)); // 'did:agentnexus:z6Mk…'
 * ```
 */
export function didFromPublicKey(publicKey: Uint8Array): Did {
  return DID_PREFIX + multikeyFromPublicKey(publicKey);
}

/**
 * Decodes a multikey to its 32-byte Ed25519 public key, or throws `DidError`.
 *
 * @example
 * ```ts
 * publicKeyOfMultikey('z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK');
 * ```
 */
export function publicKeyOfMultikey(multikey: string, field?: string): Uint8Array {
  if (typeof multikey !== 'string') fail(field, 'a multikey string', describeValue(multikey));
  if (!multikey.startsWith('z')) {
    fail(field, 'a base58btc multikey (multibase prefix "z")', describeValue(multikey));
  }
  // Checked before decoding so that hostile megabyte inputs cost nothing.
  if (multikey.length > MULTIKEY_MAX_LENGTH) {
    fail(
      field,
      `an Ed25519 multikey of ${MULTIKEY_LENGTH} characters ("z6Mk…")`,
      `${multikey.length} characters: ${describeValue(multikey)}`,
    );
  }
  // Text that reads as an Ed25519 multikey but has extra or missing characters would otherwise
  // decode to a meaningless multicodec; say what is actually wrong.
  if (multikey.startsWith('z6Mk') && multikey.length !== MULTIKEY_LENGTH) {
    fail(
      field,
      `an Ed25519 multikey of ${MULTIKEY_LENGTH} characters ("z6Mk…")`,
      `${multikey.length} characters: ${describeValue(multikey)}`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = base58Decode(multikey.slice(1));
  } catch (cause) {
    const detail = cause instanceof Base58Error ? cause.message : 'undecodable text';
    fail(field, 'base58btc after "z"', `${describeValue(multikey)} (${detail})`, cause);
  }
  if (bytes.length < 2) {
    fail(field, 'a multikey of a 32-byte Ed25519 key', `${bytes.length} bytes after decoding`);
  }
  if (bytes[0] !== 0xed || bytes[1] !== 0x01) {
    const codec = Buffer.from(bytes.subarray(0, 2)).toString('hex');
    fail(field, 'an Ed25519 public key multikey (multicodec 0xed01, "z6Mk…")', `multicodec bytes 0x${codec}`);
  }
  if (bytes.length !== 34) {
    fail(field, 'a 32-byte Ed25519 public key', `${Math.max(0, bytes.length - 2)} bytes`);
  }
  return bytes.slice(2);
}

// Every message names DIDs that are checked, turned into subjects or resolved to keys; decoding the
// base58 multikey is the costly part, so valid DIDs are kept by their text. A few thousand cover the
// peers a host talks to. Entries are never handed out: callers get copies of the key bytes.
const PARSED_CACHE_LIMIT = 4096;
const parsedCache = new Map<string, ParsedDid>();

/**
 * Parses a DID strictly: `did:agentnexus:z6Mk…` or its alias `did:key:z6Mk…`; no DID URLs
 * (paths, queries, fragments), no whitespace, nothing else. Throws `DidError` whose message names
 * `field` and says what was expected and what came.
 *
 * @example
 * ```ts
 * const { did, publicKey } = parseDid(input.to, 'to');
 * ```
 */
export function parseDid(text: unknown, field?: string): ParsedDid {
  const parsed = cachedParse(text, field);
  return { ...parsed, publicKey: parsed.publicKey.slice() };
}

/** `parseDid` without the copy: the cached entry itself, never to be handed out. */
function cachedParse(text: unknown, field: string | undefined): ParsedDid {
  if (typeof text !== 'string') fail(field, 'a did:agentnexus DID string', describeValue(text));
  const hit = parsedCache.get(text);
  if (hit !== undefined) return hit;
  let method: ParsedDid['method'];
  let multikey: string;
  if (text.startsWith(DID_PREFIX)) {
    method = 'agentnexus';
    multikey = text.slice(DID_PREFIX.length);
  } else if (text.startsWith(DID_KEY_PREFIX)) {
    method = 'key';
    multikey = text.slice(DID_KEY_PREFIX.length);
  } else {
    fail(field, 'a did:agentnexus DID', describeValue(text));
  }
  const parsed: ParsedDid = {
    did: DID_PREFIX + multikey,
    method,
    multikey,
    publicKey: publicKeyOfMultikey(multikey, field),
  };
  // Dropped wholesale when full, to keep the fast path branch-free.
  if (parsedCache.size >= PARSED_CACHE_LIMIT) parsedCache.clear();
  parsedCache.set(text, parsed);
  return parsed;
}

/**
 * True when `text` is a valid DID. By default both methods count; pass `'agentnexus'` to accept
 * only the runtime's canonical form.
 *
 * @example
 * ```ts
 * if (!isDid(value, 'agentnexus')) reject();
 * ```
 */
export function isDid(text: unknown, method?: ParsedDid['method']): text is Did {
  try {
    const parsed = parseDid(text);
    return method === undefined || parsed.method === method;
  } catch {
    return false;
  }
}

/**
 * The did:agentnexus form of a `did:key:z6Mk…` (or of a did:agentnexus DID, unchanged).
 *
 * @example
 * ```ts
 * toAgentNexusDid('did:key:z6Mk…'); // 'did:agentnexus:z6Mk…'
 * ```
 */
export function toAgentNexusDid(didKey: string, field?: string): Did {
  return parseDid(didKey, field).did;
}

/**
 * The did:key form of a DID, for tools that resolve did:key.
 *
 * @example
 * ```ts
 * toDidKey('did:agentnexus:z6Mk…'); // 'did:key:z6Mk…'
 * ```
 */
export function toDidKey(did: string, field?: string): string {
  return DID_KEY_PREFIX + parseDid(did, field).multikey;
}

/**
 * The Ed25519 public key a DID names (either method), from a small cache on the hot path.
 * Throws `DidError` for anything `parseDid` rejects. The returned bytes are the caller's own copy.
 *
 * @example
 * ```ts
 * suite.verify(publicKeyOfDid(envelope.from, 'from'), signingInput, envelope.sig);
 * ```
 */
export function publicKeyOfDid(did: Did, field?: string): Uint8Array {
  return cachedParse(did, field).publicKey.slice();
}
