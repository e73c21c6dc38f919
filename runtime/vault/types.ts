// The Vault seam: versioned artifacts under keys in an Enclave, and the interface every backend implements.

/**
 * Reference to one version of an artifact: what stages pass to each other instead of bodies.
 * `hash` is the sha256 of the content (lowercase hex); `summary` is the author's short description.
 */
export interface ArtifactRef {
  enclave_id: string;
  key: string;
  version: number;
  hash: string;
  size: number;
  summary: string;
}

/** Metadata of one stored version of an artifact. */
export interface ArtifactVersion {
  enclave_id: string;
  key: string;
  /** 1 for the first put of a key, then previous + 1. */
  version: number;
  kind: string;
  /** sha256 of the content, lowercase hex. */
  hash: string;
  size: number;
  /** DID of the author. */
  author: string;
  summary: string;
  /** Milliseconds since the epoch when the version was stored. */
  ts: number;
}

/** What a caller hands to `put`. Strings are stored as their UTF-8 bytes. */
export interface ArtifactInput {
  kind: string;
  content: Uint8Array | string;
  author: string;
  summary: string;
}

/** One version's metadata and its bytes. */
export interface ArtifactContent {
  meta: ArtifactVersion;
  content: Uint8Array;
}

/**
 * Storage of versioned artifacts. Backends check keys, hashes and versions; they do NOT check
 * permissions: the Enclave actor decides who may read and write before calling them.
 */
export interface VaultBackend {
  /** Stores a new version of `key` (previous version + 1, or 1) and returns its ref. */
  put(enclaveId: string, key: string, artifact: ArtifactInput): Promise<ArtifactRef>;
  /** The given version of `key`, or the latest. Throws `VaultNotFoundError` when there is none. */
  get(enclaveId: string, key: string, version?: number): Promise<ArtifactContent>;
  /** The version a ref names; throws `VaultRefMismatchError` when the stored hash is not the ref's. */
  resolve(ref: ArtifactRef): Promise<ArtifactContent>;
  /** Every version of `key`, oldest first; empty when the key was never written. */
  history(enclaveId: string, key: string): Promise<ArtifactVersion[]>;
  /** The latest version of every key in the Enclave (those starting with `prefix`, if given), sorted by key. */
  list(enclaveId: string, prefix?: string): Promise<ArtifactVersion[]>;
  /** Releases what the backend holds (not the database or directory the caller passed in). */
  close(): Promise<void>;
}

/** Options every backend accepts. */
export interface VaultOptions {
  /** Time source for `ts`; defaults to the wall clock. */
  now?: () => number;
  /** Largest artifact accepted, in bytes (default 64 MiB). */
  maxSize?: number;
  /**
   * LMDB backend: keys whose last version number it keeps in memory (default 16,384). Beyond it, the
   * least recently written keys whose version has been stored are forgotten and read again at their
   * next put.
   */
  versionCacheKeys?: number;
}

/** Turns version metadata into the ref stages pass around. */
export function toRef(meta: ArtifactVersion): ArtifactRef {
  return {
    enclave_id: meta.enclave_id,
    key: meta.key,
    version: meta.version,
    hash: meta.hash,
    size: meta.size,
    summary: meta.summary,
  };
}
