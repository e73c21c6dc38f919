// Owner→agent bindings: statements signed by the Owner and countersigned by the agent, unbindings signed by the Owner.
import type { Database, Key } from 'lmdb';
import type { Clock } from '../clock.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import { AnxError, describeValue } from '../errors.ts';
import { parseDid, publicKeyOfDid } from '../identity/did.ts';
import type { Keystore } from '../identity/keystore.ts';
import type { Store } from '../store/store.ts';
import { canonicalize } from './canonical.ts';
import { AuthorityInputError } from './owners.ts';

/** What an Owner states when it binds an agent: who, in which role, until when. */
export interface BindingStatement {
  v: 1;
  owner: string;
  agent: string;
  /** `secretary` lets the agent act for the Owner; any other role (e.g. `developer`) makes it a worker. */
  role: string;
  issued_at: number;
  expires_at: number;
  /** Random, so two bindings of the same pair and role have different ids. */
  nonce: string;
}

/**
 * A binding as stored and distributed. `owner_sig` is the Owner's Ed25519 signature over
 * `anx-binding\0` + canonical JSON of `statement`; `agent_sig` is the agent's over
 * `anx-binding-countersign\0` + canonical JSON of `{ statement, owner_sig }`. Signatures are base64url.
 */
export interface SignedBinding {
  id: string;
  statement: BindingStatement;
  owner_sig: string;
  agent_sig: string;
}

/** The Owner's signed withdrawal of a binding (`anx-unbinding\0` + canonical JSON of `statement`). */
export interface SignedUnbinding {
  statement: { v: 1; binding_id: string; owner: string; agent: string; ts: number };
  sig: string;
}

/** A binding with what is known about it now. */
export interface BindingView extends SignedBinding {
  state: 'active' | 'expired' | 'unbound';
  unbound_at: number | null;
}

/** A statement whose signature, DID or fields do not verify. */
export class BindingInvalidError extends AnxError {
  constructor(message: string) {
    super('ANX_BINDING_INVALID', message, {
      hint: 'bindings are signed by the owner and countersigned by the agent: create them with `anx-runtime owner bind`',
    });
  }
}

export class BindingNotFoundError extends AnxError {
  constructor(what: string) {
    super('ANX_BINDING_NOT_FOUND', `no binding ${what} on this host`, {
      hint: 'list bindings with `anx-runtime owner bindings OWNER_DID`',
    });
  }
}

const ROLE = /^[a-z][a-z0-9_.-]{0,63}$/;
const enc = new TextEncoder();

/** Domain-separated signing input: ASCII `prefix`, 0x00, then the canonical JSON of `value`. */
export function signingInput(prefix: string, value: unknown): Uint8Array {
  return enc.encode(`${prefix}\u0000${canonicalize(value)}`);
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const unb64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64url'));

export function bindingId(suite: CryptoSuite, statement: BindingStatement): string {
  return Buffer.from(suite.sha256(signingInput('anx-binding', statement)))
    .toString('hex')
    .slice(0, 32);
}

export function checkRole(role: unknown, field = 'role'): string {
  if (typeof role !== 'string' || !ROLE.test(role))
    throw new AuthorityInputError(
      `"${field}" expected a lowercase role such as "secretary" or "developer", got ${describeValue(role)}`,
    );
  return role;
}

/** Verifies both signatures and the id; throws `BindingInvalidError`. */
export function verifyBinding(suite: CryptoSuite, signed: SignedBinding): void {
  const s = signed?.statement;
  if (s === undefined || s === null || typeof s !== 'object' || s.v !== 1)
    throw new BindingInvalidError('"statement" expected a version 1 binding statement');
  try {
    parseDid(s.owner, 'statement.owner');
    parseDid(s.agent, 'statement.agent');
  } catch (err) {
    throw new BindingInvalidError((err as Error).message);
  }
  if (
    !Number.isSafeInteger(s.issued_at) ||
    !Number.isSafeInteger(s.expires_at) ||
    s.expires_at <= s.issued_at
  )
    throw new BindingInvalidError('"statement" expected integer issued_at < expires_at');
  if (typeof s.role !== 'string' || !ROLE.test(s.role) || typeof s.nonce !== 'string')
    throw new BindingInvalidError('"statement" expected a lowercase role and a nonce');
  if (signed.id !== bindingId(suite, s))
    throw new BindingInvalidError('binding "id" does not match its statement');
  const ownerOk =
    typeof signed.owner_sig === 'string' &&
    suite.verify(publicKeyOfDid(s.owner), signingInput('anx-binding', s), unb64(signed.owner_sig));
  if (!ownerOk) throw new BindingInvalidError(`owner signature of binding ${signed.id} does not verify`);
  const agentOk =
    typeof signed.agent_sig === 'string' &&
    suite.verify(
      publicKeyOfDid(s.agent),
      signingInput('anx-binding-countersign', { statement: s, owner_sig: signed.owner_sig }),
      unb64(signed.agent_sig),
    );
  if (!agentOk)
    throw new BindingInvalidError(`agent countersignature of binding ${signed.id} does not verify`);
}

export function verifyUnbinding(suite: CryptoSuite, u: SignedUnbinding): void {
  const s = u?.statement;
  if (s === undefined || s === null || s.v !== 1 || typeof s.binding_id !== 'string')
    throw new BindingInvalidError('"statement" expected a version 1 unbinding statement');
  const ok =
    typeof u.sig === 'string' &&
    suite.verify(publicKeyOfDid(s.owner, 'statement.owner'), signingInput('anx-unbinding', s), unb64(u.sig));
  if (!ok)
    throw new BindingInvalidError(`owner signature of the unbinding of ${s.binding_id} does not verify`);
}

interface StoredBinding {
  signed: SignedBinding;
  unbinding: SignedUnbinding | null;
}

/** Something that carries bindings and unbindings to other hosts (the relay). */
export interface BindingDistributor {
  publish(kind: 'binding' | 'unbinding', value: SignedBinding | SignedUnbinding): void;
}

/**
 * Every binding this host knows, persisted in LMDB and cached in memory (checked on every request).
 * Local bindings are signed here (both keys local); bindings and unbindings from other hosts are
 * imported after their signatures verify. Expiry is checked at use against the clock, so it takes
 * effect everywhere without a message; an unbinding takes effect where it has been received.
 */
export class Bindings {
  private readonly db: Database<unknown, Key>;
  private readonly cache = new Map<string, StoredBinding>();
  /** Verified unbindings whose binding has not arrived yet (relay entries come in any order). */
  private readonly early = new Map<string, SignedUnbinding>();
  distributor: BindingDistributor | undefined;

  constructor(
    store: Store,
    private readonly keystore: Keystore,
    private readonly suite: CryptoSuite,
    private readonly clock: Clock,
  ) {
    this.db = store.root.openDB({ name: 'bindings', useRecords: false } as never);
    for (const { key, value } of this.db.getRange({})) this.cache.set(key as string, value as StoredBinding);
  }

  /** Binds `agent` to `owner` in `role` until `expiresAt`, signing as both (their keys must be local). */
  async bind(options: {
    owner: string;
    agent: string;
    role: string;
    expiresAt: number;
  }): Promise<BindingView> {
    const owner = parseDid(options.owner, 'owner_did').did;
    const agent = parseDid(options.agent, 'agent_did').did;
    const role = checkRole(options.role);
    const now = this.clock.now();
    if (!Number.isSafeInteger(options.expiresAt) || options.expiresAt <= now)
      throw new AuthorityInputError(
        `"expires_at" expected a time after now (${new Date(now).toISOString()}), got ${describeValue(options.expiresAt)}`,
      );
    if (owner === agent) throw new AuthorityInputError('"agent_did" expected another DID than the owner');
    for (const [field, did] of [
      ['owner_did', owner],
      ['agent_did', agent],
    ] as const) {
      if (!this.keystore.has(did))
        throw new AuthorityInputError(
          `"${field}" expected a local identity that can sign here, got ${did}`,
          'an agent on another host countersigns there; import its signed binding with POST /v1/bindings/import',
        );
    }
    const statement: BindingStatement = {
      v: 1,
      owner,
      agent,
      role,
      issued_at: now,
      expires_at: options.expiresAt,
      nonce: b64(this.suite.randomBytes(12)),
    };
    const owner_sig = b64(this.keystore.sign(owner, signingInput('anx-binding', statement)));
    const agent_sig = b64(
      this.keystore.sign(agent, signingInput('anx-binding-countersign', { statement, owner_sig })),
    );
    const signed: SignedBinding = { id: bindingId(this.suite, statement), statement, owner_sig, agent_sig };
    await this.store(signed, null);
    this.distributor?.publish('binding', signed);
    return this.view(signed.id);
  }

  /** Stores a binding signed elsewhere, after verifying it. Idempotent. */
  async import(signed: SignedBinding): Promise<BindingView> {
    verifyBinding(this.suite, signed);
    if (!this.cache.has(signed.id)) {
      const early = this.early.get(signed.id);
      this.early.delete(signed.id);
      await this.store(
        signed,
        early !== undefined && early.statement.owner === signed.statement.owner ? early : null,
      );
    }
    return this.view(signed.id);
  }

  /** Withdraws a binding, signed by its Owner (whose key must be local). */
  async unbind(id: string): Promise<BindingView> {
    const found = this.cache.get(id);
    if (found === undefined) throw new BindingNotFoundError(JSON.stringify(id));
    if (found.unbinding !== null) return this.view(id);
    const { owner, agent } = found.signed.statement;
    if (!this.keystore.has(owner))
      throw new AuthorityInputError(`only the owner ${owner} can unbind, and its key is not on this host`);
    const statement = { v: 1 as const, binding_id: id, owner, agent, ts: this.clock.now() };
    const unbinding: SignedUnbinding = {
      statement,
      sig: b64(this.keystore.sign(owner, signingInput('anx-unbinding', statement))),
    };
    await this.store(found.signed, unbinding);
    this.distributor?.publish('unbinding', unbinding);
    return this.view(id);
  }

  /** Applies an unbinding received from elsewhere, after verifying it is the binding Owner's. */
  async importUnbinding(unbinding: SignedUnbinding): Promise<void> {
    verifyUnbinding(this.suite, unbinding);
    const found = this.cache.get(unbinding.statement.binding_id);
    if (found === undefined) {
      this.early.set(unbinding.statement.binding_id, unbinding);
      return;
    }
    if (found.unbinding !== null) return;
    if (found.signed.statement.owner !== unbinding.statement.owner)
      throw new BindingInvalidError('the unbinding is not signed by the binding owner');
    await this.store(found.signed, unbinding);
  }

  private async store(signed: SignedBinding, unbinding: SignedUnbinding | null): Promise<void> {
    const record: StoredBinding = { signed, unbinding };
    await this.db.put(signed.id, record);
    this.cache.set(signed.id, record);
  }

  /** The signed unbinding of a binding, when it was withdrawn. */
  unbinding(id: string): SignedUnbinding | undefined {
    return this.cache.get(id)?.unbinding ?? undefined;
  }

  view(id: string, now = this.clock.now()): BindingView {
    const found = this.cache.get(id);
    if (found === undefined) throw new BindingNotFoundError(JSON.stringify(id));
    const state =
      found.unbinding !== null ? 'unbound' : found.signed.statement.expires_at <= now ? 'expired' : 'active';
    return { ...found.signed, state, unbound_at: found.unbinding?.statement.ts ?? null };
  }

  /** Every binding of an Owner and/or agent, newest first. */
  list(filter: { owner?: string; agent?: string; role?: string } = {}): BindingView[] {
    const now = this.clock.now();
    const out: BindingView[] = [];
    for (const [id, { signed }] of this.cache) {
      const s = signed.statement;
      if (filter.owner !== undefined && s.owner !== filter.owner) continue;
      if (filter.agent !== undefined && s.agent !== filter.agent) continue;
      if (filter.role !== undefined && s.role !== filter.role) continue;
      out.push(this.view(id, now));
    }
    return out.sort((a, b) => b.statement.issued_at - a.statement.issued_at);
  }

  /** The active binding of `agent` to `owner` in `role`, if any. */
  active(owner: string, agent: string, role?: string): BindingView | undefined {
    return this.list({ owner, agent, ...(role === undefined ? {} : { role }) }).find(
      (b) => b.state === 'active',
    );
  }
}
