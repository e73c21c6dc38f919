// The SDK's orchestration calls (owner.register/bind, secretary.register/dispatch/abort/status) over either mode's transport.
import type { DispatchRequest, DispatchStatus, SecretaryRecord } from '../../actors/secretary.ts';
import type { BindingView } from '../../runtime/authority/binding.ts';
import type { OwnerRecord } from '../../runtime/authority/owners.ts';
import type { Host } from '../../runtime/host.ts';
import type { ApiClient } from '../api/client.ts';
import { SdkArgumentError } from './errors.ts';
import { requireDid, requireString } from './validate.ts';

export type Owner = OwnerRecord;
export type Binding = BindingView;
export type Secretary = SecretaryRecord & { binding: Binding };
export type Dispatch = DispatchStatus;

/** What `secretary.dispatch` takes: the wire names of the reference flow. */
export type DispatchOptions = Omit<DispatchRequest, 'actor_proof'>;

export interface BindOptions {
  /** `secretary` lets the agent act for the Owner; a work role (e.g. `developer`) makes it a worker. Default `member`. */
  role?: string;
  /** When the binding lapses (default: a year). */
  expiresAt?: Date | number;
}

/** Owners and the agents bound to them. */
export interface OwnerApi {
  /** Registers an Owner DID (a new local identity) named `name`. */
  register(name: string): Promise<Owner>;
  /** Binds `agentDid` to the Owner: signed by the Owner, countersigned by the agent (both keys on the host). */
  bind(ownerDid: string, agentDid: string, options?: BindOptions): Promise<Binding>;
  /** Withdraws the agent's active bindings to the Owner (in `role` when given); takes effect at once. */
  unbind(ownerDid: string, agentDid: string, options?: { role?: string }): Promise<Binding[]>;
}

/** Stops a dispatched objective: the actor must be the Owner, its Secretary, or hold `token`. */
export interface AbortRequest {
  session_id: string;
  actor_did: string;
  reason?: string;
  token?: string;
}

/** Secretaries: register one, dispatch objectives to it, abort them, read their status. */
export interface SecretaryApi {
  register(ownerDid: string, options?: { name?: string }): Promise<Secretary>;
  /** Idempotent on `session_id`; resolves once the run has started, with the run and Enclave ids. */
  dispatch(request: DispatchOptions): Promise<Dispatch>;
  abort(request: AbortRequest): Promise<Dispatch>;
  /** Who does what: the Secretary, the workers chosen and why, and the run's stages. */
  status(sessionId: string, options?: { actor_did?: string }): Promise<Dispatch>;
}

/** How the calls travel: the local API, or the host in this process. */
export interface OrchestrationTransport {
  registerOwner(name: string): Promise<Owner>;
  bind(owner: string, agent: string, role: string, expiresAt: number | undefined): Promise<Binding>;
  unbind(owner: string, agent: string, role: string | undefined): Promise<Binding[]>;
  registerSecretary(owner: string, name: string | undefined): Promise<Secretary>;
  dispatch(request: DispatchOptions): Promise<Dispatch>;
  abort(request: AbortRequest): Promise<Dispatch>;
  status(sessionId: string, actor: string | undefined): Promise<Dispatch>;
}

export function apiTransport(api: ApiClient): OrchestrationTransport {
  const enc = encodeURIComponent;
  return {
    registerOwner: (name) => api.post('/v1/owners', { name }),
    bind: (owner, agent, role, expiresAt) =>
      api.post('/v1/bindings', {
        owner_did: owner,
        agent_did: agent,
        role,
        ...(expiresAt === undefined ? {} : { expires_at: expiresAt }),
      }),
    unbind: async (owner, agent, role) =>
      (
        await api.post<{ unbound: Binding[] }>('/v1/bindings/unbind', {
          owner_did: owner,
          agent_did: agent,
          ...(role === undefined ? {} : { role }),
        })
      ).unbound,
    registerSecretary: (owner, name) =>
      api.post('/v1/secretaries', { owner_did: owner, ...(name === undefined ? {} : { name }) }),
    dispatch: (request) => api.post('/v1/dispatch', request),
    abort: ({ session_id, ...rest }) => api.post(`/v1/dispatches/${enc(session_id)}/abort`, rest),
    status: (sessionId, actor) =>
      api.get(`/v1/dispatches/${enc(sessionId)}${actor === undefined ? '' : `?actor=${enc(actor)}`}`),
  };
}

export function hostTransport(host: Host): OrchestrationTransport {
  const s = host.teamwork.secretaries;
  s.attach({ authority: host.authority });
  return {
    registerOwner: (name) => s.registerOwner({ name }),
    bind: (owner, agent, role, expiresAt) =>
      s.bind({ owner, agent, role, ...(expiresAt === undefined ? {} : { expiresAt }) }),
    unbind: (owner, agent, role) => s.unbind({ owner, agent, ...(role === undefined ? {} : { role }) }),
    registerSecretary: (owner, name) => s.register({ owner, ...(name === undefined ? {} : { name }) }),
    dispatch: (request) => s.dispatch(request),
    abort: (request) => s.abort(request),
    status: async (sessionId, actor) => s.status(sessionId, actor === undefined ? {} : { actor }),
  };
}

/** The `owner` and `secretary` namespaces of a client, with argument checks at the edge. */
export function orchestration(
  transport: () => OrchestrationTransport,
  ensureOpen: (operation: string) => void,
): { owner: OwnerApi; secretary: SecretaryApi } {
  const expiry = (v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    const ms = v instanceof Date ? v.getTime() : v;
    if (typeof ms !== 'number' || !Number.isFinite(ms))
      throw new SdkArgumentError('expiresAt', 'a Date or ms since the epoch', v);
    return Math.round(ms);
  };
  return {
    owner: {
      register: async (name) => {
        ensureOpen('owner.register()');
        return transport().registerOwner(requireString('name', name, 'a name'));
      },
      bind: async (ownerDid, agentDid, options) => {
        ensureOpen('owner.bind()');
        requireDid('ownerDid', ownerDid);
        requireDid('agentDid', agentDid);
        const role =
          options?.role === undefined ? 'member' : requireString('role', options.role, 'a role name');
        return transport().bind(ownerDid, agentDid, role, expiry(options?.expiresAt));
      },
      unbind: async (ownerDid, agentDid, options) => {
        ensureOpen('owner.unbind()');
        requireDid('ownerDid', ownerDid);
        requireDid('agentDid', agentDid);
        const role =
          options?.role === undefined ? undefined : requireString('role', options.role, 'a role name');
        return transport().unbind(ownerDid, agentDid, role);
      },
    },
    secretary: {
      register: async (ownerDid, options) => {
        ensureOpen('secretary.register()');
        requireDid('ownerDid', ownerDid);
        const name = options?.name === undefined ? undefined : requireString('name', options.name, 'a name');
        return transport().registerSecretary(ownerDid, name);
      },
      dispatch: async (request) => {
        ensureOpen('secretary.dispatch()');
        if (request === null || typeof request !== 'object')
          throw new SdkArgumentError(
            'request',
            'an object with session_id, owner_did, actor_did, objective, required_roles',
            request,
          );
        requireString('session_id', request.session_id, 'a session id');
        requireDid('owner_did', request.owner_did);
        requireDid('actor_did', request.actor_did);
        requireString('objective', request.objective, 'the objective');
        if (!Array.isArray(request.required_roles) || request.required_roles.length === 0)
          throw new SdkArgumentError('required_roles', 'a non-empty list of roles', request.required_roles);
        return transport().dispatch(request);
      },
      abort: async (request) => {
        ensureOpen('secretary.abort()');
        if (request === null || typeof request !== 'object')
          throw new SdkArgumentError('request', 'an object with session_id and actor_did', request);
        requireString('session_id', request.session_id, 'a session id');
        requireDid('actor_did', request.actor_did);
        return transport().abort(request);
      },
      status: async (sessionId, options) => {
        ensureOpen('secretary.status()');
        requireString('sessionId', sessionId, 'a session id');
        if (options?.actor_did !== undefined) requireDid('actor_did', options.actor_did);
        return transport().status(sessionId, options?.actor_did);
      },
    },
  };
}
