// The host keystore: Ed25519 seeds kept in LMDB, sealed with AES-256-GCM under the host key, never handed out.
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import type { Database } from 'lmdb';
import { ed25519SeedToX25519Private } from '../crypto/convert.ts';
import { defaultSuite } from '../crypto/index.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { AnxError, describeValue } from '../errors.ts';
import { DID_KEY_PREFIX, DID_PREFIX, type Did, didFromPublicKey } from './did.ts';

/** Base of the keystore's errors; its own code `ANX_KEYSTORE_INPUT` / `ANX_KEYSTORE_CORRUPT` otherwise. */
export class KeystoreError extends AnxError {}

/** The host key file is unsafe (`ANX_HOST_KEY_INSECURE`) or unusable (`ANX_HOST_KEY_INVALID`). */
export class HostKeyError extends KeystoreError {}

/** No key for this DID in the keystore (`ANX_KEY_NOT_FOUND`). */
export class KeyNotFoundError extends KeystoreError {
  constructor(did: string) {
    super('ANX_KEY_NOT_FOUND', `keystore expected a key for ${JSON.stringify(did)}, got none`, {
      hint: 'list the keys held on this host with the keystore list command',
    });
  }
}

/** The keystore already holds a key for this DID (`ANX_KEY_EXISTS`). */
export class KeyExistsError extends KeystoreError {
  constructor(did: string) {
    super('ANX_KEY_EXISTS', `keystore expected a new key, got one it already holds: ${JSON.stringify(did)}`);
  }
}

/** A sealed seed did not open: the host key is not the one it was sealed with, or the entry was altered. */
export class KeystoreLockedError extends KeystoreError {
  constructor(did: string, cause?: unknown) {
    super(
      'ANX_KEYSTORE_LOCKED',
      `keystore expected the entry of ${JSON.stringify(did)} to open with this host key, but it did not (wrong host key or altered entry)`,
      { cause, hint: 'start the host with the host key file this keystore was created with' },
    );
  }
}

/** What the keystore tells about a key: public facts only. */
export interface KeyRecord {
  readonly did: Did;
  readonly name: string | null;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/** Options of `Keystore`. */
export interface KeystoreOptions {
  /** Crypto suite for signing and sealing; `defaultSuite()` when omitted. */
  suite?: CryptoSuite;
  /** Clock for `createdAt`; injectable so tests and replays are deterministic. */
  now?: () => number;
  /** How many decrypted seeds to keep in memory for the signing path. Default 1024. */
  cacheSize?: number;
}

// Stored value: only base64 text and numbers, so it survives the msgpack or json value encodings.
interface StoredEntry {
  v: 1;
  name: string | null;
  createdAt: number;
  nonce: string;
  sealed: string;
}

const SEAL_INFO = new TextEncoder().encode('anx/keystore/seed-seal/v1');
const HOST_SIGN_INFO = new TextEncoder().encode('anx/host/presence-sign/v1');
const NAME_MAX = 200;
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** The storage key of a DID: its did:agentnexus form (a did:key shares the multikey, so a prefix swap does). */
function canonical(did: Did): Did {
  return did.startsWith(DID_KEY_PREFIX) ? DID_PREFIX + did.slice(DID_KEY_PREFIX.length) : did;
}

function isStoredEntry(value: unknown): value is StoredEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    entry['v'] === 1 &&
    (entry['name'] === null || typeof entry['name'] === 'string') &&
    typeof entry['createdAt'] === 'number' &&
    typeof entry['nonce'] === 'string' &&
    typeof entry['sealed'] === 'string'
  );
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

function checkName(name: unknown): string | null {
  if (name === undefined || name === null) return null;
  if (typeof name !== 'string' || name.length === 0 || name.length > NAME_MAX) {
    throw new KeystoreError(
      'ANX_KEYSTORE_INPUT',
      `"name" expected a string of 1 to ${NAME_MAX} characters, got ${describeValue(name)}`,
    );
  }
  return name;
}

function readHostKey(file: string): Uint8Array {
  const stat = statSync(file);
  if (!stat.isFile()) {
    throw new HostKeyError(
      'ANX_HOST_KEY_INVALID',
      `host key expected a regular file at ${file}, got something else`,
    );
  }
  // Windows has no POSIX modes to check.
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw new HostKeyError(
      'ANX_HOST_KEY_INSECURE',
      `host key file ${file} expected mode 0600 (owner only), got mode ${mode}: others may read it`,
      { hint: `chmod 600 ${file}` },
    );
  }
  const content = readFileSync(file);
  const key = new Uint8Array(content);
  content.fill(0);
  if (key.length !== 32) {
    throw new HostKeyError(
      'ANX_HOST_KEY_INVALID',
      `host key file ${file} expected 32 bytes, got ${key.length} bytes`,
      {
        hint: 'restore the original host key file; without it the keystore cannot be opened',
      },
    );
  }
  return key;
}

function createHostKey(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
  // 'wx' refuses to overwrite: two hosts starting at once must not replace each other's key.
  const fd = openSync(file, 'wx', 0o600);
  try {
    if (writeSync(fd, key) !== key.length) {
      throw new HostKeyError(
        'ANX_HOST_KEY_INVALID',
        `host key file ${file} expected 32 bytes written, got fewer`,
      );
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
    key.fill(0);
  }
  chmodSync(file, 0o600);
}

/**
 * Private keys of the DIDs this host holds. Seeds are sealed with AES-256-GCM (random nonce, the
 * DID as associated data) under a key derived from the host key; records, errors, `toJSON` and
 * `util.inspect` carry public facts only. The caller opens the LMDB database (msgpack or json values)
 * and owns its life.
 *
 * @example
 * ```ts
 * const root = open({ path: dataDir });
 * const keys = new Keystore(root.openDB({ name: 'keystore' }), Keystore.loadOrCreateHostKey(hostKeyFile));
 * const { did } = await keys.create({ name: 'alice' });
 * const sig = keys.sign(did, message);
 * ```
 */
export class Keystore {
  readonly #db: Database;
  readonly #sealKey: Uint8Array;
  readonly #hostSignSeed: Uint8Array;
  readonly #suite: CryptoSuite;
  readonly #now: () => number;
  readonly #cacheSize: number;
  readonly #seeds = new Map<Did, Uint8Array>();
  /** DIDs found held (no key material): `has` is asked for every message sent, reading LMDB each time. */
  readonly #held = new Set<Did>();

  constructor(db: Database, hostKey: Uint8Array, options: KeystoreOptions = {}) {
    if (!(hostKey instanceof Uint8Array) || hostKey.length !== 32) {
      throw new HostKeyError(
        'ANX_HOST_KEY_INVALID',
        `host key expected 32 bytes, got ${describeValue(hostKey)}`,
      );
    }
    this.#db = db;
    this.#suite = options.suite ?? defaultSuite();
    this.#now = options.now ?? Date.now;
    this.#cacheSize = options.cacheSize ?? 1024;
    // A derived key, so the host key can serve other purposes later without key reuse across them.
    this.#sealKey = this.#suite.hkdfSha256(hostKey, new Uint8Array(0), SEAL_INFO, 32);
    this.#hostSignSeed = this.#suite.hkdfSha256(hostKey, new Uint8Array(0), HOST_SIGN_INFO, 32);
  }

  /**
   * The host's own Ed25519 public key (derived from the host key; stable across restarts). It signs
   * what the host says as a whole, such as its presence heartbeats; its seed never leaves the keystore.
   */
  hostPublicKey(): Uint8Array {
    return this.#suite.ed25519PublicKey(this.#hostSignSeed);
  }

  /** Signs `message` with the host's own key (see `hostPublicKey`). */
  hostSign(message: Uint8Array): Uint8Array {
    return this.#suite.sign(this.#hostSignSeed, message);
  }

  /**
   * Reads the 32-byte host key from `file`, or creates it (mode 0600, parent directories 0700)
   * when it does not exist. Refuses a file that group or others may read (`chmod 600` fixes it)
   * and a file of the wrong size.
   *
   * @example
   * ```ts
   * const hostKey = Keystore.loadOrCreateHostKey(join(dataDir, 'host.key'));
   * ```
   */
  static loadOrCreateHostKey(file: string): Uint8Array {
    try {
      return readHostKey(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      createHostKey(file);
    } catch (err) {
      // Another process created it between our read and our create: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    return readHostKey(file);
  }

  /**
   * Generates a new key and stores it; resolves once the entry is committed.
   *
   * @example
   * ```ts
   * const { did } = await keystore.create({ name: 'reviewer' });
   * ```
   */
  async create(options: { name?: string } = {}): Promise<KeyRecord> {
    const seed = this.#suite.randomBytes(32);
    try {
      return await this.import(seed, options.name);
    } finally {
      seed.fill(0);
    }
  }

  /**
   * Stores an existing 32-byte seed (the seed is copied, never kept by reference). Throws
   * `KeyExistsError` when the DID is already held.
   *
   * @example
   * ```ts
   * const record = await keystore.import(seed, 'restored');
   * ```
   */
  async import(seed: Uint8Array, name?: string): Promise<KeyRecord> {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new KeystoreError('ANX_KEYSTORE_INPUT', `seed expected 32 bytes, got ${describeValue(seed)}`);
    }
    const checkedName = checkName(name);
    const did = didFromPublicKey(this.#suite.ed25519PublicKey(seed));
    if (this.#db.doesExist(did)) throw new KeyExistsError(did);
    const nonce = this.#suite.randomBytes(12);
    const sealed = this.#suite.aesGcmEncrypt(this.#sealKey, nonce, seed, new TextEncoder().encode(did));
    const entry: StoredEntry = {
      v: 1,
      name: checkedName,
      createdAt: this.#now(),
      nonce: base64(nonce),
      sealed: base64(sealed),
    };
    await this.#db.put(did, entry);
    return { did, name: entry.name, createdAt: entry.createdAt };
  }

  /** Public records of every held key, in DID order. DIDs are always in their did:agentnexus form. */
  list(): KeyRecord[] {
    const records: KeyRecord[] = [];
    for (const { key, value } of this.#db.getRange()) {
      if (typeof key === 'string' && key.startsWith(DID_PREFIX) && isStoredEntry(value)) {
        records.push({ did: key, name: value.name, createdAt: value.createdAt });
      }
    }
    return records;
  }

  /** The public record of `did` (either DID form), or `undefined` when this host does not hold it. */
  get(did: Did): KeyRecord | undefined {
    if (typeof did !== 'string') return undefined;
    const key = canonical(did);
    const entry = this.#entry(key);
    return entry === undefined ? undefined : { did: key, name: entry.name, createdAt: entry.createdAt };
  }

  /** True when this host holds the key of `did` (either DID form). */
  has(did: Did): boolean {
    if (typeof did !== 'string') return false;
    const key = canonical(did);
    if (this.#held.has(key)) return true;
    if (this.#entry(key) === undefined) return false;
    this.#held.add(key);
    return true;
  }

  /**
   * Signs `message` with the key of `did` (Ed25519; either DID form). Throws `KeyNotFoundError` or
   * `KeystoreLockedError`.
   *
   * @example
   * ```ts
   * envelope.sig = keystore.sign(envelope.from, signingInput);
   * ```
   */
  sign(did: Did, message: Uint8Array): Uint8Array {
    return this.#suite.sign(this.#seed(did), message);
  }

  /**
   * The X25519 private key of `did` (derived from its Ed25519 seed), for key agreement. The caller
   * owns the returned copy and should zero it when done; prefer `x25519` when only a shared secret is needed.
   */
  x25519Private(did: Did): Uint8Array {
    return ed25519SeedToX25519Private(this.#seed(did));
  }

  /**
   * The X25519 shared secret between the key of `did` and a peer's X25519 public key, without the
   * private key leaving the keystore.
   *
   * @example
   * ```ts
   * const shared = keystore.x25519(me, keyAgreementKeyOfDid(peer));
   * ```
   */
  x25519(did: Did, peerPublicKey: Uint8Array): Uint8Array {
    const priv = this.x25519Private(did);
    try {
      return this.#suite.x25519(priv, peerPublicKey);
    } finally {
      priv.fill(0);
    }
  }

  /** Removes the key of `did` (either DID form); resolves to false when it was not held. */
  async delete(did: Did): Promise<boolean> {
    if (typeof did !== 'string') return false;
    const key = canonical(did);
    this.#held.delete(key);
    const cached = this.#seeds.get(key);
    if (cached !== undefined) {
      cached.fill(0);
      this.#seeds.delete(key);
    }
    if (!this.#db.doesExist(key)) return false;
    const removed = await this.#db.remove(key);
    // A `has` while the removal was committing read the key still there.
    this.#held.delete(key);
    return removed;
  }

  /** Forgets every decrypted seed held in memory (they are decrypted again on next use). */
  clearCache(): void {
    for (const seed of this.#seeds.values()) seed.fill(0);
    this.#seeds.clear();
  }

  toJSON(): { keystore: string } {
    return { keystore: '[redacted]' };
  }

  [INSPECT](): string {
    return 'Keystore { [redacted] }';
  }

  #entry(did: Did): StoredEntry | undefined {
    const value: unknown = this.#db.get(did);
    if (value === undefined) return undefined;
    if (!isStoredEntry(value)) {
      throw new KeystoreError(
        'ANX_KEYSTORE_CORRUPT',
        `keystore expected a sealed key entry for ${JSON.stringify(did)}, got ${describeValue(value)}`,
      );
    }
    return value;
  }

  #seed(input: Did): Uint8Array {
    if (typeof input !== 'string') throw new KeyNotFoundError(describeValue(input));
    const did = canonical(input);
    const cached = this.#seeds.get(did);
    if (cached !== undefined) return cached;
    const entry = this.#entry(did);
    if (entry === undefined) throw new KeyNotFoundError(input);
    let seed: Uint8Array;
    try {
      seed = this.#suite.aesGcmDecrypt(
        this.#sealKey,
        fromBase64(entry.nonce),
        fromBase64(entry.sealed),
        new TextEncoder().encode(did),
      );
    } catch (cause) {
      throw new KeystoreLockedError(did, cause);
    }
    // The associated data binds the entry to its DID; this also catches a seed sealed for another key.
    if (seed.length !== 32 || didFromPublicKey(this.#suite.ed25519PublicKey(seed)) !== did) {
      seed.fill(0);
      throw new KeystoreLockedError(did);
    }
    if (this.#seeds.size >= this.#cacheSize) {
      const oldest = this.#seeds.keys().next();
      if (!oldest.done) {
        this.#seeds.get(oldest.value)?.fill(0);
        this.#seeds.delete(oldest.value);
      }
    }
    this.#seeds.set(did, seed);
    return seed;
  }
}
