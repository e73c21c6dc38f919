// Local API routes of the authority layer: audit log, freeze and thaw, capability tokens, revocations and trust.
import type { AuditFilter } from '../../runtime/authority/index.ts';
import { describeValue } from '../../runtime/errors.ts';
import type { Host } from '../../runtime/host.ts';
import { RequestError } from '../../runtime/host.ts';
import type { Relay } from '../relay/relay.ts';
import { obj, optList, optStr, str, type TeamworkRoute } from './teamwork-routes.ts';

export type AuthorityRoute = TeamworkRoute;

function optInt(source: Record<string, unknown> | URLSearchParams, field: string): number | undefined {
  const raw = source instanceof URLSearchParams ? source.get(field) : source[field];
  if (raw === undefined || raw === null || raw === '') return undefined;
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new RequestError(
      'ANX_REQUEST_INVALID',
      `"${field}" expected a non-negative integer, got ${describeValue(raw)}`,
    );
  return n;
}

/** Window fields shared by issue and delegate, in the API's snake_case. */
function windowOf(b: Record<string, unknown>) {
  const notBefore = optInt(b, 'not_before');
  const expiresAt = optInt(b, 'expires_at');
  const ttlMs = optInt(b, 'ttl_ms');
  return {
    ...(notBefore === undefined ? {} : { notBefore }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(ttlMs === undefined ? {} : { ttlMs }),
  };
}

/** Installs the authority routes. Freeze and thaw are operator actions: the API token is the operator's. */
export function installAuthorityRoutes(host: Host, route: AuthorityRoute, relay?: Relay): void {
  const a = host.authority;

  route('GET', '/v1/audit', (url) => {
    const q = url.searchParams;
    const decision = q.get('decision');
    if (decision !== null && decision !== 'allow' && decision !== 'deny')
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"decision" expected allow or deny, got ${describeValue(decision)}`,
      );
    const filter: AuditFilter = {};
    if (q.get('action')) filter.action = q.get('action') as string;
    if (decision !== null) filter.decision = decision;
    if (q.get('did')) filter.did = q.get('did') as string;
    const after = optInt(q, 'after');
    if (after !== undefined) filter.afterSeq = after;
    const since = optInt(q, 'since');
    if (since !== undefined) filter.since = since;
    const limit = optInt(q, 'limit');
    if (limit !== undefined) filter.limit = limit;
    if (q.get('reverse') === 'true') filter.reverse = true;
    return { entries: a.audit.list(filter), last_seq: a.audit.lastSeq };
  });
  route('GET', '/v1/audit/verify', async () => {
    // Verify what is on disk: records staged a moment ago land first.
    await a.audit.flush();
    return a.audit.verify();
  });

  route('GET', '/v1/freeze', () => a.freeze.state);
  route('POST', '/v1/freeze', (_u, _p, body) => {
    const b = obj(body);
    return a.freeze.freeze(optStr(b, 'by') ?? 'operator', optStr(b, 'reason'));
  });
  route('POST', '/v1/thaw', (_u, _p, body) => {
    const b = obj(body);
    return a.freeze.thaw(optStr(b, 'by') ?? 'operator', optStr(b, 'reason'));
  });

  route('POST', '/v1/tokens', (_u, _p, body) => {
    const b = obj(body);
    const constraints = b['constraints'];
    return a.tokens.issue({
      issuer: str(b, 'issuer'),
      audience: str(b, 'audience'),
      resource: str(b, 'resource'),
      actions: optList(b, 'actions') ?? [],
      ...(constraints === undefined ? {} : { constraints: constraints as never }),
      ...windowOf(b),
    });
  });
  route('POST', '/v1/tokens/delegate', (_u, _p, body) => {
    const b = obj(body);
    const resource = optStr(b, 'resource');
    const actions = optList(b, 'actions');
    const constraints = b['constraints'];
    return a.tokens.delegate({
      parent: str(b, 'parent'),
      audience: str(b, 'audience'),
      ...(resource === undefined ? {} : { resource }),
      ...(actions === undefined ? {} : { actions }),
      ...(constraints === undefined ? {} : { constraints: constraints as never }),
      ...windowOf(b),
    });
  });
  route('POST', '/v1/tokens/revoke', async (_u, _p, body) => {
    const b = obj(body);
    const by = optStr(b, 'by');
    const reason = optStr(b, 'reason');
    const link = optInt(b, 'link');
    const revoked = await a.tokens.revoke({
      token: str(b, 'token'),
      ...(by === undefined ? {} : { by }),
      ...(reason === undefined ? {} : { reason }),
      ...(link === undefined ? {} : { linkIndex: link }),
    });
    return { ...revoked, distributed: relay?.revocations !== undefined };
  });
  route('POST', '/v1/tokens/inspect', (_u, _p, body) => {
    const b = obj(body);
    return a.inspectToken(str(b, 'token'));
  });
  route('POST', '/v1/tokens/check', (_u, _p, body) => {
    const b = obj(body);
    const bytes = optInt(b, 'bytes');
    const context = b['context'];
    return a.tokens.checkAsync(str(b, 'token'), {
      actor: str(b, 'actor'),
      owner: str(b, 'owner'),
      resource: str(b, 'resource'),
      action: str(b, 'action'),
      ...(context === undefined ? {} : { context: context as never }),
      ...(bytes === undefined ? {} : { bytes }),
    });
  });
  route('GET', '/v1/revocations', () => ({ revocations: a.revocations.all() }));
  route('POST', '/v1/revocations', async (_u, _p, body) => {
    const b = obj(body);
    return { added: await a.revocations.add(b['revocation'] ?? b) };
  });

  route('GET', '/v1/trust', () => ({ scores: a.trust.list() }));
  route('GET', '/v1/trust/:did', (_u, [did]) => {
    const subject = decodeURIComponent(did as string);
    return { ...a.trust.score(subject), attestations: a.trust.attestationsAbout(subject) };
  });
  route('POST', '/v1/trust/attest', (_u, _p, body) => {
    const b = obj(body);
    const value = b['value'];
    if (typeof value !== 'number')
      throw new RequestError(
        'ANX_REQUEST_INVALID',
        `"value" expected an integer from -100 to 100, got ${describeValue(value)}`,
      );
    const note = optStr(b, 'note');
    const ttlMs = optInt(b, 'ttl_ms');
    return a.trust.attest({
      issuer: str(b, 'issuer'),
      subject: str(b, 'subject'),
      value,
      ...(note === undefined ? {} : { note }),
      ...(ttlMs === undefined ? {} : { ttlMs }),
    });
  });
  route('POST', '/v1/trust/attestations', async (_u, _p, body) => {
    const b = obj(body);
    const added = a.trust.addAttestation(b['attestation'] ?? b);
    await a.trust.flush();
    return { added };
  });
}
