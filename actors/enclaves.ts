// Enclave operations for the host: create, change membership as an acting local DID, read the current membership.
import { randomBytes } from 'node:crypto';
import {
  type EnclaveContext,
  isEnclaveAdmin,
  memberChangeProblem,
  type Permission,
  permissionsOf,
  type VaultBackendName,
} from '../machines/enclave.ts';
import { describeValue, IdTakenError } from '../runtime/errors.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem } from '../runtime/kernel/actor-system.ts';
import { checkEnclaveId } from '../runtime/vault/keys.ts';
import { watchActorEvent } from './await-event.ts';
import { ENCLAVE_KIND, enclaveAddress } from './enclave.ts';
import {
  ChangeRefusedError,
  EnclaveForbiddenError,
  EnclaveNotFoundError,
  TeamworkInputError,
} from './errors.ts';

/** What `enclave show` and the vault's permission checks read. */
export interface EnclaveView {
  enclave_id: string;
  name: string;
  owner: string;
  state: 'active' | 'archived';
  backend: VaultBackendName;
  members: EnclaveContext['members'];
  playbooks: string[];
  created_at: number;
}

/** Creates Enclaves and changes them through their actor, as a local identity. */
export class Enclaves {
  /** Called before every change it makes (the host's freeze switch); throws to refuse the change. */
  writeGuard: ((action: string, actor: string) => void) | undefined;

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
  ) {}

  /** Creates an Enclave owned by a local identity; resolves once its actor is committed. */
  async create(options: {
    owner: string;
    id?: string;
    name?: string;
    backend?: VaultBackendName;
  }): Promise<EnclaveView> {
    this.requireLocal(options.owner, 'owner');
    this.writeGuard?.('enclave.create', options.owner);
    const id = options.id ?? `enc-${randomBytes(6).toString('hex')}`;
    try {
      checkEnclaveId(id);
    } catch (err) {
      throw new TeamworkInputError((err as Error).message);
    }
    const backend = options.backend ?? 'lmdb';
    if (backend !== 'lmdb' && backend !== 'git')
      throw new TeamworkInputError(`"backend" expected "lmdb" or "git", got ${describeValue(backend)}`);
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length > 128))
      throw new TeamworkInputError('"name" expected a string of at most 128 characters');
    if (this.system.has(enclaveAddress(id)))
      throw new IdTakenError(`"id" expected a new enclave id, but enclave ${id} exists already`);
    await this.system.spawn(ENCLAVE_KIND, enclaveAddress(id), {
      enclave_id: id,
      owner: options.owner,
      backend,
      created_at: this.system.clock.now(),
      ...(options.name === undefined ? {} : { name: options.name }),
    });
    return this.get(id);
  }

  /** The Enclave's current state; throws `EnclaveNotFoundError`. */
  get(enclaveId: string): EnclaveView {
    if (typeof enclaveId !== 'string' || !this.system.has(enclaveAddress(enclaveId)))
      throw new EnclaveNotFoundError(String(enclaveId));
    const snap = this.system.snapshot(enclaveAddress(enclaveId));
    const c = snap.context as EnclaveContext;
    return {
      enclave_id: c.enclave_id,
      name: c.name,
      owner: c.owner,
      state: snap.value === 'archived' ? 'archived' : 'active',
      backend: c.backend,
      members: c.members,
      playbooks: c.playbooks,
      created_at: c.created_at,
    };
  }

  /** Ids of every Enclave on this host. */
  list(): string[] {
    return [...this.system.addresses(ENCLAVE_KIND)].map((a) => a.slice('enclave/'.length));
  }

  /** Throws unless `did` holds `permission` in the Enclave (and, for writes, the Enclave is active). */
  check(enclaveId: string, did: string, permission: Permission): EnclaveView {
    const view = this.get(enclaveId);
    const ctx = { ...view } as unknown as EnclaveContext;
    const held = permissionsOf(ctx, did);
    if (held.length === 0) throw new EnclaveForbiddenError(`${did} is not a member of enclave ${enclaveId}`);
    if (!held.includes(permission))
      throw new EnclaveForbiddenError(
        `${did} may ${held.join(', ')} in enclave ${enclaveId}, but not ${permission}`,
      );
    if (permission !== 'read' && view.state === 'archived')
      throw new EnclaveForbiddenError(`enclave ${enclaveId} is archived: it takes no more writes`);
    return view;
  }

  /** Adds or changes a member, acting as the local identity `as`; resolves once the Enclave applied it. */
  setMember(
    enclaveId: string,
    as: string,
    member: { did: string; role: string; permissions: Permission[] },
  ): Promise<EnclaveView> {
    const problem = memberChangeProblem(member as unknown as Record<string, unknown>);
    if (problem !== null) throw new TeamworkInputError(problem);
    return this.change(enclaveId, as, 'enclave.member.set', {
      did: member.did,
      role: member.role,
      permissions: member.permissions,
    });
  }

  removeMember(enclaveId: string, as: string, did: string): Promise<EnclaveView> {
    const view = this.get(enclaveId);
    if (did === view.owner) throw new TeamworkInputError('"did" names the owner, who cannot be removed');
    if (!(did in view.members))
      throw new TeamworkInputError(`"did" expected a member of ${enclaveId}, got ${describeValue(did)}`);
    return this.change(enclaveId, as, 'enclave.member.remove', { did });
  }

  bindPlaybook(enclaveId: string, as: string, playbook: string): Promise<EnclaveView> {
    return this.change(enclaveId, as, 'enclave.playbook.bind', { playbook });
  }

  archive(enclaveId: string, as: string): Promise<EnclaveView> {
    return this.change(enclaveId, as, 'enclave.archive', {});
  }

  activate(enclaveId: string, as: string): Promise<EnclaveView> {
    return this.change(enclaveId, as, 'enclave.activate', {});
  }

  private requireLocal(did: unknown, field: string): asserts did is string {
    if (typeof did !== 'string' || !this.keystore.has(did))
      throw new TeamworkInputError(
        `"${field}" expected a local identity (a DID this host holds the key of), got ${describeValue(did)}`,
        'list local identities with `anx-runtime id list`',
      );
  }

  /** Sends a change as `as` and waits for the Enclave's verdict (its status or error event). */
  private async change(
    enclaveId: string,
    as: string,
    type: string,
    body: Record<string, unknown>,
  ): Promise<EnclaveView> {
    this.requireLocal(as, 'as');
    this.writeGuard?.(type, as);
    const view = this.get(enclaveId);
    // Checked here for a typed answer; the Enclave checks again, and its check is the one that counts.
    if (!isEnclaveAdmin(view as unknown as EnclaveContext, as))
      throw new EnclaveForbiddenError(`${as} is neither the owner nor an admin of enclave ${enclaveId}`);
    const address = enclaveAddress(enclaveId);
    const env = this.system.envelope({ type, from: as, to: address, body });
    const watch = watchActorEvent(
      this.system,
      address,
      (e) => (e.payload as { id?: unknown } | null)?.id === env.id,
    );
    try {
      await this.system.accept([env]);
    } catch (err) {
      watch.cancel();
      throw err;
    }
    const verdict = await watch.result;
    if (verdict === undefined)
      throw new ChangeRefusedError(
        'ANX_ENCLAVE_TIMEOUT',
        `enclave ${enclaveId} did not apply ${type} in time`,
      );
    if (verdict.kind === 'error') {
      const p = verdict.payload as { code: string; reason: string };
      throw new ChangeRefusedError(p.code, `enclave ${enclaveId} refused ${type}: ${p.reason}`);
    }
    return this.get(enclaveId);
  }
}
