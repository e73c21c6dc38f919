// LMDB vault backend: metadata and content of each version written together in one transaction.
import type { Database, Key, RootDatabase } from 'lmdb';
import { VaultBackendError, VaultNotFoundError } from './errors.ts';
import {
  checkEnclaveId,
  checkInput,
  checkIntegrity,
  checkKey,
  checkPrefix,
  checkRef,
  checkRefMatches,
  checkVersion,
  DEFAULT_MAX_SIZE,
  sha256Hex,
} from './keys.ts';
import {
  type ArtifactContent,
  type ArtifactInput,
  type ArtifactRef,
  type ArtifactVersion,
  toRef,
  type VaultBackend,
  type VaultOptions,
} from './types.ts';

/*
 * Layout (ordered-binary array keys, so ranges walk one Enclave or one key in order):
 *   ['meta', enclave, key, version]    → ArtifactVersion, with the content inline (`inline`) when it is
 *                                        at most INLINE_MAX bytes
 *   ['blob', enclave, key, version]    → content bytes of a version whose content is not inline
 * A key's latest version is its last `meta` entry. Stores written before kept the content of every version
 * under `blob` and a `['latest', enclave, key]` pointer; both are still read, the pointer is no longer
 * written or needed.
 */
const META = 'meta';
const BLOB = 'blob';
// Above every character a key may contain, so [prefix, prefix + HIGH) covers every key starting with prefix.
const HIGH = '\u007f';
const LAST_VERSION = Number.MAX_SAFE_INTEGER;

/**
 * Content up to this size is kept in its version's metadata record: one write per version instead of
 * two, on one leaf page of the B-tree. Larger content goes to its own record, so walking the metadata
 * (history, list) does not read it.
 */
export const INLINE_MAX = 1024;

/** A version's record as stored: its metadata, and its content when that is small. */
type StoredVersion = ArtifactVersion & { inline?: Uint8Array };

/** The metadata of a stored version, without its inline content. */
function metaOf(stored: StoredVersion): ArtifactVersion {
  if (stored.inline === undefined) return stored;
  const { inline: _, ...meta } = stored;
  return meta;
}

/** Keys whose last version number an LMDB vault keeps in memory by default (`versionCacheKeys`). */
export const DEFAULT_VERSION_CACHE_KEYS = 16_384;

/**
 * Vault backend on an LMDB database the caller opened (msgpack values, the default ordered-binary keys).
 * The database may be shared with other data: everything lives under the three tags above.
 *
 * @example
 * ```ts
 * const vault = LmdbVault.fromRoot(open({ path: dir }));
 * const ref = await vault.put('enc1', 'design/spec.md', { kind: 'markdown', content: '# Spec', author: did, summary: 'first draft' });
 * ```
 */
export class LmdbVault implements VaultBackend {
  private readonly db: Database<unknown, Key>;
  private readonly now: () => number;
  private readonly maxSize: number;
  /**
   * Highest version handed out per `enclave\u0000key`, including versions staged but not yet committed;
   * least recently written first.
   */
  private readonly reserved = new Map<string, number>();
  private readonly reservedMax: number;
  /** Size of `reserved` past which stored versions are forgotten (above the cap while many are in flight). */
  private forgetAt: number;

  constructor(db: Database<unknown, Key>, options: VaultOptions = {}) {
    this.db = db;
    this.now = options.now ?? Date.now;
    this.maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
    this.reservedMax = Math.max(1, options.versionCacheKeys ?? DEFAULT_VERSION_CACHE_KEYS);
    this.forgetAt = this.reservedMax;
  }

  /** Opens (or creates) the named database `name` in `root` with the encoding this backend needs. */
  static fromRoot(root: RootDatabase, name = 'vault', options: VaultOptions = {}): LmdbVault {
    return new LmdbVault(root.openDB<unknown, Key>({ name, encoding: 'msgpack' }), options);
  }

  async put(enclaveId: string, key: string, artifact: ArtifactInput): Promise<ArtifactRef> {
    checkEnclaveId(enclaveId);
    checkKey(key);
    const content = checkInput(artifact, this.maxSize);
    const hash = sha256Hex(content);
    const ts = this.now();
    let version: number | undefined;
    try {
      // The version is read and its records written inside one write transaction, so concurrent puts
      // of one key get distinct, consecutive versions and a reader never sees metadata without content.
      // A child of LMDB's batch transaction: a write that throws takes back this put's other writes too.
      const meta = await this.db.childTransaction(() => {
        version = this.nextVersion(enclaveId, key);
        const m: ArtifactVersion = {
          enclave_id: enclaveId,
          key,
          version,
          kind: artifact.kind,
          hash,
          size: content.length,
          author: artifact.author,
          summary: artifact.summary,
          ts,
        };
        for (const [k, v] of versionWrites(m, content)) this.db.put(k, v);
        return m;
      });
      return toRef(meta);
    } catch (err) {
      if (version !== undefined) this.unreserve(enclaveId, key, version);
      throw new VaultBackendError(`cannot store ${enclaveId}/${key}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /**
   * Validates a put and returns its ref with the writes that store it, for a caller that commits them in
   * its own transaction (a worker's delivery and the message announcing it land together). Versions are
   * reserved in this process at once, so staged and direct puts of one key never share a number; this
   * holds because one host process owns its LMDB environment.
   */
  prepare(
    enclaveId: string,
    key: string,
    artifact: ArtifactInput,
  ): { ref: ArtifactRef; db: Database<unknown, Key>; writes: Array<[Key, unknown]> } {
    checkEnclaveId(enclaveId);
    checkKey(key);
    const content = checkInput(artifact, this.maxSize);
    const meta: ArtifactVersion = {
      enclave_id: enclaveId,
      key,
      version: this.nextVersion(enclaveId, key),
      kind: artifact.kind,
      hash: sha256Hex(content),
      size: content.length,
      author: artifact.author,
      summary: artifact.summary,
      ts: this.now(),
    };
    return { ref: toRef(meta), db: this.db, writes: versionWrites(meta, content) };
  }

  /**
   * Reserves the next version number of a key: above its last stored version and any reserved here. Once a
   * key has a number reserved here, that number is at least its last stored version (every version of this
   * database is numbered here, and one process owns it), so the database is read once per key while the
   * key stays among the `versionCacheKeys` most recently written.
   */
  private nextVersion(enclaveId: string, key: string): number {
    const id = `${enclaveId}\u0000${key}`;
    const known = this.reserved.get(id);
    const version = (known ?? this.lastVersion(enclaveId, key) ?? 0) + 1;
    // Re-inserted: the map's order is the order of last use.
    if (known !== undefined) this.reserved.delete(id);
    this.reserved.set(id, version);
    if (this.reserved.size > this.forgetAt) this.forgetStored();
    return version;
  }

  /**
   * Gives back a version number whose put failed, so the key's next version takes it (no gap), unless a
   * later number of the key was reserved meanwhile (a put on its way already has it).
   */
  private unreserve(enclaveId: string, key: string, version: number): void {
    const id = `${enclaveId}\u0000${key}`;
    // Back to the number before it (stored, or reserved by a put still on its way), not forgotten:
    // read from the database, an earlier number on its way could be handed out twice.
    if (this.reserved.get(id) === version) this.reserved.set(id, version - 1);
  }

  /**
   * Forgets the least recently written keys whose reserved version is stored, down to three quarters of
   * the cap. A version still on its way to disk (staged, or committing) is kept: forgotten, its number
   * could be handed out again. When too many are in flight to get there (a bulk import staged in one
   * commit), the next attempt waits until another quarter of the cap has been added, so puts do not each
   * scan the map.
   */
  private forgetStored(): void {
    const target = Math.floor((this.reservedMax * 3) / 4);
    for (const [id, version] of this.reserved) {
      if (this.reserved.size <= target) break;
      const split = id.indexOf('\u0000');
      if (this.lastVersion(id.slice(0, split), id.slice(split + 1)) === version) this.reserved.delete(id);
    }
    this.forgetAt = Math.max(this.reservedMax, this.reserved.size + Math.ceil(this.reservedMax / 4));
  }

  /** The number of a key's last stored version, or undefined when it has none. */
  private lastVersion(enclaveId: string, key: string): number | undefined {
    for (const k of this.db.getKeys({
      start: [META, enclaveId, key, LAST_VERSION],
      end: [META, enclaveId, key, 0],
      reverse: true,
      limit: 1,
    })) {
      return (k as [string, string, string, number])[3];
    }
    return undefined;
  }

  async get(enclaveId: string, key: string, version?: number): Promise<ArtifactContent> {
    checkEnclaveId(enclaveId);
    checkKey(key);
    if (version !== undefined) checkVersion(version);
    // No transaction needed: a version's records are written together and never change afterwards, so a
    // version whose metadata is read has its content too.
    const v = version ?? this.lastVersion(enclaveId, key);
    let found: ArtifactContent | undefined;
    if (v !== undefined) {
      const stored = this.db.get([META, enclaveId, key, v]) as StoredVersion | undefined;
      const blob =
        stored === undefined
          ? undefined
          : (stored.inline ?? (this.db.get([BLOB, enclaveId, key, v]) as Uint8Array | undefined));
      if (stored && blob) found = { meta: metaOf(stored), content: new Uint8Array(blob) };
    }
    if (!found) throw new VaultNotFoundError(enclaveId, key, version);
    checkIntegrity(found);
    return found;
  }

  async resolve(ref: ArtifactRef): Promise<ArtifactContent> {
    checkRef(ref);
    const stored = await this.get(ref.enclave_id, ref.key, ref.version);
    checkRefMatches(ref, stored);
    return stored;
  }

  async history(enclaveId: string, key: string): Promise<ArtifactVersion[]> {
    checkEnclaveId(enclaveId);
    checkKey(key);
    const out: ArtifactVersion[] = [];
    for (const { value } of this.db.getRange({
      start: [META, enclaveId, key, 0],
      end: [META, enclaveId, key, Number.MAX_SAFE_INTEGER],
    })) {
      out.push(metaOf(value as StoredVersion));
    }
    return out;
  }

  async list(enclaveId: string, prefix = ''): Promise<ArtifactVersion[]> {
    checkEnclaveId(enclaveId);
    checkPrefix(prefix);
    const out: ArtifactVersion[] = [];
    // Backwards from the end of the prefix: the first entry of a key is its last version; the next step
    // starts below that key's first version, so each key costs one seek however many versions it has.
    let start: Key = [META, enclaveId, prefix + HIGH];
    for (;;) {
      let next: Key | undefined;
      for (const { key, value } of this.db.getRange({
        start,
        end: [META, enclaveId, prefix],
        reverse: true,
        limit: 1,
      })) {
        const k = (key as unknown[])[2];
        if (typeof k !== 'string') break;
        if (k.startsWith(prefix)) out.push(metaOf(value as StoredVersion));
        next = [META, enclaveId, k, 0];
      }
      if (next === undefined) break;
      start = next;
    }
    return out.reverse();
  }

  async close(): Promise<void> {
    // The database belongs to the caller, who closes it.
  }
}

/** The records that store one version: its metadata, with the content inline or beside it. */
function versionWrites(meta: ArtifactVersion, content: Uint8Array): Array<[Key, unknown]> {
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.length);
  const at: Key = [META, meta.enclave_id, meta.key, meta.version];
  if (content.length <= INLINE_MAX) return [[at, { ...meta, inline: bytes } satisfies StoredVersion]];
  return [
    [at, meta],
    [[BLOB, meta.enclave_id, meta.key, meta.version], bytes],
  ];
}
