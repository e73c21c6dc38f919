// The node:crypto suite: the fast default on Node, with imported key objects cached per key.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  randomFillSync,
} from 'node:crypto';
import { acceptableEd25519Public } from './ed25519-checks.ts';
import { CryptoError, DecryptError, expectBytes, expectHkdfLength, expectRandomLength } from './errors.ts';
import type { CryptoSuite } from './suite.ts';

// DER headers that turn 32 raw private key bytes into PKCS#8 documents (RFC 8410): the fallback
// import, should a runtime refuse the JWK form (see `importPrivate`).
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** Options of `createNodeSuite`. */
export interface NodeSuiteOptions {
  /** How many imported keys of each kind to keep (least recently used are dropped). Default 1024. */
  cacheSize?: number;
}

/** A bounded least-recently-used map: a Map keeps insertion order, so re-inserting on a hit is enough. */
class Lru<V> {
  readonly #limit: number;
  readonly #map = new Map<string, V>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  get(id: string): V | undefined {
    const value = this.#map.get(id);
    if (value !== undefined) {
      this.#map.delete(id);
      this.#map.set(id, value);
    }
    return value;
  }

  set(id: string, value: V): void {
    if (this.#map.size >= this.#limit) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined) this.#map.delete(oldest);
    }
    this.#map.set(id, value);
  }
}

interface PrivateEntry {
  key: KeyObject;
  publicKey: Uint8Array | undefined;
}

function idOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** A plain Uint8Array over a node Buffer; copies only when the Buffer is a slice of a shared pool. */
function plain(buf: Buffer): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) return new Uint8Array(buf.buffer);
  return new Uint8Array(buf);
}

function der(prefix: Buffer, raw: Uint8Array): Buffer {
  return Buffer.concat([prefix, raw]);
}

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

type Curve = 'Ed25519' | 'X25519';

/**
 * Raw 32-byte keys are imported as JWK: for an OKP JWK node:crypto hands the key bytes straight to
 * OpenSSL's raw-key constructor, about a tenth of the cost of decoding a PKCS#8 or SPKI document
 * (Node 20 with OpenSSL 3: ~60 µs against ~500–700 µs for a private key, ~12 µs against ~130 µs
 * for a public one). That matters wherever keys are new: every seal and handshake imports an
 * ephemeral X25519 key, every first message from a DID imports its public key.
 */
function importPrivate(crv: Curve, raw: Uint8Array, pkcs8Prefix: Buffer): KeyObject {
  try {
    // A private OKP JWK is built from "d" alone (its public half is derived); "x" must be a string.
    return createPrivateKey({ key: { kty: 'OKP', crv, d: b64u(raw), x: '' }, format: 'jwk' });
  } catch {
    return createPrivateKey({ key: der(pkcs8Prefix, raw), format: 'der', type: 'pkcs8' });
  }
}

function importPublic(crv: Curve, raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv, x: b64u(raw) }, format: 'jwk' });
}

/** The raw public key bytes of a private key object. */
function publicBytes(key: KeyObject): Uint8Array {
  const { x } = createPublicKey(key).export({ format: 'jwk' });
  return plain(Buffer.from(x as string, 'base64url'));
}

function hkdfByHmac(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const prk = createHmac('sha256', salt.length === 0 ? new Uint8Array(32) : salt)
    .update(ikm)
    .digest();
  const out = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  for (let offset = 0, counter = 1; offset < length; counter++) {
    previous = createHmac('sha256', prk)
      .update(previous)
      .update(info)
      .update(Uint8Array.of(counter))
      .digest();
    out.set(previous.subarray(0, Math.min(32, length - offset)), offset);
    offset += 32;
  }
  return out;
}

/**
 * Builds a `CryptoSuite` on node:crypto. Each suite keeps its own bounded caches of imported
 * Ed25519 and X25519 key objects, keyed by the raw key bytes, so repeated use of a key costs no import.
 *
 * @example
 * ```ts
 * const suite = createNodeSuite();
 * const sig = suite.sign(seed, message);
 * suite.verify(suite.ed25519PublicKey(seed), message, sig); // true
 * ```
 */
export function createNodeSuite(options: NodeSuiteOptions = {}): CryptoSuite {
  const limit = options.cacheSize ?? 1024;
  const edPrivate = new Lru<PrivateEntry>(limit);
  // `null` remembers a key that is malformed, non-canonical or of small order.
  const edPublic = new Lru<KeyObject | null>(limit);
  const xPrivate = new Lru<PrivateEntry>(limit);
  const xPublic = new Lru<KeyObject>(limit);

  function edPrivateEntry(seed: Uint8Array): PrivateEntry {
    expectBytes(seed, 'Ed25519 seed', 32);
    const id = idOf(seed);
    let entry = edPrivate.get(id);
    if (entry === undefined) {
      entry = {
        key: importPrivate('Ed25519', seed, ED25519_PKCS8),
        publicKey: undefined,
      };
      edPrivate.set(id, entry);
    }
    return entry;
  }

  function edPublicKey(publicKey: Uint8Array): KeyObject | null {
    const id = idOf(publicKey);
    let key = edPublic.get(id);
    if (key === undefined) {
      key = null;
      if (acceptableEd25519Public(publicKey)) {
        try {
          key = importPublic('Ed25519', publicKey);
        } catch {
          key = null;
        }
      }
      edPublic.set(id, key);
    }
    return key;
  }

  // An ephemeral X25519 key (one seal, one side of a handshake) is used twice, one use right after
  // the other: it lives in this one slot rather than the cache, so no ephemeral secret outlives the
  // next one. A key used a third time (a DID's key-agreement key) moves into the cache.
  let recentX: { id: string; entry: PrivateEntry; uses: number } | undefined;

  function xPrivateEntry(privateKey: Uint8Array): PrivateEntry {
    expectBytes(privateKey, 'X25519 private key', 32);
    const id = idOf(privateKey);
    const cached = xPrivate.get(id);
    if (cached !== undefined) return cached;
    if (recentX?.id === id) {
      const { entry } = recentX;
      if (++recentX.uses >= 3) {
        xPrivate.set(id, entry);
        recentX = undefined;
      }
      return entry;
    }
    const entry: PrivateEntry = {
      key: importPrivate('X25519', privateKey, X25519_PKCS8),
      publicKey: undefined,
    };
    recentX = { id, entry, uses: 1 };
    return entry;
  }

  function xPublicKey(publicKey: Uint8Array): KeyObject {
    expectBytes(publicKey, 'X25519 public key', 32);
    const id = idOf(publicKey);
    let key = xPublic.get(id);
    if (key === undefined) {
      try {
        key = importPublic('X25519', publicKey);
      } catch (cause) {
        throw new CryptoError(
          'X25519 public key expected 32 importable bytes, got bytes node:crypto refused',
          {
            cause,
          },
        );
      }
      xPublic.set(id, key);
    }
    return key;
  }

  return {
    name: 'node',

    ed25519PublicKey(seed) {
      const entry = edPrivateEntry(seed);
      entry.publicKey ??= publicBytes(entry.key);
      return entry.publicKey.slice();
    },

    sign(seed, message) {
      const entry = edPrivateEntry(seed);
      expectBytes(message, 'message');
      return plain(nodeSign(null, message, entry.key));
    },

    verify(publicKey, message, signature) {
      try {
        if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
        if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
        if (!(message instanceof Uint8Array)) return false;
        const key = edPublicKey(publicKey);
        return key !== null && nodeVerify(null, message, key, signature);
      } catch {
        return false;
      }
    },

    x25519PublicKey(privateKey) {
      const entry = xPrivateEntry(privateKey);
      entry.publicKey ??= publicBytes(entry.key);
      return entry.publicKey.slice();
    },

    x25519(privateKey, publicKey) {
      const own = xPrivateEntry(privateKey).key;
      const peer = xPublicKey(publicKey);
      let shared: Buffer;
      try {
        shared = diffieHellman({ privateKey: own, publicKey: peer });
      } catch (cause) {
        // OpenSSL refuses to finish when the result is all zero, i.e. the peer key has low order.
        throw new CryptoError('X25519 expected a peer public key of large order, got a low-order point', {
          cause,
        });
      }
      if (shared.every((b) => b === 0)) {
        throw new CryptoError('X25519 expected a peer public key of large order, got a low-order point');
      }
      return plain(shared);
    },

    aesGcmEncrypt(key, nonce, plaintext, aad) {
      expectBytes(key, 'AES-256-GCM key', 32);
      expectBytes(nonce, 'AES-256-GCM nonce', 12);
      expectBytes(plaintext, 'plaintext');
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
      if (aad !== undefined) cipher.setAAD(expectBytes(aad, 'associated data'));
      const out = new Uint8Array(plaintext.length + 16);
      const body = cipher.update(plaintext);
      out.set(body, 0);
      const tail = cipher.final();
      out.set(tail, body.length);
      out.set(cipher.getAuthTag(), body.length + tail.length);
      return out;
    },

    aesGcmDecrypt(key, nonce, sealed, aad) {
      expectBytes(key, 'AES-256-GCM key', 32);
      expectBytes(nonce, 'AES-256-GCM nonce', 12);
      expectBytes(sealed, 'sealed ciphertext');
      if (sealed.length < 16) {
        throw new DecryptError(`sealed ciphertext expected at least 16 bytes, got ${sealed.length} bytes`);
      }
      const split = sealed.length - 16;
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
      decipher.setAuthTag(sealed.subarray(split));
      if (aad !== undefined) decipher.setAAD(expectBytes(aad, 'associated data'));
      const out = new Uint8Array(split);
      try {
        const body = decipher.update(sealed.subarray(0, split));
        out.set(body, 0);
        out.set(decipher.final(), body.length);
      } catch (cause) {
        out.fill(0);
        throw new DecryptError(undefined, { cause });
      }
      return out;
    },

    hkdfSha256(ikm, salt, info, length) {
      expectBytes(ikm, 'HKDF input key material');
      expectBytes(salt, 'HKDF salt');
      expectBytes(info, 'HKDF info');
      expectHkdfLength(length);
      if (length === 0) return new Uint8Array(0);
      // node:crypto caps info at 1024 bytes; RFC 5869 does not, and noble does not.
      if (info.length > 1024) return hkdfByHmac(ikm, salt, info, length);
      return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
    },

    sha256(data) {
      expectBytes(data, 'SHA-256 input');
      return plain(createHash('sha256').update(data).digest());
    },

    hmacSha256(key, data) {
      expectBytes(key, 'HMAC key');
      expectBytes(data, 'HMAC input');
      return plain(createHmac('sha256', key).update(data).digest());
    },

    randomBytes(length) {
      return randomFillSync(new Uint8Array(expectRandomLength(length)));
    },
  };
}

/** The shared node:crypto suite (one set of key caches for the whole process). */
export const nodeSuite: CryptoSuite = createNodeSuite();
