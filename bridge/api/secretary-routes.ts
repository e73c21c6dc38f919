// Local API routes of who acts for whom: Owners, bindings, Secretaries, dispatch / abort / status, and the gatekeeper queue.
import { Gatekeeper } from '../../actors/did.ts';
import type { DispatchRequest } from '../../actors/secretary.ts';
import type { GatekeeperMode } from '../../machines/did.ts';
import type { SignedBinding, SignedUnbinding } from '../../runtime/authority/binding.ts';
import { describeValue } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import { RequestError } from '../../runtime/host.ts';
import { isDid } from '../../runtime/identity/did.ts';
import type { Relay } from '../relay/relay.ts';
import { obj, str, type TeamworkRoute } from './teamwork-routes.ts';

const optStr = (b: Record<string, unknown>, field: string) => str(b, field, false);
const reqStr = (b: Record<string, unknown>, field: string) => str(b, field) as string;

/** `expires_at` (ms since the epoch) or `expires_in_ms` (from now). */
function expiry(host: Host, b: Record<string, unknown>): number | undefined {
  const at = b['expires_at'];
  const inMs = b['expires_in_ms'];
  if (at !== undefined) {
    if (typeof at !== 'number' || !Number.isSafeInteger(at))
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"expires_at" expected ms since the epoch, got ${describeValue(at)}`,
      );
    return at;
  }
  if (inMs !== undefined) {
    if (typeof inMs !== 'number' || !Number.isSafeInteger(inMs) || inMs <= 0)
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"expires_in_ms" expected a positive integer, got ${describeValue(inMs)}`,
      );
    return host.clock.now() + inMs;
  }
  return undefined;
}

/**
 * Installs the routes. Every route that acts for someone takes `actor_did` and, when the actor's key is
 * not on this host, an `actor_proof` signed by it (see docs/authority.md); the API token alone proves
 * only that the caller is this host's user, who holds the keys of the local identities.
 */
export function installSecretaryRoutes(host: Host, route: TeamworkRoute, relay?: Relay): Gatekeeper {
  const s = host.teamwork.secretaries;
  s.attach({
    authority: host.authority,
    ...(relay === undefined
      ? {}
      : {
          // The relay knows remote DIDs' presence; a local identity it has not seen is not "offline".
          presence: (did: string) =>
            relay.isOnline(did) ? true : host.keystore.has(did) ? undefined : false,
        }),
  });
  const gatekeeper = new Gatekeeper(host.system);
  const dec = (v: string | undefined) => decodeURIComponent(v ?? '');

  route('POST', '/v1/owners', (_u, _p, body) => {
    const b = obj(body);
    const did = optStr(b, 'did');
    return s.registerOwner({ name: reqStr(b, 'name'), ...(did === undefined ? {} : { did }) });
  });
  route('GET', '/v1/owners', () => ({ owners: s.owners.list() }));

  route('POST', '/v1/bindings', (_u, _p, body) => {
    const b = obj(body);
    const expiresAt = expiry(host, b);
    const actor = optStr(b, 'actor_did');
    return s.bind({
      owner: reqStr(b, 'owner_did'),
      agent: reqStr(b, 'agent_did'),
      role: optStr(b, 'role') ?? 'member',
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(actor === undefined ? {} : { actor }),
    });
  });
  route('GET', '/v1/bindings', (url) => {
    const filter: { owner?: string; agent?: string; role?: string } = {};
    for (const [name, key] of [
      ['owner', 'owner'],
      ['agent', 'agent'],
      ['role', 'role'],
    ] as const) {
      const v = url.searchParams.get(name);
      if (v !== null && v !== '') filter[key] = v;
    }
    return { bindings: s.bindings.list(filter) };
  });
  route('POST', '/v1/bindings/unbind', async (_u, _p, body) => {
    const b = obj(body);
    const [agent, id, role, actor] = ['agent_did', 'id', 'role', 'actor_did'].map((f) => optStr(b, f));
    return {
      unbound: await s.unbind({
        owner: reqStr(b, 'owner_did'),
        ...(agent === undefined ? {} : { agent }),
        ...(id === undefined ? {} : { id }),
        ...(role === undefined ? {} : { role }),
        ...(actor === undefined ? {} : { actor }),
      }),
    };
  });
  // Bindings and unbindings signed on other hosts (as the relay distributes them).
  route('POST', '/v1/bindings/import', async (_u, _p, body) => {
    const b = obj(body);
    if (b['unbinding'] !== undefined) {
      await s.bindings.importUnbinding(b['unbinding'] as SignedUnbinding);
      return { imported: 'unbinding' };
    }
    return s.bindings.import(b['binding'] as SignedBinding);
  });

  route('POST', '/v1/secretaries', (_u, _p, body) => {
    const b = obj(body);
    const [name, actor] = [optStr(b, 'name'), optStr(b, 'actor_did')];
    const expiresAt = expiry(host, b);
    return s.register({
      owner: reqStr(b, 'owner_did'),
      ...(name === undefined ? {} : { name }),
      ...(actor === undefined ? {} : { actor }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    });
  });
  route('GET', '/v1/secretaries', (url) => ({
    secretaries: s.list(url.searchParams.get('owner') ?? undefined),
  }));

  route('POST', '/v1/dispatch', (_u, _p, body) => s.dispatch(obj(body) as unknown as DispatchRequest));
  route('GET', '/v1/dispatches', () => ({ dispatches: s.listDispatches() }));
  route('GET', '/v1/dispatches/:session', (url, [session]) => {
    const actor = url.searchParams.get('actor');
    return s.status(dec(session), actor === null ? {} : { actor });
  });
  // The same read for an actor presenting a capability token (or a proof): in a body, not the URL.
  route('POST', '/v1/dispatches/:session/status', (_u, [session], body) => {
    const b = obj(body);
    return s.status(dec(session), {
      actor: reqStr(b, 'actor_did'),
      ...(b['actor_proof'] === undefined ? {} : { proof: b['actor_proof'] }),
      ...(b['token'] === undefined ? {} : { token: b['token'] }),
    });
  });
  route('POST', '/v1/dispatches/:session/abort', (_u, [session], body) => {
    const b = obj(body);
    const reason = optStr(b, 'reason');
    return s.abort({
      session_id: dec(session),
      actor_did: reqStr(b, 'actor_did'),
      ...(reason === undefined ? {} : { reason }),
      ...(b['actor_proof'] === undefined ? {} : { actor_proof: b['actor_proof'] }),
      ...(b['token'] === undefined ? {} : { token: b['token'] }),
    });
  });

  /** The DID itself, or an Owner it is bound to, may change its gatekeeper and answer what it holds. */
  const answering = (did: string, b: Record<string, unknown>, action: string) => {
    if (!isDid(did))
      throw new RequestError('ANX_REQUEST_INVALID', `expected a DID in the path, got ${describeValue(did)}`);
    const actor = optStr(b, 'actor_did') ?? did;
    const owners = s.bindings
      .list({ agent: did })
      .filter((x) => x.state === 'active')
      .map((x) => x.statement.owner);
    s.authorizer.authorize({
      actor,
      principal: owners.includes(actor) ? actor : did,
      action,
      resource: did,
      proof: b['actor_proof'],
      write: action !== 'gatekeeper.read',
    });
  };
  route('GET', '/v1/gatekeeper/:did', (_u, [did]) => gatekeeper.show(dec(did)));
  route('POST', '/v1/gatekeeper/:did', (_u, [did], body) => {
    const b = obj(body);
    const d = dec(did);
    const mode = b['mode'];
    if (mode !== undefined && mode !== 'public' && mode !== 'ask' && mode !== 'private')
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"mode" expected public, ask or private, got ${describeValue(mode)}`,
      );
    const lists: { allow?: string[]; block?: string[] } = {};
    for (const field of ['allow', 'block'] as const) {
      const v = b[field];
      if (v === undefined) continue;
      if (!Array.isArray(v) || !v.every((x) => isDid(x)))
        throw new RequestError(
          'ANX_REQUEST_INVALID',
          `"${field}" expected a list of DIDs, got ${describeValue(v)}`,
        );
      lists[field] = v as string[];
    }
    const ttl = b['pending_ttl_ms'];
    if (ttl !== undefined && typeof ttl !== 'number')
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"pending_ttl_ms" expected a number of milliseconds, got ${describeValue(ttl)}`,
      );
    answering(d, b, 'gatekeeper.set');
    return gatekeeper.set(d, {
      ...(mode === undefined ? {} : { mode: mode as GatekeeperMode }),
      ...lists,
      ...(ttl === undefined ? {} : { pending_ttl_ms: ttl as number }),
    });
  });
  route('GET', '/v1/gatekeeper/:did/pending', async (_u, [did]) => ({
    did: dec(did),
    pending: await gatekeeper.pending(dec(did)),
  }));
  route('POST', '/v1/gatekeeper/:did/approve', async (_u, [did], body) => {
    const b = obj(body);
    answering(dec(did), b, 'gatekeeper.answer');
    return { approved: await gatekeeper.approve(dec(did), reqStr(b, 'id'), { allow: b['allow'] !== false }) };
  });
  route('POST', '/v1/gatekeeper/:did/deny', async (_u, [did], body) => {
    const b = obj(body);
    answering(dec(did), b, 'gatekeeper.answer');
    return { denied: await gatekeeper.deny(dec(did), reqStr(b, 'id'), { block: b['block'] === true }) };
  });
  return gatekeeper;
}
