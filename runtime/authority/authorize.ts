// Actor-for-principal authorization: who acts (proven, never self-declared) and whether it may act for whom.
import type { Database, Key } from 'lmdb';
import type { Clock } from '../clock.ts';
import type { CryptoSuite } from '../crypto/suite.ts';
import type { EnvelopeContext } from '../envelope/envelope.ts';
import { AnxError, describeValue } from '../errors.ts';
import { isDid, publicKeyOfDid } from '../identity/did.ts';
import type { Keystore } from '../identity/keystore.ts';
import type { Store } from '../store/store.ts';
import { type Bindings, type BindingView, signingInput } from './binding.ts';
import type { Authority } from './index.ts';

/** The parts of the host's authority services (`host.authority`) that authorization uses. */
export type AuthorityServices = Pick<Authority, 'audit' | 'tokens' | 'freeze' | 'trust'>;

/**
 * A request signed by the actor's own key: how an actor whose key this host does not hold proves it
 * acts. Signing input: `anx-actor-proof\0` + canonical JSON of every field but `sig` (base64url).
 */
export interface ActorProof {
  actor: string;
  principal: string;
  action: string;
  resource: string;
  /** ms since the epoch; accepted within the proof window (5 minutes) of the host's clock. */
  ts: number;
  /** Random, single use. */
  nonce: string;
  sig: string;
}

/** A request to act for a principal. */
export interface ActRequest {
  /** The acting DID (`actor_did`). */
  actor: unknown;
  /** The DID acted for: the Owner of what is touched. */
  principal: string;
  /** `dispatch`, `abort`, `status`, `takeover`, `vault.write`, `stage.deliver`, `gatekeeper.answer`, … */
  action: string;
  /** What is touched: a session, run, enclave or DID. */
  resource: string;
  /** Required when the actor's key is not on this host. */
  proof?: unknown;
  /** A capability token (when the actor is neither the principal nor a bound Secretary). */
  token?: unknown;
  /** The action changes state: refused while the host is frozen. */
  write?: boolean;
  /** Where the action happens (run, task, stage, Enclave): matched against a token's constraints. */
  context?: EnvelopeContext;
}

/** Why an actor was allowed. */
export interface ActDecision {
  actor: string;
  principal: string;
  action: string;
  resource: string;
  /**
   * How the actor proved itself: it is a local identity, it signed the request, or it is the sender of
   * a message the transport authenticated (a relay session or a sealed envelope's signature).
   */
  proven_by: 'local-key' | 'signature' | 'sender';
  /** Why it may act for the principal. */
  basis: 'principal' | 'binding' | 'token';
  binding_id?: string;
}

/** A refusal of an actor: the code says which check failed. */
export class ActorForbiddenError extends AnxError {
  constructor(code: string, message: string, hint: string) {
    super(code, message, { hint });
  }
}

/** Actions a `secretary` binding lets its agent perform for the Owner. */
export const SECRETARY_ACTIONS: readonly string[] = [
  'dispatch',
  'stage.assign',
  'abort',
  'status',
  'takeover',
  'vault.write',
  'vault.read',
  'run.control',
];

const PROOF_WINDOW_MS = 5 * 60_000;

/**
 * Checks every request that acts for someone. The actor must first be proven: either this host holds
 * its key (the local API is reachable only by the host's user, who holds those keys), or the request
 * carries an `ActorProof` signed by the actor, fresh and never seen before. Then the actor must be the
 * principal itself, hold an active `secretary` binding to it, or present a capability token that the
 * token service accepts for this resource and action. Every decision, allow or deny, is audited.
 */
export class ActorAuthorizer {
  private readonly nonces: Database<unknown, Key>;
  /** Late-bound: the authority services are built by the composition root. */
  services: AuthorityServices | undefined;

  constructor(
    store: Store,
    private readonly keystore: Keystore,
    private readonly bindings: Bindings,
    private readonly suite: CryptoSuite,
    private readonly clock: Clock,
  ) {
    this.nonces = store.root.openDB({ name: 'actor_proofs', useRecords: false } as never);
  }

  /** Allows the request or throws a typed refusal; both outcomes are audited. */
  authorize(request: ActRequest): ActDecision {
    try {
      const { decision, nonce } = this.decide(request);
      // A proof is spent only by a request it got through: a refused one changes nothing.
      if (nonce !== undefined) this.nonces.putSync(nonce.key, nonce.ts);
      this.audit(request, 'allow', undefined, decision);
      return decision;
    } catch (err) {
      this.audit(request, 'deny', err);
      throw err;
    }
  }

  /**
   * Runs `work`, an action allowed by a check of its own (Enclave membership, a running task), and
   * audits its outcome: allowed, or refused with the typed error it threw.
   */
  async audited<T>(request: Omit<ActRequest, 'proof' | 'token'>, work: () => Promise<T> | T): Promise<T> {
    let result: T;
    try {
      result = await work();
    } catch (err) {
      if (err instanceof AnxError && /^ANX_(FORBIDDEN|TASK_NOT_RUNNING|FROZEN|TOKEN_)/.test(err.code))
        this.audit(request, 'deny', err);
      throw err;
    }
    this.audit(request, 'allow');
    return result;
  }

  /** Audits a refusal found elsewhere (a membership or validation check) against an acting DID. */
  auditDenial(request: Omit<ActRequest, 'proof' | 'token'>, err: unknown): void {
    this.audit(request, 'deny', err);
  }

  /** Audits an action that was allowed by a check other than `authorize` (e.g. Enclave membership). */
  auditAllow(request: Omit<ActRequest, 'proof' | 'token'>, details?: unknown): void {
    this.audit(request, 'allow', undefined, details);
  }

  /**
   * Whether `assigner`, the authenticated sender of a `stage.assign`, may give work to `worker`, an
   * identity of this host. A worker bound to Owners takes work only from one of them, a Secretary bound
   * to one of them, or a holder of a capability token (`cap`) for `stage.assign` on `worker:<DID>` that
   * leads back to one of them. A worker bound to nobody has no one to ask: its gatekeeper alone decides
   * who reaches it (undefined is returned). Allowed and refused decisions are audited; a refusal throws
   * a typed error naming the Owners.
   */
  authorizeAssignment(
    assigner: string,
    worker: string,
    cap?: unknown,
    context?: EnvelopeContext,
  ): ActDecision | undefined {
    const owners = [
      ...new Set(
        this.bindings
          .list({ agent: worker })
          .filter((b) => b.state === 'active')
          .map((b) => b.statement.owner),
      ),
    ];
    if (owners.length === 0) return undefined;
    const request = (principal: string): ActRequest => ({
      actor: assigner,
      principal,
      action: 'stage.assign',
      resource: `worker:${worker}`,
      ...(cap === undefined || cap === null ? {} : { token: cap }),
      ...(context === undefined ? {} : { context }),
    });
    let refusal: unknown;
    for (const owner of owners) {
      const asked = request(owner);
      try {
        const decision = this.decideWith(asked, [], 'sender');
        this.audit(asked, 'allow', undefined, decision);
        return decision;
      } catch (err) {
        refusal ??= err;
      }
    }
    const error =
      refusal instanceof AnxError && refusal.code.startsWith('ANX_TOKEN')
        ? refusal
        : new ActorForbiddenError(
            'ANX_FORBIDDEN_ASSIGNER',
            `${assigner} may not assign work to ${worker}: the worker is bound to ${owners.join(', ')}, and ${assigner} is not ${owners.length === 1 ? 'that Owner' : 'one of those Owners'}, not a Secretary bound to ${owners.length === 1 ? 'it' : 'them'} and presents no capability token for stage.assign on the worker`,
            `the worker's Owner runs the playbook itself, binds the coordinator as its secretary (\`anx-runtime owner bind OWNER DID --role secretary\`) or issues it a token for stage.assign on worker:${worker}`,
          );
    this.audit(request(owners[0] as string), 'deny', error);
    throw error;
  }

  private decide(request: ActRequest): {
    decision: ActDecision;
    nonce?: { key: [string, string]; ts: number };
  } {
    const nonce: { key: [string, string]; ts: number }[] = [];
    const decision = this.decideWith(request, nonce);
    return nonce[0] === undefined ? { decision } : { decision, nonce: nonce[0] };
  }

  private decideWith(
    request: ActRequest,
    spent: Array<{ key: [string, string]; ts: number }>,
    provenAs?: 'sender',
  ): ActDecision {
    const { principal, action, resource } = request;
    if (!isDid(request.actor))
      throw new ActorForbiddenError(
        'ANX_FORBIDDEN_ACTOR_MISSING',
        `"actor_did" expected the DID acting for ${principal}, got ${describeValue(request.actor)}`,
        'every request that acts for someone names its actor_did',
      );
    const actor = request.actor;
    const proven_by = provenAs ?? this.prove(actor, request, spent);
    if (request.write === true && this.services !== undefined)
      this.services.freeze.assertWritable(action, { actor, principal, resource });
    const base = { actor, principal, action, resource, proven_by };
    if (actor === principal) return { ...base, basis: 'principal' };
    if (request.token !== undefined && request.token !== null) {
      if (this.services === undefined)
        throw new ActorForbiddenError(
          'ANX_FORBIDDEN_TOKEN_UNSUPPORTED',
          'this host cannot check capability tokens',
          'start the host with its authority services',
        );
      this.services.tokens.check(String(request.token), {
        actor,
        resource,
        action,
        owner: principal,
        now: this.clock.now(),
        ...(request.context === undefined ? {} : { context: request.context }),
      });
      return { ...base, basis: 'token' };
    }
    const all = this.bindings.list({ owner: principal, agent: actor });
    const active = all.filter((b) => b.state === 'active');
    const secretary = active.find((b) => b.statement.role === 'secretary');
    if (secretary !== undefined) {
      if (!SECRETARY_ACTIONS.includes(action))
        throw new ActorForbiddenError(
          'ANX_FORBIDDEN_ROLE',
          `${actor} is the secretary of ${principal}, which does not allow ${action}`,
          `only ${SECRETARY_ACTIONS.join(', ')} are done by a secretary; ask the owner or present a capability token`,
        );
      return { ...base, basis: 'binding', binding_id: secretary.id };
    }
    throw this.notBound(actor, principal, action, all, active);
  }

  private notBound(
    actor: string,
    principal: string,
    action: string,
    all: BindingView[],
    active: BindingView[],
  ): ActorForbiddenError {
    const secretaries = all.filter((b) => b.statement.role === 'secretary');
    if (active.length > 0)
      return new ActorForbiddenError(
        'ANX_FORBIDDEN_ROLE',
        `${actor} is bound to ${principal} as ${active.map((b) => b.statement.role).join(', ')}, which does not let it ${action} for the owner`,
        'bind it as a secretary (`anx-runtime owner bind OWNER AGENT --role secretary`) or give it a capability token',
      );
    // The newest secretary binding says why the agent no longer acts for the owner.
    const latest = secretaries[0];
    if (latest?.state === 'expired')
      return new ActorForbiddenError(
        'ANX_FORBIDDEN_BINDING_EXPIRED',
        `the binding of ${actor} to ${principal} expired; it may not ${action} for the owner`,
        'the owner binds it again with `anx-runtime owner bind OWNER AGENT --role secretary --expires 30d`',
      );
    if (latest?.state === 'unbound')
      return new ActorForbiddenError(
        'ANX_FORBIDDEN_BINDING_REVOKED',
        `${actor} was unbound from ${principal}; it may not ${action} for the owner`,
        'the owner binds it again with `anx-runtime owner bind` if that was a mistake',
      );
    return new ActorForbiddenError(
      'ANX_FORBIDDEN_NOT_BOUND',
      `${actor} may not ${action} for ${principal}: it is not the owner, not bound to it as a secretary and presents no capability token`,
      'act as the owner, bind the agent with `anx-runtime owner bind OWNER AGENT --role secretary`, or present a capability token',
    );
  }

  /** How the actor proves it acts: a key held here, or a fresh signature over this very request. */
  private prove(
    actor: string,
    request: ActRequest,
    spent: Array<{ key: [string, string]; ts: number }>,
  ): ActDecision['proven_by'] {
    if (request.proof === undefined || request.proof === null) {
      if (this.keystore.has(actor)) return 'local-key';
      throw new ActorForbiddenError(
        'ANX_FORBIDDEN_ACTOR_UNPROVEN',
        `actor ${actor} is not an identity of this host and the request carries no proof signed by it`,
        'act as a local identity, or sign the request with the actor key (an ActorProof in "actor_proof")',
      );
    }
    const p = request.proof as Partial<ActorProof>;
    const { sig, ...fields } = p;
    const fail = (why: string) =>
      new ActorForbiddenError(
        'ANX_FORBIDDEN_ACTOR_UNPROVEN',
        `the proof for actor ${actor} does not hold: ${why}`,
        'sign a fresh ActorProof over this exact actor, principal, action and resource',
      );
    if (
      p.actor !== actor ||
      p.principal !== request.principal ||
      p.action !== request.action ||
      p.resource !== request.resource
    )
      throw fail('it was signed for another actor, principal, action or resource');
    if (typeof p.ts !== 'number' || Math.abs(this.clock.now() - p.ts) > PROOF_WINDOW_MS)
      throw fail('its "ts" is outside the 5 minute window');
    if (typeof p.nonce !== 'string' || p.nonce.length < 8 || p.nonce.length > 64)
      throw fail('no valid "nonce"');
    let ok = false;
    try {
      ok =
        typeof sig === 'string' &&
        this.suite.verify(
          publicKeyOfDid(actor),
          signingInput('anx-actor-proof', fields),
          new Uint8Array(Buffer.from(sig, 'base64url')),
        );
    } catch {
      ok = false;
    }
    if (!ok) throw fail('its signature is not the actor key');
    const key: [string, string] = [actor, p.nonce];
    if (this.nonces.doesExist(key))
      throw new ActorForbiddenError(
        'ANX_FORBIDDEN_REPLAY',
        `the proof nonce ${p.nonce} of ${actor} was used before: a replayed request`,
        'sign every request with a new nonce',
      );
    spent.push({ key, ts: p.ts });
    return 'signature';
  }

  private audit(
    request: Omit<ActRequest, 'proof' | 'token'> & { token?: unknown },
    decision: 'allow' | 'deny',
    err?: unknown,
    details?: unknown,
  ): void {
    const audit = this.services?.audit;
    if (audit === undefined) return;
    audit.append({
      action: request.action,
      decision,
      ...(typeof request.actor === 'string' ? { actor: request.actor } : {}),
      principal: request.principal,
      resource: request.resource,
      ...(err instanceof AnxError ? { code: err.code, reason: err.message } : {}),
      ...(err !== undefined && !(err instanceof AnxError) ? { reason: String(err) } : {}),
      ...(details === undefined ? {} : { details: details as Record<string, unknown> }),
    });
    // A refusal commits nothing else: its audit record must not wait for the next commit.
    if (decision === 'deny') void audit.flush().catch(() => {});
  }
}

/** Builds an `ActorProof` with a signing function of the actor's key (for actors whose key lives elsewhere). */
export function signActorProof(
  suite: CryptoSuite,
  sign: (message: Uint8Array) => Uint8Array,
  fields: Omit<ActorProof, 'sig' | 'nonce' | 'ts'> & { ts: number; nonce?: string },
): ActorProof {
  const unsigned = {
    actor: fields.actor,
    principal: fields.principal,
    action: fields.action,
    resource: fields.resource,
    ts: fields.ts,
    nonce: fields.nonce ?? Buffer.from(suite.randomBytes(16)).toString('base64url'),
  };
  const sig = Buffer.from(sign(signingInput('anx-actor-proof', unsigned))).toString('base64url');
  return { ...unsigned, sig };
}
