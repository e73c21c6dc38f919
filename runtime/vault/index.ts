// Public entry of the Vault: the backend interface, its two implementations, key rules and errors.
export {
  VaultBackendError,
  VaultInputError,
  VaultIntegrityError,
  VaultNotFoundError,
  VaultRefMismatchError,
} from './errors.ts';
export { GitVault, type GitVaultOptions } from './git.ts';
export { checkEnclaveId, checkKey, KEY_RULES, sha256Hex } from './keys.ts';
export { LmdbVault } from './lmdb.ts';
export {
  type ArtifactContent,
  type ArtifactInput,
  type ArtifactRef,
  type ArtifactVersion,
  toRef,
  type VaultBackend,
  type VaultOptions,
} from './types.ts';
