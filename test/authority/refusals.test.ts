// Refusals at the entry points: each answers with a typed error, leaves an audit record and changes nothing.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../../bridge/api/client.ts';
import { type ApiServer, startApiServer } from '../../bridge/api/server.ts';
import { signActorProof } from '../../runtime/authority/authorize.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { Host } from '../../runtime/host.ts';
import { didFromPublicKey } from '../../runtime/identity/did.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { forgeChain } from './tokens-fixture.ts';

const HOUR = 60 * 60_000;

let host: Host;
let server: ApiServer;
let api: ApiClient;
let clock: ManualClock;
let owner: string;
let secretary: string;
let dev: string;
let stranger: string;

beforeEach(async () => {
  clock = new ManualClock(Date.now());
  host = await Host.open({ dataDir: tempDir(), noSync: true, clock });
  server = await startApiServer(host, { port: 0, token: 'refusals-test-token-0123456789' });
  api = new ApiClient(server.url, 'refusals-test-token-0123456789');
  owner = (await api.post<{ did: string }>('/v1/owners', { name: 'Kevin' })).did;
  secretary = (
    await api.post<{ did: string }>('/v1/secretaries', { owner_did: owner, name: 'Sec', expires_in_ms: HOUR })
  ).did;
  dev = (await api.post<{ did: string }>('/v1/identities', { name: 'dev' })).did;
  await api.post('/v1/bindings', { owner_did: owner, agent_did: dev, role: 'developer' });
  stranger = (await api.post<{ did: string }>('/v1/identities', { name: 'stranger' })).did;
});

afterEach(async () => {
  await server.close();
  await host.close();
  cleanupTempDirs();
});

const dispatch = (over: Record<string, unknown> = {}) =>
  api.post<{ session_id: string; state: string; run_id: string; enclave_id: string }>('/v1/dispatch', {
    session_id: 'sess_1',
    owner_did: owner,
    actor_did: secretary,
    objective: 'Implement the login module',
    required_roles: ['developer'],
    ...over,
  });

/** What a refused request must not change. */
async function world() {
  await host.system.quiesce();
  return {
    dispatches: host.teamwork.secretaries.listDispatches().map((d) => `${d.session_id}:${d.state}`),
    enclaves: host.teamwork.enclaves.list(),
    runs: host.teamwork.runs.list().map((r) => r.run_id),
    bindings: host.teamwork.secretaries.bindings.list().map((b) => `${b.id}:${b.state}`),
  };
}

/** Expects `call` to fail with `code`, an audit record of the denial, and no change. */
async function expectRefused(call: () => Promise<unknown>, code: string, action: string) {
  const before = await world();
  const auditBefore = host.authority.audit.lastSeq;
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe(code);
  expect((err as ApiError).status).toBeGreaterThanOrEqual(400);
  expect((err as ApiError).status).toBeLessThan(500);
  const denied = host.authority.audit
    .list({ decision: 'deny', afterSeq: auditBefore })
    .filter((e) => e.code === code);
  expect(denied.map((e) => e.action)).toContain(action);
  expect(await world()).toEqual(before);
}

it('a forged actor: a DID whose key is elsewhere, with no proof or a proof by another key', async () => {
  const elsewhere = didFromPublicKey(host.suite.randomBytes(32));
  await expectRefused(() => dispatch({ actor_did: elsewhere }), 'ANX_FORBIDDEN_ACTOR_UNPROVEN', 'dispatch');
  const proof = signActorProof(host.suite, (m) => host.keystore.sign(stranger, m), {
    actor: elsewhere,
    principal: owner,
    action: 'dispatch',
    resource: `dispatch:${owner}/sess_1`,
    ts: clock.now(),
  });
  await expectRefused(
    () => dispatch({ actor_did: elsewhere, actor_proof: proof }),
    'ANX_FORBIDDEN_ACTOR_UNPROVEN',
    'dispatch',
  );
});

it('an unbound agent: neither the owner, nor its secretary, nor a token holder', async () => {
  await expectRefused(() => dispatch({ actor_did: stranger }), 'ANX_FORBIDDEN_NOT_BOUND', 'dispatch');
  // A worker binding lets an agent be picked, not act for the owner.
  await expectRefused(() => dispatch({ actor_did: dev }), 'ANX_FORBIDDEN_ROLE', 'dispatch');
});

it('an expired binding, and an unbinding, take effect at once', async () => {
  clock.advance(HOUR + 1);
  await expectRefused(() => dispatch(), 'ANX_FORBIDDEN_BINDING_EXPIRED', 'dispatch');
  const again = await api.post<{ did: string }>('/v1/bindings', {
    owner_did: owner,
    agent_did: secretary,
    role: 'secretary',
    expires_in_ms: HOUR,
  });
  expect(again).toMatchObject({ state: 'active' });
  await api.post('/v1/bindings/unbind', { owner_did: owner, agent_did: secretary, role: 'secretary' });
  await expectRefused(() => dispatch(), 'ANX_FORBIDDEN_BINDING_REVOKED', 'dispatch');
  // Without a secretary the owner still dispatches itself (through a re-bound one).
  await api.post('/v1/bindings', { owner_did: owner, agent_did: secretary, role: 'secretary' });
  expect((await dispatch({ actor_did: owner })).state).toBe('waiting');
});

it('capability tokens: a valid one lets a stranger dispatch; expired, widened and revoked ones do not', async () => {
  const t = host.authority.tokens;
  const valid = t.issue({
    issuer: owner,
    audience: stranger,
    resource: `dispatch:${owner}`,
    actions: ['dispatch'],
    ttlMs: HOUR,
  });
  const expiring = t.issue({
    issuer: owner,
    audience: stranger,
    resource: `dispatch:${owner}`,
    actions: ['dispatch'],
    ttlMs: 30 * 60_000,
  });
  const revoked = t.issue({
    issuer: owner,
    audience: stranger,
    resource: `dispatch:${owner}`,
    actions: ['dispatch'],
    ttlMs: HOUR,
  });
  await t.revoke({ token: revoked.token, by: owner });
  await expectRefused(
    () => dispatch({ actor_did: stranger, token: revoked.token }),
    'ANX_TOKEN_REVOKED',
    'token.check',
  );
  // Every signature genuine, but the second link grants what the first did not.
  const now = clock.now();
  const widened = forgeChain(host, [
    { iss: owner, aud: dev, res: `dispatch:${owner}`, act: ['status'], nbf: now - 1000, exp: now + HOUR },
    {
      iss: dev,
      aud: stranger,
      res: `dispatch:${owner}`,
      act: ['dispatch', 'status'],
      nbf: now,
      exp: now + HOUR,
    },
  ]);
  await expectRefused(
    () => dispatch({ actor_did: stranger, token: widened }),
    'ANX_TOKEN_WIDENED',
    'token.check',
  );
  clock.advance(31 * 60_000);
  await expectRefused(
    () => dispatch({ actor_did: stranger, token: expiring.token }),
    'ANX_TOKEN_EXPIRED',
    'token.check',
  );
  const ok = await dispatch({ actor_did: stranger, token: valid.token });
  expect(ok.state).toBe('waiting');
  const status = await api.get<{ authorization: { basis: string } }>('/v1/dispatches/sess_1');
  expect(status.authorization.basis).toBe('token');
});

it('a replayed dispatch: the same session with another objective, and a signed request sent twice', async () => {
  const first = await dispatch();
  await expectRefused(
    () => dispatch({ objective: 'Something else entirely' }),
    'ANX_DISPATCH_REPLAYED',
    'dispatch',
  );
  // The identical request is the same dispatch, not a replay.
  expect((await dispatch()).run_id).toBe(first.run_id);
  const proof = signActorProof(host.suite, (m) => host.keystore.sign(secretary, m), {
    actor: secretary,
    principal: owner,
    action: 'dispatch',
    resource: `dispatch:${owner}/sess_2`,
    ts: clock.now(),
  });
  const signed = await dispatch({ session_id: 'sess_2', actor_proof: proof });
  expect(signed.state).toBe('waiting');
  await expectRefused(
    () => dispatch({ session_id: 'sess_2', actor_proof: proof }),
    'ANX_FORBIDDEN_REPLAY',
    'dispatch',
  );
});

it('a vault write by a non-member of the dispatch Enclave', async () => {
  const { enclave_id } = await dispatch();
  await expectRefused(
    () => api.post(`/v1/vault/${enclave_id}/put`, { as: stranger, key: 'impl/diff.patch', content: 'evil' }),
    'ANX_FORBIDDEN_ENCLAVE',
    'vault.write',
  );
  // Members write, and that is audited too.
  await api.post(`/v1/vault/${enclave_id}/put`, { as: dev, key: 'notes/dev.md', content: 'fine' });
  expect(host.authority.audit.list({ action: 'vault.write', decision: 'allow' })).toHaveLength(1);
});

it('abort and run control by an agent that may not act for the owner', async () => {
  const { run_id } = await dispatch();
  await expectRefused(
    () => api.post('/v1/dispatches/sess_1/abort', { actor_did: stranger, reason: 'no' }),
    'ANX_FORBIDDEN_NOT_BOUND',
    'abort',
  );
  await expectRefused(
    () => api.post(`/v1/runs/${run_id}/control`, { action: 'abort', as: stranger }),
    'ANX_FORBIDDEN_NOT_BOUND',
    'abort',
  );
  expect((await api.get<{ state: string }>(`/v1/runs/${run_id}`)).state).toBe('running');
});

it('gatekeeper private: mail from a stranger is refused with a typed event and an audit record', async () => {
  await api.post(`/v1/gatekeeper/${encodeURIComponent(owner)}`, { mode: 'private', allow: [secretary] });
  // Only the DID or its owner answers for its gatekeeper.
  await expectRefused(
    () => api.post(`/v1/gatekeeper/${encodeURIComponent(owner)}`, { mode: 'public', actor_did: stranger }),
    'ANX_FORBIDDEN_NOT_BOUND',
    'gatekeeper.set',
  );
  const auditBefore = host.authority.audit.lastSeq;
  await api.post('/v1/messages', { from: stranger, to: owner, body: { text: 'let me in' } });
  await api.post('/v1/messages', { from: secretary, to: owner, body: { text: 'report' } });
  await host.system.quiesce();
  const inbox = await api.get<{ messages: Array<{ from: string }> }>(
    `/v1/inbox/${encodeURIComponent(owner)}`,
  );
  expect(inbox.messages.map((m) => m.from)).toEqual([secretary]);
  const errors = host.trace(owner, { kinds: ['error'] }).map((e) => (e.payload as { code: string }).code);
  expect(errors).toEqual(['ANX_GATEKEEPER_PRIVATE']);
  const denied = host.authority.audit.list({ decision: 'deny', afterSeq: auditBefore });
  expect(denied).toEqual([
    expect.objectContaining({
      action: 'message.receive',
      actor: stranger,
      principal: owner,
      code: 'ANX_GATEKEEPER_PRIVATE',
    }),
  ]);
});

it('writes while frozen: dispatch and abort are refused; status still reads', async () => {
  await dispatch();
  await host.authority.freeze.freeze(owner, 'incident');
  await expectRefused(() => dispatch({ session_id: 'sess_frozen' }), 'ANX_FROZEN', 'dispatch');
  await expectRefused(
    () => api.post('/v1/dispatches/sess_1/abort', { actor_did: owner }),
    'ANX_FROZEN',
    'abort',
  );
  expect((await api.get<{ state: string }>('/v1/dispatches/sess_1')).state).toBe('waiting');
  await host.authority.freeze.thaw(owner, 'over');
  expect((await api.post<{ state: string }>('/v1/dispatches/sess_1/abort', { actor_did: owner })).state).toBe(
    'aborted',
  );
});
