// The SDK's capability tokens (`client.tokens`): issue, delegate, revoke, inspect and check as the client's identity.
import type { TokenConstraints, TokenGrant, TokenLink } from '../../runtime/authority/tokens.ts';
import type { Host } from '../../runtime/host.ts';
import type { ApiClient } from '../api/client.ts';
import { SdkArgumentError } from './errors.ts';
import { requireDid, requireString } from './validate.ts';

export type { TokenConstraints, TokenGrant, TokenLink };

/** A token and what it grants. `token` is the text to hand to its holder (`anx1.…`). */
export interface IssuedToken {
  token: string;
  grant: TokenGrant;
}

/** What a token says, whether it is valid now, and why not when it is revoked. */
export type TokenInspection = TokenGrant & {
  links: TokenLink[];
  valid_now: boolean;
  /** Why the token is revoked, or null. */
  revoked: string | null;
  /** Why its revocation status cannot be told now (revocation list unreadable, or stale), or null. */
  unverifiable: string | null;
};

/** When a grant holds: absolute times (ms since the epoch), or a lifetime from now. */
export interface TokenWindow {
  notBefore?: number;
  expiresAt?: number;
  ttlMs?: number;
}

export interface IssueOptions extends TokenWindow {
  /** Who may use (or narrow and pass on) the grant. */
  audience: string;
  /** A resource of this identity (`*` for all of them; a path narrows by `/` segments). */
  resource: string;
  actions: string[];
  constraints?: TokenConstraints;
}

export interface DelegateOptions extends TokenWindow {
  audience: string;
  /** Default: the parent's resource; only ever narrower. */
  resource?: string;
  /** Default: the parent's actions; only ever fewer. */
  actions?: string[];
  /** Merged over the parent's constraints, which stay in force. */
  constraints?: TokenConstraints;
}

/**
 * Capability tokens, as the client's identity. Verification is offline and delegation can only narrow:
 * see docs/capability-tokens.md.
 *
 * @example
 * ```ts
 * const { token } = await owner.tokens.issue({
 *   audience: dev.did, resource: 'vault/team/src', actions: ['vault.write'], ttlMs: 3_600_000,
 * });
 * const narrowed = await dev.tokens.delegate(token, { audience: helper.did, resource: 'vault/team/src/ui' });
 * await helper.tokens.check(narrowed.token, { owner: owner.did, resource: 'vault/team/src/ui', action: 'vault.write' });
 * await owner.tokens.revoke(token);   // refused on every host of the relay from now on
 * ```
 */
export interface TokensApi {
  /** A root grant signed by this identity, the resource's owner. */
  issue(options: IssueOptions): Promise<IssuedToken>;
  /** Narrows a token this identity holds (it is the last audience) for another DID. */
  delegate(parent: string, options: DelegateOptions): Promise<IssuedToken>;
  /** Revokes the token's last link (or `link`, an index into its chain) this identity signed. */
  revoke(token: string, options?: { reason?: string; link?: number }): Promise<{ id: string; by: string }>;
  inspect(token: string): Promise<TokenInspection>;
  /** Checks that the token lets this identity do `action` on `resource` of `owner`; throws the refusal. */
  check(
    token: string,
    request: { owner: string; resource: string; action: string; bytes?: number },
  ): Promise<TokenGrant>;
}

/** How token calls travel: the local API, or the host in this process. */
export interface TokenTransport {
  issue(request: Record<string, unknown>): Promise<IssuedToken>;
  delegate(request: Record<string, unknown>): Promise<IssuedToken>;
  revoke(request: Record<string, unknown>): Promise<{ id: string; by: string }>;
  inspect(token: string): Promise<TokenInspection>;
  check(request: Record<string, unknown>): Promise<TokenGrant>;
}

export function tokenApiTransport(api: ApiClient): TokenTransport {
  return {
    issue: (r) => api.post('/v1/tokens', r),
    delegate: (r) => api.post('/v1/tokens/delegate', r),
    revoke: (r) => api.post('/v1/tokens/revoke', r),
    inspect: (token) => api.post('/v1/tokens/inspect', { token }),
    check: (r) => api.post('/v1/tokens/check', r),
  };
}

export function tokenHostTransport(host: Host): TokenTransport {
  const t = host.authority.tokens;
  const window = (r: Record<string, unknown>) => ({
    ...(r['not_before'] === undefined ? {} : { notBefore: r['not_before'] as number }),
    ...(r['expires_at'] === undefined ? {} : { expiresAt: r['expires_at'] as number }),
    ...(r['ttl_ms'] === undefined ? {} : { ttlMs: r['ttl_ms'] as number }),
  });
  const optional = <K extends string>(r: Record<string, unknown>, key: K) =>
    (r[key] === undefined ? {} : { [key]: r[key] }) as Partial<Record<K, never>>;
  return {
    issue: async (r) =>
      t.issue({
        issuer: r['issuer'] as string,
        audience: r['audience'] as string,
        resource: r['resource'] as string,
        actions: r['actions'] as string[],
        ...optional(r, 'constraints'),
        ...window(r),
      }),
    delegate: async (r) =>
      t.delegate({
        parent: r['parent'] as string,
        audience: r['audience'] as string,
        ...optional(r, 'resource'),
        ...optional(r, 'actions'),
        ...optional(r, 'constraints'),
        ...window(r),
      }),
    revoke: (r) =>
      t.revoke({
        token: r['token'] as string,
        by: r['by'] as string,
        ...optional(r, 'reason'),
        ...(r['link'] === undefined ? {} : { linkIndex: r['link'] as number }),
      }),
    inspect: async (token) => host.authority.inspectToken(token),
    check: async (r) =>
      t.check(r['token'] as string, {
        actor: r['actor'] as string,
        owner: r['owner'] as string,
        resource: r['resource'] as string,
        action: r['action'] as string,
        ...(r['bytes'] === undefined ? {} : { bytes: r['bytes'] as number }),
      }),
  };
}

function windowOf(options: TokenWindow, argument: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, wire] of [
    ['notBefore', 'not_before'],
    ['expiresAt', 'expires_at'],
    ['ttlMs', 'ttl_ms'],
  ] as const) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0)
      throw new SdkArgumentError(`${argument}.${key}`, 'a non-negative integer (ms)', value);
    out[wire] = value;
  }
  return out;
}

function actionsOf(argument: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((a) => typeof a === 'string' && a !== ''))
    throw new SdkArgumentError(argument, 'a non-empty list of action names', value);
  return value as string[];
}

function objectOf<T>(argument: string, value: T | undefined): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new SdkArgumentError(argument, 'an object', value);
  return value as T;
}

/** The `tokens` namespace of a client acting as `did`, with argument checks at the edge. */
export function tokensApi(
  did: string,
  transport: () => TokenTransport,
  ensureOpen: (operation: string) => void,
): TokensApi {
  const token = (value: unknown) => requireString('token', value, 'a capability token (anx1.…)');
  return {
    issue: async (options) => {
      ensureOpen('tokens.issue()');
      const o = objectOf('options', options);
      return transport().issue({
        issuer: did,
        audience: requireDid('options.audience', o.audience),
        resource: requireString('options.resource', o.resource, 'a resource name'),
        actions: actionsOf('options.actions', o.actions),
        ...(o.constraints === undefined
          ? {}
          : { constraints: objectOf('options.constraints', o.constraints) }),
        ...windowOf(o, 'options'),
      });
    },
    delegate: async (parent, options) => {
      ensureOpen('tokens.delegate()');
      const text = token(parent);
      const o = objectOf('options', options);
      const request = {
        parent: text,
        audience: requireDid('options.audience', o.audience),
        ...(o.resource === undefined
          ? {}
          : { resource: requireString('options.resource', o.resource, 'a resource name') }),
        ...(o.actions === undefined ? {} : { actions: actionsOf('options.actions', o.actions) }),
        ...(o.constraints === undefined
          ? {}
          : { constraints: objectOf('options.constraints', o.constraints) }),
        ...windowOf(o, 'options'),
      };
      // The holder signs the new link: only a token held by this identity is narrowed as it.
      const holder = (await transport().inspect(text)).holder;
      if (holder !== did)
        throw new SdkArgumentError('parent', `a token held by ${did}`, `a token held by ${holder}`);
      return transport().delegate(request);
    },
    revoke: async (value, options = {}) => {
      ensureOpen('tokens.revoke()');
      const o = objectOf('options', options);
      if (o.link !== undefined && (!Number.isInteger(o.link) || o.link < 0))
        throw new SdkArgumentError('options.link', 'a link index (0 = the root)', o.link);
      return transport().revoke({
        token: token(value),
        by: did,
        ...(o.reason === undefined ? {} : { reason: requireString('options.reason', o.reason) }),
        ...(o.link === undefined ? {} : { link: o.link }),
      });
    },
    inspect: async (value) => {
      ensureOpen('tokens.inspect()');
      return transport().inspect(token(value));
    },
    check: async (value, request) => {
      ensureOpen('tokens.check()');
      const r = objectOf('request', request);
      if (r.bytes !== undefined && (!Number.isInteger(r.bytes) || r.bytes < 0))
        throw new SdkArgumentError('request.bytes', 'a non-negative integer', r.bytes);
      return transport().check({
        token: token(value),
        actor: did,
        owner: requireDid('request.owner', r.owner),
        resource: requireString('request.resource', r.resource, 'a resource name'),
        action: requireString('request.action', r.action, 'an action name'),
        ...(r.bytes === undefined ? {} : { bytes: r.bytes }),
      });
    },
  };
}
