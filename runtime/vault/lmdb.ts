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
 *   ['latest', enclave, key]           → latest version number
 *   ['meta', enclave, key, version]    → ArtifactVersion
 *   ['blob', enclave, key, version]    → content bytes
 */
const LATEST = 'latest';
const META = 'meta';
const BLOB = 'blob';
// Above every character a key may contain, so [prefix, prefix + HIGH) covers every key starting with prefix.
const HIGH = '\u007f';

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
  /** Highest version handed out per `enclave\u0000key`, including versions staged but not yet committed. */
  private readonly reserved = new Map<string, number>();

  constructor(db: Database<unknown, Key>, options: VaultOptions = {}) {
    this.db = db;
    this.now = options.now ?? Date.now;
    this.maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
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
    try {
      // The version is read and both records written inside one write transaction, so concurrent puts
      // of one key get distinct, consecutive versions and a reader never sees metadata without content.
      // A child of LMDB's batch transaction: a write that throws takes back this put's other writes too.
      const meta = await this.db.childTransaction(() => {
        const latest = this.db.get([LATEST, enclaveId, key]);
        const id = `${enclaveId}\u0000${key}`;
        const version = Math.max(typeof latest === 'number' ? latest : 0, this.reserved.get(id) ?? 0) + 1;
        this.reserved.set(id, version);
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
        this.db.put([META, enclaveId, key, version], m);
        this.db.put(
          [BLOB, enclaveId, key, version],
          Buffer.from(content.buffer, content.byteOffset, content.length),
        );
        this.db.put([LATEST, enclaveId, key], version);
        return m;
      });
      return toRef(meta);
    } catch (err) {
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
    const id = `${enclaveId}\u0000${key}`;
    const latest = this.db.get([LATEST, enclaveId, key]);
    const version = Math.max(typeof latest === 'number' ? latest : 0, this.reserved.get(id) ?? 0) + 1;
    this.reserved.set(id, version);
    const meta: ArtifactVersion = {
      enclave_id: enclaveId,
      key,
      version,
      kind: artifact.kind,
      hash: sha256Hex(content),
      size: content.length,
      author: artifact.author,
      summary: artifact.summary,
      ts: this.now(),
    };
    return {
      ref: toRef(meta),
      db: this.db,
      writes: [
        [[META, enclaveId, key, version], meta],
        [[BLOB, enclaveId, key, version], Buffer.from(content.buffer, content.byteOffset, content.length)],
        [[LATEST, enclaveId, key], version],
      ],
    };
  }

  async get(enclaveId: string, key: string, version?: number): Promise<ArtifactContent> {
    checkEnclaveId(enclaveId);
    checkKey(key);
    if (version !== undefined) checkVersion(version);
    // No transaction needed: a version's metadata and content are written together with the pointer to it and
    // never change afterwards, so whatever pointer is read names a complete version.
    const v = version ?? this.db.get([LATEST, enclaveId, key]);
    let found: ArtifactContent | undefined;
    if (typeof v === 'number') {
      const meta = this.db.get([META, enclaveId, key, v]) as ArtifactVersion | undefined;
      const blob = this.db.get([BLOB, enclaveId, key, v]) as Uint8Array | undefined;
      if (meta && blob) found = { meta, content: new Uint8Array(blob) };
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
      out.push(value as ArtifactVersion);
    }
    return out;
  }

  async list(enclaveId: string, prefix = ''): Promise<ArtifactVersion[]> {
    checkEnclaveId(enclaveId);
    checkPrefix(prefix);
    const out: ArtifactVersion[] = [];
    for (const { key, value } of this.db.getRange({
      start: [LATEST, enclaveId, prefix],
      end: [LATEST, enclaveId, prefix + HIGH],
    })) {
      const k = (key as unknown[])[2];
      if (typeof k !== 'string' || !k.startsWith(prefix) || typeof value !== 'number') continue;
      const meta = this.db.get([META, enclaveId, k, value]) as ArtifactVersion | undefined;
      if (meta) out.push(meta);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async close(): Promise<void> {
    // The database belongs to the caller, who closes it.
  }
}
