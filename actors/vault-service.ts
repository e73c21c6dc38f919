// The vault as actors use it: every read and write checked against the Enclave's membership, writes authored by the acting DID.
import { join } from 'node:path';
import { describeValue } from '../runtime/errors.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import { GitVault } from '../runtime/vault/git.ts';
import { checkRef } from '../runtime/vault/keys.ts';
import { LmdbVault } from '../runtime/vault/lmdb.ts';
import type { ArtifactContent, ArtifactRef, ArtifactVersion, VaultBackend } from '../runtime/vault/types.ts';
import { enclaveAddress } from './enclave.ts';
import type { Enclaves } from './enclaves.ts';
import { ForgedAuthorError, TeamworkInputError } from './errors.ts';

/** What a write carries; `author` may be left out (it is the acting DID), and is refused when it is another. */
export interface VaultWrite {
  kind: string;
  content: Uint8Array | string;
  summary: string;
  author?: string;
}

/**
 * A DID of another host whose signed request this host has verified (a worker answering a run that lives
 * here): it acts in the vault without a local key, under the same membership and permission checks.
 */
export class RemoteSigner {
  constructor(readonly did: string) {}
}

/** Who acts: a local identity (by DID), or a verified signer of another host. */
export type Acting = string | RemoteSigner;

/** Correlation ids recorded on the `artifact` event a write emits. */
export interface WriteTrace {
  run_id?: string;
  task_id?: string;
  step?: string;
  /**
   * The caller commits right after (the worker's delivery): the event, and with the LMDB backend the
   * artifact itself, join that commit. The returned ref is durable only once the caller's commit is.
   */
  deferCommit?: boolean;
}

/**
 * Checks and routes vault traffic. Reads need `read`, writes `write` in the Enclave (the owner holds
 * every permission); the acting DID must be a local identity, and it is the author of what it writes.
 * Each Enclave's backend (LMDB by default, or a git repository under the data directory) is chosen when
 * the Enclave is created. A `RemoteSigner` stands for a DID of another host whose signature was checked.
 */
export class VaultService {
  readonly lmdb: LmdbVault;
  readonly git: GitVault;
  /** Called before every change it makes (the host's freeze switch); throws to refuse the change. */
  writeGuard: ((action: string, actor: string) => void) | undefined;

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly enclaves: Enclaves,
    dataDir: string,
  ) {
    const now = () => system.clock.now();
    this.lmdb = LmdbVault.fromRoot(system.store.root, 'vault', { now });
    this.git = new GitVault(join(dataDir, 'vault-git'), { now });
  }

  private backend(enclaveId: string): VaultBackend {
    return this.enclaves.get(enclaveId).backend === 'git' ? this.git : this.lmdb;
  }

  private acting(as: unknown): string {
    if (as instanceof RemoteSigner) return as.did;
    if (typeof as !== 'string' || as.length === 0)
      throw new TeamworkInputError('"as" expected the DID that acts, got nothing');
    if (!this.keystore.has(as))
      throw new ForgedAuthorError(as, 'a local identity (this host holds no key for it)');
    return as;
  }

  /** Writes a new version of `key` as `as`; emits an `artifact` event with the ref. */
  async put(
    enclaveId: string,
    key: string,
    write: VaultWrite,
    as: Acting,
    trace: WriteTrace = {},
  ): Promise<ArtifactRef> {
    const did = this.acting(as);
    this.writeGuard?.('vault.put', did);
    if (write === null || typeof write !== 'object')
      throw new TeamworkInputError('artifact expected { kind, content, summary }');
    if (write.author !== undefined && typeof write.author !== 'string')
      throw new TeamworkInputError(
        `"author" expected the writing DID (or nothing), got ${describeValue(write.author)}`,
      );
    if (write.author !== undefined && write.author !== did) throw new ForgedAuthorError(write.author, did);
    this.enclaves.check(enclaveId, did, 'write');
    const artifact = { kind: write.kind, content: write.content, summary: write.summary ?? '', author: did };
    const backend = this.backend(enclaveId);
    let ref: ArtifactRef;
    if (trace.deferCommit === true && backend === this.lmdb) {
      // Staged in the caller's group commit: the artifact and the message carrying its ref land together.
      const prepared = this.lmdb.prepare(enclaveId, key, artifact);
      for (const [k, v] of prepared.writes) this.system.commits.put(prepared.db, k, v);
      ref = prepared.ref;
    } else {
      ref = await backend.put(enclaveId, key, artifact);
    }
    // Left in the trace of the Enclave (and of the run and task that wrote it, when there is one).
    const event = {
      kind: 'artifact' as const,
      actor: enclaveAddress(enclaveId),
      ...(trace.run_id === undefined ? {} : { run_id: trace.run_id }),
      ...(trace.task_id === undefined ? {} : { task_id: trace.task_id }),
      ...(trace.step === undefined ? {} : { step: trace.step }),
      payload: { ref, kind: write.kind, author: did },
    };
    if (trace.deferCommit === true) this.system.events.append(event);
    else await this.system.emitEvent(event);
    return ref;
  }

  async get(enclaveId: string, key: string, as: Acting, version?: number): Promise<ArtifactContent> {
    this.enclaves.check(enclaveId, this.acting(as), 'read');
    // A delivery staged with the message that carries its ref commits with the run's transition: a
    // reader who saw that transition waits for the commit rather than miss the artifact.
    await this.system.whenDurable();
    return this.backend(enclaveId).get(enclaveId, key, version);
  }

  /** The version a ref names; a ref whose hash no longer matches is refused (`ANX_VAULT_REF_MISMATCH`). */
  async resolve(ref: ArtifactRef, as: Acting): Promise<ArtifactContent> {
    if (ref === null || typeof ref !== 'object')
      throw new TeamworkInputError('"ref" expected an ArtifactRef');
    checkRef(ref); // its shape before its Enclave is looked up
    this.enclaves.check(ref.enclave_id, this.acting(as), 'read');
    await this.system.whenDurable();
    return this.backend(ref.enclave_id).resolve(ref);
  }

  async history(enclaveId: string, key: string, as: string): Promise<ArtifactVersion[]> {
    this.enclaves.check(enclaveId, this.acting(as), 'read');
    await this.system.whenDurable();
    return this.backend(enclaveId).history(enclaveId, key);
  }

  async list(enclaveId: string, as: string, prefix = ''): Promise<ArtifactVersion[]> {
    this.enclaves.check(enclaveId, this.acting(as), 'read');
    await this.system.whenDurable();
    return this.backend(enclaveId).list(enclaveId, prefix);
  }

  async close(): Promise<void> {
    await this.git.close();
  }
}
