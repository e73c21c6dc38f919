// Owner DIDs: the root identities (people, organisations) this host holds, persisted in LMDB.
import type { Database, Key } from 'lmdb';
import type { Clock } from '../clock.ts';
import { AnxError, describeValue } from '../errors.ts';
import { parseDid } from '../identity/did.ts';
import type { Keystore } from '../identity/keystore.ts';
import type { Store } from '../store/store.ts';

/** A registered Owner: a local identity that binds agents to itself. */
export interface OwnerRecord {
  did: string;
  name: string;
  created_at: number;
}

/** The DID is not a registered Owner on this host. */
export class OwnerNotFoundError extends AnxError {
  constructor(did: string) {
    super('ANX_OWNER_NOT_FOUND', `${did} is not a registered owner on this host`, {
      hint: 'register one with `anx-runtime owner register NAME` and use the DID it prints',
    });
  }
}

/** A malformed owner, binding or secretary request. */
export class AuthorityInputError extends AnxError {
  constructor(message: string, hint?: string) {
    super('ANX_AUTHORITY_INVALID', message, hint === undefined ? undefined : { hint });
  }
}

/**
 * Owners are local identities marked as roots of authority. Registering creates the identity (through
 * `create`, the host's identity factory, so its DID actor exists) and commits the record.
 */
export class Owners {
  private readonly db: Database<unknown, Key>;

  constructor(
    store: Store,
    private readonly keystore: Keystore,
    private readonly clock: Clock,
  ) {
    this.db = store.root.openDB({ name: 'owners', useRecords: false } as never);
  }

  /** Registers a new Owner with a fresh key, or marks an existing local identity (`did`) as an Owner. */
  async register(
    options: { name: string; did?: string },
    create: (name: string) => Promise<{ did: string }>,
  ): Promise<OwnerRecord> {
    const { name } = options;
    if (typeof name !== 'string' || name.length === 0 || name.length > 128)
      throw new AuthorityInputError(`"name" expected 1 to 128 characters, got ${describeValue(name)}`);
    let did: string;
    if (options.did !== undefined) {
      did = parseDid(options.did, 'did').did;
      if (!this.keystore.has(did))
        throw new AuthorityInputError(
          `"did" expected a local identity (its key signs bindings), got ${did}`,
          'list local identities with `anx-runtime id list`',
        );
      const known = this.get(did);
      // Registering again is a no-op; under another name it is a mistake, not a rename.
      if (known !== undefined && known.name !== name)
        throw new AnxError(
          'ANX_ID_CONFLICT',
          `${did} is already an Owner named ${describeValue(known.name)}`,
          {
            hint: `register it as ${describeValue(known.name)}, or leave --did out to make a new Owner named ${describeValue(name)}`,
          },
        );
      if (known !== undefined) return known;
    } else {
      did = (await create(name)).did;
    }
    const record: OwnerRecord = { did, name, created_at: this.clock.now() };
    await this.db.put(did, record);
    return record;
  }

  get(did: string): OwnerRecord | undefined {
    return typeof did === 'string' ? (this.db.get(did) as OwnerRecord | undefined) : undefined;
  }

  has(did: string): boolean {
    return typeof did === 'string' && this.db.doesExist(did);
  }

  /** The Owner record, or `OwnerNotFoundError`. */
  require(did: unknown, field = 'owner_did'): OwnerRecord {
    if (typeof did !== 'string' || !did.startsWith('did:'))
      throw new AuthorityInputError(`"${field}" expected an Owner DID, got ${describeValue(did)}`);
    const record = this.get(did);
    if (record === undefined) throw new OwnerNotFoundError(did);
    return record;
  }

  list(): OwnerRecord[] {
    const out: OwnerRecord[] = [];
    for (const { value } of this.db.getRange({})) out.push(value as OwnerRecord);
    return out.sort((a, b) => a.created_at - b.created_at);
  }
}
