// The Secretary: registers standing Secretaries of Owners and drives each dispatch's statechart through its steps.
import { createHash } from 'node:crypto';
import type { Database, Key } from 'lmdb';
import type { PlaybookDefinition } from '../machines/playbook/definition.ts';
import {
  type DispatchState,
  isTerminal,
  SECRETARY_MACHINE_VERSION,
  type SecretaryContext,
  type SecretaryInput,
  secretaryMachine,
  type WorkerChoice,
} from '../machines/secretary.ts';
import { ActorAuthorizer, type AuthorityServices } from '../runtime/authority/authorize.ts';
import { Bindings, type BindingView, checkRole, signingInput } from '../runtime/authority/binding.ts';
import { canonicalize } from '../runtime/authority/canonical.ts';
import { AuthorityInputError, type OwnerRecord, Owners } from '../runtime/authority/owners.ts';
import { defaultSuite } from '../runtime/crypto/index.ts';
import { AnxError, describeValue } from '../runtime/errors.ts';
import type { EventV1 } from '../runtime/events/event.ts';
import { isDid } from '../runtime/identity/did.ts';
import type { Keystore } from '../runtime/identity/keystore.ts';
import type { ActorSystem, MachineDefinition } from '../runtime/kernel/actor-system.ts';
import type { Enclaves } from './enclaves.ts';
import type { InboxRecord, InboxTap } from './inbox-tap.ts';
import type { ManifestRecord, Manifests } from './manifest.ts';
import {
  isObjective,
  OBJECTIVE_MAX_CHARS,
  type PlaybookRuns,
  type RunStatus,
  runAddress,
  runStateOf,
} from './playbook-run.ts';

export const SECRETARY_KIND = 'secretary';
const DISPATCH_PREFIX = 'dispatch/';
const HOST = 'host';
/** Default lifetime of a Secretary's binding. */
const DEFAULT_SECRETARY_DAYS = 365;

/** The actor address of the dispatch with this session id. */
export function dispatchAddress(sessionId: string): string {
  return DISPATCH_PREFIX + sessionHash(sessionId);
}

function sessionHash(sessionId: string): string {
  return createHash('sha256').update(`anx-session\u0000${sessionId}`).digest('hex').slice(0, 24);
}

/** Deterministic message id: a step sent again after a crash is recognised as a duplicate. */
function stepId(address: string, what: string): string {
  return createHash('sha256').update(`${address}\u0000${what}`).digest('base64url').slice(0, 32);
}

export const secretaryActor: MachineDefinition = {
  kind: SECRETARY_KIND,
  version: SECRETARY_MACHINE_VERSION,
  machine: secretaryMachine,
  input: (_address, init) => init,
};

/** A standing Secretary of an Owner. */
export interface SecretaryRecord {
  did: string;
  owner: string;
  name: string;
  binding_id: string;
  created_at: number;
}

/** What `dispatch` takes (the SDK and the local API use these wire names). */
export interface DispatchRequest {
  session_id: string;
  owner_did: string;
  actor_did: string;
  objective: string;
  required_roles: string[];
  source?: Record<string, unknown>;
  /** A template name or a definition; default: one stage per required role, in order. */
  playbook?: unknown;
  /** The Secretary that takes it; default: the actor if it is a Secretary of the Owner, else the Owner's first. */
  secretary_did?: string;
  /** Also POST the result here, signed by the Secretary. */
  callback_url?: string;
  actor_proof?: unknown;
  token?: unknown;
}

/** A dispatch as `dispatch status` shows it: who does what, and where it stands. */
export interface DispatchStatus {
  session_id: string;
  state: DispatchState;
  owner: string;
  secretary: string;
  actor: string;
  objective: string;
  required_roles: string[];
  source: Record<string, unknown>;
  enclave_id: string;
  run_id: string;
  workers: WorkerChoice[];
  authorization: SecretaryContext['authorization'];
  takeovers: number;
  result: SecretaryContext['result'];
  webhook: SecretaryContext['webhook'];
  failure: SecretaryContext['failure'];
  abort: SecretaryContext['abort'];
  end_reason: string | null;
  created_at: number;
  run: RunStatus | null;
}

/** No bound worker can take a required role. */
export class NoCandidateError extends AnxError {
  constructor(role: string, owner: string, detail: string) {
    super('ANX_DISPATCH_NO_CANDIDATE', `no worker for role "${role}" is bound to owner ${owner}${detail}`, {
      hint: `bind one: \`anx-runtime owner bind ${owner} AGENT_DID --role ${role}\``,
    });
  }
}

export class DispatchNotFoundError extends AnxError {
  constructor(sessionId: string) {
    super('ANX_DISPATCH_NOT_FOUND', `no dispatch with session_id ${describeValue(sessionId)} on this host`, {
      hint: 'list dispatches with `anx-runtime dispatch list`',
    });
  }
}

export class SecretaryNotFoundError extends AnxError {
  constructor(what: string) {
    super('ANX_SECRETARY_NOT_FOUND', what, {
      hint: 'register one with `anx-runtime secretary register OWNER_DID --name NAME`',
    });
  }
}

/** The request cannot be taken in the dispatch's current state, or repeats a session with other content. */
export class DispatchRefusedError extends AnxError {
  constructor(code: string, message: string, hint?: string) {
    super(code, message, hint === undefined ? undefined : { hint });
  }
}

/** Host-side sources the selection weighs; the relay adds presence when the host joined one. */
export interface SecretaryServices {
  authority?: AuthorityServices;
  /** true online, false offline, undefined unknown. */
  presence?: (did: string) => boolean | undefined;
}

const SESSION = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;

/**
 * Owners, bindings, actor authorization and Secretaries of one host, and the driver of every dispatch.
 * Build it before `system.start()`: it registers the dispatch machine so restored dispatches find it,
 * then resumes each unfinished dispatch at the step it was in.
 */
export class Secretaries {
  readonly owners: Owners;
  readonly bindings: Bindings;
  readonly authorizer: ActorAuthorizer;
  private readonly db: Database<unknown, Key>;
  private readonly driving = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly unsubscribe: () => void;
  private readonly unwatch: Array<() => void> = [];
  private services: SecretaryServices = {};
  private closed = false;

  constructor(
    private readonly system: ActorSystem,
    private readonly keystore: Keystore,
    private readonly parts: {
      enclaves: Enclaves;
      runs: PlaybookRuns;
      manifests: Manifests;
      tap: InboxTap;
      createIdentity: (name: string) => Promise<{ did: string }>;
    },
  ) {
    const suite = defaultSuite();
    system.register(secretaryActor);
    this.owners = new Owners(system.store, keystore, system.clock);
    this.bindings = new Bindings(system.store, keystore, suite, system.clock);
    this.authorizer = new ActorAuthorizer(system.store, keystore, this.bindings, suite, system.clock);
    this.db = system.store.root.openDB({ name: 'secretaries', useRecords: false } as never);
    for (const s of this.list()) this.watchSecretary(s.did);
    for (const o of this.owners.list()) this.watchOwner(o.did);
    // Every step a dispatch commits is the driver's cue for the next one.
    this.unsubscribe = system.events.subscribe((events) => this.onEvents(events));
    setImmediate(() => {
      if (this.closed) return;
      for (const address of system.addresses(SECRETARY_KIND)) this.kick(address);
    });
  }

  /** Plugs in the host's authority services (tokens, audit, freeze, trust) and the relay's presence. */
  attach(services: SecretaryServices): void {
    this.services = { ...this.services, ...services };
    if (services.authority !== undefined) this.authorizer.services = services.authority;
  }

  // ---- owners and bindings ----

  async registerOwner(options: { name: string; did?: string }): Promise<OwnerRecord> {
    const record = await this.owners.register(options, this.parts.createIdentity);
    this.watchOwner(record.did);
    this.authorizer.auditAllow({
      actor: record.did,
      principal: record.did,
      action: 'owner.register',
      resource: record.did,
    });
    return record;
  }

  /** Binds an agent to an Owner (both keys local: the Owner signs, the agent countersigns). */
  async bind(options: {
    owner: string;
    agent: string;
    role: string;
    expiresAt?: number;
    actor?: string;
  }): Promise<BindingView> {
    const owner = this.owners.require(options.owner, 'owner_did');
    const actor = options.actor ?? owner.did;
    this.authorizer.authorize({
      actor,
      principal: owner.did,
      action: 'owner.bind',
      resource: options.agent,
      write: true,
    });
    const expiresAt = options.expiresAt ?? this.system.clock.now() + DEFAULT_SECRETARY_DAYS * 86_400_000;
    return this.bindings.bind({ owner: owner.did, agent: options.agent, role: options.role, expiresAt });
  }

  /** Withdraws a binding by id, or every active binding of `agent` to the Owner (in `role` when given). */
  async unbind(options: { owner: string; agent?: string; id?: string; role?: string; actor?: string }) {
    const owner = this.owners.require(options.owner, 'owner_did');
    const actor = options.actor ?? owner.did;
    this.authorizer.authorize({
      actor,
      principal: owner.did,
      action: 'owner.unbind',
      resource: options.id ?? options.agent ?? '',
      write: true,
    });
    const ids =
      options.id !== undefined
        ? [options.id]
        : this.bindings
            .list({
              owner: owner.did,
              ...(options.agent === undefined ? {} : { agent: options.agent }),
              ...(options.role === undefined ? {} : { role: options.role }),
            })
            .filter((b) => b.state === 'active')
            .map((b) => b.id);
    if (options.id === undefined && options.agent === undefined)
      throw new AuthorityInputError('"agent_did" or "id" expected: which binding to withdraw');
    const out: BindingView[] = [];
    for (const id of ids) {
      const view = this.bindings.view(id);
      if (view.statement.owner !== owner.did)
        throw new AuthorityInputError(`binding ${id} is not a binding of ${owner.did}`);
      out.push(await this.bindings.unbind(id));
    }
    return out;
  }

  // ---- secretaries ----

  /** Creates a Secretary identity for an Owner and binds it in role `secretary`. */
  async register(options: {
    owner: string;
    name?: string;
    did?: string;
    expiresAt?: number;
    actor?: string;
  }) {
    const owner = this.owners.require(options.owner, 'owner_did');
    const name = options.name ?? `${owner.name} secretary`;
    if (typeof name !== 'string' || name.length === 0 || name.length > 128)
      throw new AuthorityInputError(`"name" expected 1 to 128 characters, got ${describeValue(name)}`);
    const actor = options.actor ?? owner.did;
    this.authorizer.authorize({
      actor,
      principal: owner.did,
      action: 'secretary.register',
      resource: owner.did,
      write: true,
    });
    const did = options.did === undefined ? (await this.parts.createIdentity(name)).did : options.did;
    const binding = await this.bindings.bind({
      owner: owner.did,
      agent: did,
      role: 'secretary',
      expiresAt: options.expiresAt ?? this.system.clock.now() + DEFAULT_SECRETARY_DAYS * 86_400_000,
    });
    const record: SecretaryRecord = {
      did,
      owner: owner.did,
      name,
      binding_id: binding.id,
      created_at: this.system.clock.now(),
    };
    await this.db.put(did, record);
    this.watchSecretary(did);
    return { ...record, binding };
  }

  list(owner?: string): SecretaryRecord[] {
    const out: SecretaryRecord[] = [];
    for (const { value } of this.db.getRange({})) {
      const r = value as SecretaryRecord;
      if (owner === undefined || r.owner === owner) out.push(r);
    }
    return out.sort((a, b) => a.created_at - b.created_at);
  }

  // ---- dispatch ----

  /**
   * Takes a dispatch: checks the actor may act for the Owner, picks a worker per role, and has the
   * Secretary's statechart create the Enclave and start the Run. Idempotent on `session_id`: a repeat
   * of the same request returns the same dispatch; the same session with other content is refused.
   * Resolves once the run has started (or the dispatch ended).
   */
  async dispatch(request: DispatchRequest, options: { waitMs?: number } = {}): Promise<DispatchStatus> {
    const r = this.checkDispatch(request);
    const owner = this.owners.require(r.owner_did, 'owner_did');
    const resource = `dispatch:${owner.did}/${r.session_id}`;
    const decision = this.authorizer.authorize({
      actor: r.actor_did,
      principal: owner.did,
      action: 'dispatch',
      resource,
      proof: request.actor_proof,
      token: request.token,
      write: true,
    });
    const address = dispatchAddress(r.session_id);
    const rawPlaybook = r.playbook ?? defaultPlaybook(r.required_roles);
    const playbook = this.resolvePlaybook(rawPlaybook, r.required_roles);
    const fingerprint = createHash('sha256')
      .update(
        canonicalize({
          owner: owner.did,
          objective: r.objective,
          roles: r.required_roles,
          playbook: rawPlaybook,
          callback_url: r.callback_url ?? null,
        }),
      )
      .digest('hex');
    if (this.system.has(address)) {
      const c = this.context(address);
      if (c.session_id !== r.session_id || c.fingerprint !== fingerprint) {
        const err = new DispatchRefusedError(
          'ANX_DISPATCH_REPLAYED',
          `session ${r.session_id} was dispatched before with another owner, objective, roles or playbook; a session runs once`,
          'use a new session_id for a new objective; repeating the same request returns the existing run',
        );
        this.authorizer.auditDenial(
          { actor: r.actor_did, principal: owner.did, action: 'dispatch', resource },
          err,
        );
        throw err;
      }
      return this.waitStarted(address, options.waitMs);
    }
    const secretary = this.pickSecretary(owner.did, r.actor_did, r.secretary_did);
    let proposed: WorkerChoice[];
    try {
      proposed = this.select(owner.did, r.required_roles, playbook);
    } catch (err) {
      this.authorizer.auditDenial(
        { actor: r.actor_did, principal: owner.did, action: 'dispatch', resource },
        err,
      );
      throw err;
    }
    const hash = sessionHash(r.session_id);
    const input: SecretaryInput = {
      session_id: r.session_id,
      owner: owner.did,
      secretary,
      actor: r.actor_did,
      objective: r.objective,
      required_roles: r.required_roles,
      source: r.source ?? {},
      playbook: JSON.stringify(rawPlaybook),
      enclave_id: `enc-${hash}`,
      run_id: `run-${hash}`,
      fingerprint,
      authorization: {
        basis: decision.basis,
        proven_by: decision.proven_by,
        ...(decision.binding_id === undefined ? {} : { binding_id: decision.binding_id }),
      },
      proposed,
      ...(r.callback_url === undefined ? {} : { callback_url: r.callback_url }),
      created_at: this.system.clock.now(),
    };
    try {
      await this.system.spawn(SECRETARY_KIND, address, input);
    } catch (err) {
      // Two identical requests raced: the other one spawned it.
      if (!this.system.has(address)) throw err;
    }
    this.kick(address);
    return this.waitStarted(address, options.waitMs);
  }

  /** Aborts a dispatch (and its run) for the Owner; resolves once it is aborted. */
  async abort(request: {
    session_id: string;
    actor_did: string;
    reason?: string;
    actor_proof?: unknown;
    token?: unknown;
  }): Promise<DispatchStatus> {
    const address = this.requireDispatch(request.session_id);
    const c = this.context(address);
    const reason =
      typeof request.reason === 'string' && request.reason.length > 0
        ? request.reason.slice(0, 500)
        : 'aborted';
    this.authorizer.authorize({
      actor: request.actor_did,
      principal: c.owner,
      action: 'abort',
      resource: `dispatch:${c.owner}/${c.session_id}`,
      proof: request.actor_proof,
      token: request.token,
      write: true,
    });
    const state = this.stateOf(address);
    if (isTerminal(state))
      throw new DispatchRefusedError(
        'ANX_DISPATCH_REFUSED',
        `dispatch ${c.session_id} is ${state}: there is nothing to abort`,
        'see what happened with `anx-runtime dispatch status SESSION_ID`',
      );
    await this.send(address, 'dispatch.abort', { actor: request.actor_did, reason }, 'dispatch.abort');
    await this.waitFor(address, (s) => isTerminal(s), 30_000);
    return this.status(request.session_id);
  }

  /** The dispatch with who does what; with `actor`, the read is authorized as that actor. */
  status(
    sessionId: string,
    options: { actor?: string; proof?: unknown; token?: unknown } = {},
  ): DispatchStatus {
    const address = this.requireDispatch(sessionId);
    const c = this.context(address);
    if (options.actor !== undefined)
      this.authorizer.authorize({
        actor: options.actor,
        principal: c.owner,
        action: 'status',
        resource: `dispatch:${c.owner}/${c.session_id}`,
        proof: options.proof,
        token: options.token,
      });
    let run: RunStatus | null = null;
    if (this.parts.runs.has(c.run_id)) run = this.parts.runs.status(c.run_id);
    return {
      session_id: c.session_id,
      state: this.stateOf(address),
      owner: c.owner,
      secretary: c.secretary,
      actor: c.actor,
      objective: c.objective,
      required_roles: c.required_roles,
      source: c.source,
      enclave_id: c.enclave_id,
      run_id: c.run_id,
      workers: c.workers.length > 0 ? c.workers : c.proposed,
      authorization: c.authorization,
      takeovers: c.takeovers,
      result: c.result,
      webhook: c.webhook,
      failure: c.failure,
      abort: c.abort,
      end_reason: c.end_reason,
      created_at: c.created_at,
      run,
    };
  }

  /** Every dispatch on this host, oldest first. */
  listDispatches(): Array<{
    session_id: string;
    state: string;
    owner: string;
    run_id: string;
    created_at: number;
  }> {
    const out = [];
    for (const address of this.system.addresses(SECRETARY_KIND)) {
      const c = this.context(address);
      out.push({
        session_id: c.session_id,
        state: this.stateOf(address),
        owner: c.owner,
        run_id: c.run_id,
        created_at: c.created_at,
      });
    }
    return out.sort((a, b) => a.created_at - b.created_at);
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const off of this.unwatch) off();
  }

  // ---- the driver ----

  private onEvents(events: readonly EventV1[]): void {
    for (const e of events) {
      if (e.actor?.startsWith(DISPATCH_PREFIX) && e.kind === 'status') this.kick(e.actor);
      else if (e.kind === 'status' && (e.payload as { state?: unknown } | null)?.state === 'run.manifest') {
        // A dispatch reporting before its manifest was signed waits for this event.
        const address = dispatchOfRun(e.run_id);
        if (address !== undefined && this.system.has(address)) this.kick(address);
      } else if (e.kind === 'error' && e.actor?.startsWith('did:')) this.auditRefusedMail(e);
    }
  }

  /** A DID's gatekeeper refusing mail (local or relayed) is an authorization decision: it is audited. */
  private auditRefusedMail(e: EventV1): void {
    const p = e.payload as { code?: unknown; from?: unknown; id?: unknown; type?: unknown } | null;
    const code = typeof p?.code === 'string' ? p.code : '';
    if (!code.startsWith('ANX_GATEKEEPER_') && code !== 'ANX_CONTROL_FORBIDDEN') return;
    try {
      this.auditMail(e, p, code);
    } catch {
      // An audit record that cannot be written must not stop the event listeners.
    }
  }

  private auditMail(
    e: EventV1,
    p: { from?: unknown; id?: unknown; type?: unknown } | null,
    code: string,
  ): void {
    this.authorizer.auditDenial(
      {
        actor: typeof p?.from === 'string' ? p.from : 'unknown',
        principal: e.actor as string,
        action: 'message.receive',
        resource: `inbox:${e.actor}`,
      },
      new AnxError(code, `${e.actor} refused ${String(p?.type)} ${String(p?.id)} from ${String(p?.from)}`),
    );
  }

  /** Runs the dispatch's next step, once at a time per dispatch; a kick during a step runs it again after. */
  private kick(address: string): void {
    if (this.closed) return;
    if (this.driving.has(address)) {
      this.again.add(address);
      return;
    }
    const run = (async () => {
      try {
        do {
          this.again.delete(address);
          await this.step(address);
        } while (this.again.has(address) && !this.closed);
      } catch (err) {
        if (!this.closed)
          await this.system
            .emitEvent({
              kind: 'error',
              actor: address,
              payload: { status: 'secretary.driver.error', message: (err as Error).message },
            })
            .catch(() => {});
      } finally {
        this.driving.delete(address);
      }
    })();
    this.driving.set(address, run);
  }

  private async step(address: string): Promise<void> {
    if (!this.system.has(address)) return;
    const state = this.stateOf(address);
    const c = this.context(address);
    switch (state) {
      case 'authorizing': {
        // The binding the intake relied on must still hold when the work begins.
        const binding = c.authorization.binding_id;
        const view = binding === undefined ? undefined : this.bindings.view(binding);
        if (view !== undefined && view.state !== 'active') {
          await this.send(address, 'authority.refused', {
            code:
              view.state === 'expired' ? 'ANX_FORBIDDEN_BINDING_EXPIRED' : 'ANX_FORBIDDEN_BINDING_REVOKED',
            message: `the binding ${binding} of ${c.actor} is ${view.state}`,
          });
          return;
        }
        await this.send(address, 'authority.granted', { basis: c.authorization.basis });
        return;
      }
      case 'selecting': {
        const lost = c.proposed.find((w) => this.bindings.active(c.owner, w.did, w.role) === undefined);
        if (lost !== undefined) {
          await this.send(address, 'step.failed', {
            step: 'selecting',
            code: 'ANX_DISPATCH_NO_CANDIDATE',
            message: `worker ${lost.did} is no longer bound to ${c.owner} as ${lost.role}`,
          });
          return;
        }
        await this.send(address, 'workers.selected', { workers: c.proposed });
        return;
      }
      case 'creating_enclave':
        await this.guardStep(address, 'creating_enclave', async () => {
          await this.ensureEnclave(c);
          await this.send(address, 'enclave.ready', { enclave_id: c.enclave_id });
        });
        return;
      case 'starting_run':
        await this.guardStep(address, 'starting_run', async () => {
          if (!this.parts.runs.has(c.run_id)) {
            const assignments: Record<string, string[]> = {};
            for (const w of c.workers) assignments[w.role] = [...(assignments[w.role] ?? []), w.did];
            this.parts.manifests.watch(c.secretary);
            await this.parts.runs.start({
              playbook: JSON.parse(c.playbook),
              objective: c.objective,
              owner: c.owner,
              coordinator: c.secretary,
              enclave: c.enclave_id,
              assignments,
              run_id: c.run_id,
              session_id: c.session_id,
            });
          }
          await this.send(address, 'run.started', { run_id: c.run_id });
        });
        return;
      case 'waiting':
        await this.catchUpRun(address, c);
        return;
      case 'reporting': {
        if (!this.parts.manifests.has(c.run_id)) return; // the manifest's own event kicks again
        const record = this.parts.manifests.get(c.run_id);
        const webhook = c.callback_url === undefined ? undefined : await this.postWebhook(c, record);
        await this.send(address, 'result.signed', {
          manifest_ref: record.ref,
          final: record.signed.manifest.final,
          signer: record.signed.signer,
          ...(webhook === undefined ? {} : { webhook }),
        });
        return;
      }
      case 'aborting': {
        if (!this.parts.runs.has(c.run_id)) {
          await this.send(address, 'step.failed', {
            step: 'aborting',
            code: 'ANX_RUN_NOT_FOUND',
            message: 'no run was started',
          });
          return;
        }
        const run = this.parts.runs.status(c.run_id);
        if (run.state === 'completed' || run.state === 'failed' || run.state === 'aborted') {
          await this.send(
            address,
            `run.${run.state}`,
            { reason: run.end_reason ?? run.state },
            `run.${run.state}`,
          );
          return;
        }
        await this.parts.runs.control(
          c.run_id,
          'run.abort',
          { reason: c.abort?.reason ?? 'aborted' },
          c.owner,
        );
        return;
      }
      default:
        return;
    }
  }

  /** A step whose I/O failed ends the dispatch with the error (reported to the Owner), not the driver. */
  private async guardStep(address: string, step: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (this.stateOf(address) !== step) return;
      const e = err as AnxError;
      await this.send(address, 'step.failed', {
        step,
        code: typeof e.code === 'string' ? e.code : 'ANX_INTERNAL',
        message: e.message ?? String(err),
      });
    }
  }

  private async ensureEnclave(c: SecretaryContext): Promise<void> {
    const { enclaves } = this.parts;
    let exists = true;
    try {
      enclaves.get(c.enclave_id);
    } catch {
      exists = false;
    }
    if (!exists)
      await enclaves.create({
        owner: c.owner,
        id: c.enclave_id,
        name: `${c.objective.slice(0, 100)} (${c.session_id})`.slice(0, 128),
      });
    const members = enclaves.get(c.enclave_id).members;
    const want: Array<{ did: string; role: string; permissions: Array<'read' | 'write' | 'admin'> }> = [
      { did: c.secretary, role: 'secretary', permissions: ['read', 'write', 'admin'] },
    ];
    for (const w of c.workers)
      if (!want.some((m) => m.did === w.did))
        want.push({ did: w.did, role: w.role, permissions: ['read', 'write'] });
    for (const m of want) if (!(m.did in members)) await enclaves.setMember(c.enclave_id, c.owner, m);
  }

  /** After a restart, a run that ended while the driver was down is noticed from its status. */
  private async catchUpRun(address: string, c: SecretaryContext): Promise<void> {
    if (!this.parts.runs.has(c.run_id)) return;
    const state = this.parts.runs.status(c.run_id).state;
    if (state === 'completed' || state === 'failed' || state === 'aborted')
      await this.send(address, `run.${state}`, { reason: state }, `run.${state}`);
  }

  private async postWebhook(
    c: SecretaryContext,
    record: ManifestRecord,
  ): Promise<{ url: string; status: number | null; error: string | null }> {
    const url = c.callback_url as string;
    const body = JSON.stringify({
      type: 'secretary.result',
      session_id: c.session_id,
      run_id: c.run_id,
      enclave_id: c.enclave_id,
      owner: c.owner,
      manifest: record.signed,
      manifest_ref: record.ref,
    });
    const ts = this.system.clock.now();
    const signature = Buffer.from(
      this.keystore.sign(c.secretary, signingInput('anx-callback', { ts, body })),
    ).toString('base64url');
    let lastError: string | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-anx-session': c.session_id,
            'x-anx-signer': c.secretary,
            'x-anx-timestamp': String(ts),
            'x-anx-signature': signature,
          },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        if (res.ok) return { url, status: res.status, error: null };
        lastError = `HTTP ${res.status}`;
        if (res.status < 500) return { url, status: res.status, error: lastError };
      } catch (err) {
        lastError = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
    return { url, status: null, error: lastError };
  }

  /** Hands a run message that reached the Secretary (or the Owner) to the dispatch that started the run. */
  private forward(record: InboxRecord): void {
    const runId = record.ctx?.['run_id'] ?? (record.body as { run_id?: unknown } | null)?.run_id;
    const address = dispatchOfRun(runId);
    if (address === undefined || !this.system.has(address) || record.from !== runAddress(runId as string))
      return;
    const body = (record.body ?? {}) as Record<string, unknown>;
    void this.send(address, record.type, body, `fwd:${record.id}`).catch(() => {});
  }

  private watchSecretary(did: string): void {
    this.unwatch.push(
      this.parts.tap.watch(did, ['run.completed', 'run.failed', 'run.aborted'], (_d, r) => this.forward(r)),
    );
  }

  private watchOwner(did: string): void {
    this.unwatch.push(this.parts.tap.watch(did, ['run.takeover'], (_d, r) => this.forward(r)));
  }

  private async send(address: string, type: string, body: unknown, idKey = type): Promise<void> {
    await this.system.accept([
      this.system.envelope({ id: stepId(address, idKey), type, from: HOST, to: address, body }),
    ]);
  }

  // ---- selection ----

  /** One worker per role among agents bound to the Owner in that role: online first, then trust, then load. */
  private select(owner: string, roles: string[], playbook: PlaybookDefinition): WorkerChoice[] {
    const needed = [...new Set([...roles, ...playbook.stages.map((s) => s.role)])];
    const load = this.loadByWorker();
    const out: WorkerChoice[] = [];
    for (const role of needed) {
      const bound = this.bindings.list({ owner, role }).filter((b) => b.state === 'active');
      const agents = [...new Set(bound.map((b) => b.statement.agent))];
      if (agents.length === 0) {
        const lapsed = this.bindings.list({ owner, role }).length;
        throw new NoCandidateError(
          role,
          owner,
          lapsed > 0 ? ` (${lapsed} binding(s) in that role expired or were withdrawn)` : '',
        );
      }
      const ranked = agents
        .map((did) => {
          const online = this.presenceOf(did);
          const presence: WorkerChoice['presence'] =
            online === true ? 'online' : online === false ? 'offline' : 'unknown';
          const trust = this.trustOf(did);
          return { did, presence, trust, load: load.get(did) ?? 0 };
        })
        .sort(
          (a, b) =>
            rank(a.presence) - rank(b.presence) ||
            b.trust - a.trust ||
            a.load - b.load ||
            (a.did < b.did ? -1 : 1),
        );
      const best = ranked[0] as (typeof ranked)[number];
      if (best.presence === 'offline')
        throw new NoCandidateError(role, owner, `: all ${agents.length} bound worker(s) are offline`);
      const binding = bound.find((b) => b.statement.agent === best.did) as BindingView;
      out.push({
        role,
        did: best.did,
        binding_id: binding.id,
        presence: best.presence,
        trust: best.trust,
        load: best.load,
        candidates: agents.length,
        reason: `${best.presence}, trust ${best.trust.toFixed(2)}, ${best.load} running task(s); best of ${agents.length} bound as ${role}`,
      });
    }
    return out;
  }

  private presenceOf(did: string): boolean | undefined {
    const fromRelay = this.services.presence?.(did);
    if (fromRelay !== undefined) return fromRelay;
    const value = this.system.info(did)?.value as { presence?: string } | undefined;
    return value?.presence === 'online' ? true : undefined;
  }

  private trustOf(did: string): number {
    try {
      const s = this.services.authority?.trust?.score(did)?.score;
      return typeof s === 'number' && Number.isFinite(s) ? s : 0.5;
    } catch {
      return 0.5;
    }
  }

  /** Running stage tasks per worker across the runs that are not finished. */
  private loadByWorker(): Map<string, number> {
    const load = new Map<string, number>();
    for (const r of this.parts.runs.list()) {
      const value = this.system.info(runAddress(r.run_id))?.value;
      const state = runStateOf(value);
      if (state === 'completed' || state === 'failed' || state === 'aborted' || value === 'pending') continue;
      for (const s of this.parts.runs.status(r.run_id).stages)
        if (s.status === 'running' && s.worker !== null) load.set(s.worker, (load.get(s.worker) ?? 0) + 1);
    }
    return load;
  }

  // ---- helpers ----

  private resolvePlaybook(playbook: unknown, roles: string[]): PlaybookDefinition {
    const def = this.parts.runs.resolvePlaybook(playbook);
    const missing = def.stages.map((s) => s.role).filter((role) => !roles.includes(role));
    if (missing.length > 0)
      throw new AuthorityInputError(
        `"required_roles" expected every role of playbook ${def.name} (${[...new Set(missing)].join(', ')} missing)`,
      );
    return def;
  }

  private checkDispatch(request: DispatchRequest): DispatchRequest {
    if (request === null || typeof request !== 'object')
      throw new AuthorityInputError('dispatch expected an object');
    if (typeof request.session_id !== 'string' || !SESSION.test(request.session_id))
      throw new AuthorityInputError(
        `"session_id" expected 1 to 128 characters of [A-Za-z0-9_.:@-] (starting with a letter or digit), got ${describeValue(request.session_id)}`,
      );
    if (!isObjective(request.objective))
      throw new AuthorityInputError(
        `"objective" expected a non-empty string of at most ${OBJECTIVE_MAX_CHARS} characters`,
      );
    if (
      !Array.isArray(request.required_roles) ||
      request.required_roles.length === 0 ||
      request.required_roles.length > 32
    )
      throw new AuthorityInputError(
        `"required_roles" expected 1 to 32 role names, got ${describeValue(request.required_roles)}`,
      );
    for (const [i, role] of request.required_roles.entries()) checkRole(role, `required_roles[${i}]`);
    if (
      request.source !== undefined &&
      (request.source === null || typeof request.source !== 'object' || Array.isArray(request.source))
    )
      throw new AuthorityInputError(
        '"source" expected an object such as {"channel":"sdk","message_ref":"msg_001"}',
      );
    if (request.source !== undefined && JSON.stringify(request.source).length > 4096)
      throw new AuthorityInputError('"source" expected at most 4096 bytes of JSON');
    if (request.callback_url !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(String(request.callback_url));
      } catch {
        url = undefined;
      }
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
        throw new AuthorityInputError(
          `"callback_url" expected an http(s) URL, got ${describeValue(request.callback_url)}`,
        );
    }
    if (request.secretary_did !== undefined && !isDid(request.secretary_did))
      throw new AuthorityInputError(
        `"secretary_did" expected a DID, got ${describeValue(request.secretary_did)}`,
      );
    return { ...request, required_roles: [...new Set(request.required_roles)] };
  }

  /** The Secretary that takes the dispatch: named, or the actor itself when it is one, or the Owner's first active one. */
  private pickSecretary(owner: string, actor: string, named?: string): string {
    const active = this.list(owner).filter(
      (s) => this.bindings.active(owner, s.did, 'secretary') !== undefined,
    );
    const pick =
      named !== undefined
        ? active.find((s) => s.did === named)
        : (active.find((s) => s.did === actor) ?? active[0]);
    if (pick === undefined)
      throw new SecretaryNotFoundError(
        named !== undefined
          ? `${named} is not an active secretary of ${owner} on this host`
          : `owner ${owner} has no active secretary on this host`,
      );
    return pick.did;
  }

  private requireDispatch(sessionId: unknown): string {
    if (typeof sessionId !== 'string' || sessionId.length === 0)
      throw new AuthorityInputError(`"session_id" expected a session id, got ${describeValue(sessionId)}`);
    const address = dispatchAddress(sessionId);
    if (!this.system.has(address)) throw new DispatchNotFoundError(sessionId);
    return address;
  }

  private context(address: string): SecretaryContext {
    return this.system.snapshot(address).context as SecretaryContext;
  }

  private stateOf(address: string): DispatchState {
    return this.system.info(address)?.value as DispatchState;
  }

  private async waitStarted(address: string, waitMs = 30_000): Promise<DispatchStatus> {
    await this.waitFor(
      address,
      (s) => s === 'waiting' || s === 'reporting' || isTerminal(s) || s === 'aborting',
      waitMs,
    );
    return this.status(this.context(address).session_id);
  }

  /** Resolves when the dispatch's state satisfies `done`, or after `timeoutMs` (the caller reads the state). */
  private async waitFor(address: string, done: (state: string) => boolean, timeoutMs: number): Promise<void> {
    if (done(this.stateOf(address))) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      const off = this.system.events.subscribe((events) => {
        if (events.some((e) => e.actor === address) && done(this.stateOf(address))) finish();
      });
      function finish() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }
}

/** Without a playbook: one stage per required role, in order, each reading the ones before. */
function defaultPlaybook(roles: string[]): Record<string, unknown> {
  return {
    name: 'dispatch',
    version: '1.0.0',
    description: 'One stage per required role, in the order given.',
    stages: roles.map((role, i) => ({
      id: role,
      role,
      brief: `Do the ${role} work for the objective.`,
      ...(i === 0 ? {} : { inputs: roles.slice(0, i) }),
      output: { kind: 'text', key: `${role}/result` },
    })),
  };
}

function rank(presence: WorkerChoice['presence']): number {
  return presence === 'online' ? 0 : presence === 'unknown' ? 1 : 2;
}

/** The dispatch that started a run (its run id is `run-` + the dispatch's hash), if it can be one. */
function dispatchOfRun(runId: unknown): string | undefined {
  return typeof runId === 'string' && runId.startsWith('run-') ? DISPATCH_PREFIX + runId.slice(4) : undefined;
}
