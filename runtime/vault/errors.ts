// Typed errors of the Vault: bad keys or input, missing artifacts, refs that do not match, corrupt or failing storage.
import { AnxError, describeValue } from '../errors.ts';

/** A key, Enclave id or artifact field that does not follow the documented rules. */
export class VaultInputError extends AnxError {
  constructor(message: string) {
    super('ANX_VAULT_INPUT', message, { hint: 'see the key and field rules in the vault documentation' });
  }
}

/** No artifact (or no such version) under the key. */
export class VaultNotFoundError extends AnxError {
  constructor(enclaveId: string, key: string, version?: number) {
    super(
      'ANX_VAULT_NOT_FOUND',
      version === undefined
        ? `no artifact ${describeValue(key)} in enclave ${describeValue(enclaveId)}`
        : `no version ${version} of artifact ${JSON.stringify(key)} in enclave ${describeValue(enclaveId)}`,
    );
  }
}

/** A ref whose hash (or size) is not what the vault stores for that version. */
export class VaultRefMismatchError extends AnxError {
  constructor(field: 'hash' | 'size', expected: string, got: string, where: string) {
    super('ANX_VAULT_REF_MISMATCH', `${where}: ref ${field} is ${got}, the stored version has ${expected}`, {
      hint: 'the ref is stale, forged or from another vault; ask its sender for a current ref',
    });
  }
}

/** Stored bytes whose hash is not the one recorded for them: the storage was altered or damaged. */
export class VaultIntegrityError extends AnxError {
  constructor(where: string, expected: string, got: string) {
    super('ANX_VAULT_INTEGRITY', `${where}: content hashes to ${got}, metadata says ${expected}`, {
      hint: 'the vault storage was modified outside the runtime; restore it from a backup',
    });
  }
}

/** The storage underneath failed (a git command, a transaction). */
export class VaultBackendError extends AnxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ANX_VAULT_BACKEND', message, { cause: options?.cause });
  }
}
