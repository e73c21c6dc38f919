// Revocation across hosts: a token revoked on one host is refused on another (through a real nats-server hub and leaves),
// hosts that join later learn it from the relay, and forged revocations put straight into the bucket are ignored.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { JETSTREAM_DOMAIN } from '../../bridge/relay/nats-server.ts';
import { revocationKey } from '../../bridge/relay/revocations.ts';
import { REVOCATION_BUCKET } from '../../bridge/relay/subjects.ts';
import { toB64u } from '../../runtime/authority/canonical.ts';
import { revocationSigningInput } from '../../runtime/authority/revocation.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { waitFor } from '../helpers/daemon.ts';
import { type Joined, twoLeafRelay } from './relay-fixture.ts';
import { codeOf } from './tokens-fixture.ts';

const relay = twoLeafRelay();

const join = (url: string) => relay.join(url, { synced: true });

describe('revocation over the relay', () => {
  it('makes another host refuse a revoked token, and a host that joins later too', async () => {
    const a = await join(relay.leaf(0).url);
    const b = await join(relay.leaf(1).url);
    const owner = (await a.host.createIdentity({ name: 'owner' })).did;
    const worker = (await b.host.createIdentity({ name: 'worker' })).did;
    const helper = (await b.host.createIdentity({ name: 'helper' })).did;
    const { token } = a.host.authority.tokens.issue({
      issuer: owner,
      audience: worker,
      resource: 'vault:enc1',
      actions: ['vault.put'],
    });
    // The worker's host delegates on without the owner's key and verifies offline.
    const delegated = b.host.authority.tokens.delegate({
      parent: token,
      audience: helper,
      resource: 'vault:enc1/notes',
    }).token;
    const request = { actor: helper, owner, resource: 'vault:enc1/notes/x', action: 'vault.put' };
    expect(codeOf(() => b.host.authority.tokens.check(delegated, request))).toBe('ALLOWED');

    await a.host.authority.tokens.revoke({ token, reason: 'compromised worker' });
    await waitFor(
      () => codeOf(() => b.host.authority.tokens.check(delegated, request, { audit: false })) !== 'ALLOWED',
      30_000,
      'the revocation on host b',
    );
    expect(codeOf(() => b.host.authority.tokens.check(delegated, request))).toBe('ANX_TOKEN_REVOKED');
    expect(b.host.authority.audit.list({ action: 'token.check', decision: 'deny' })[0]).toMatchObject({
      actor: helper,
      principal: owner,
      code: 'ANX_TOKEN_REVOKED',
    });

    // A host that joins after the revocation reads it from the relay before it is ready.
    const c = await join(relay.hub.url);
    expect(codeOf(() => c.host.authority.tokens.check(delegated, request))).toBe('ANX_TOKEN_REVOKED');
    // ...and keeps it locally: it survives without the relay.
    expect(c.host.authority.revocations.all()).toHaveLength(1);
  }, 180_000);

  it('ignores forged revocations put straight into the bucket and reports them', async () => {
    const [a, b] = relay.joined as [Joined, Joined];
    const owner = (await a.host.createIdentity({ name: 'owner2' })).did;
    const worker = (await b.host.createIdentity({ name: 'worker2' })).did;
    const { token, grant } = a.host.authority.tokens.issue({
      issuer: owner,
      audience: worker,
      resource: 'vault:enc2',
      actions: ['vault.get'],
    });
    const request = { actor: worker, owner, resource: 'vault:enc2', action: 'vault.get' };
    const nc = await connect({ servers: relay.hub.url });
    try {
      const before = b.conn.relay.status().refused;
      const kv = await new Kvm(jetstream(nc, { domain: JETSTREAM_DOMAIN })).open(REVOCATION_BUCKET);
      // Signed by a stranger, claiming to be the owner.
      const stranger = generateIdentity(a.host.suite);
      const unsigned = { v: 1 as const, tid: grant.id, iss: owner, ts: Date.now(), exp: grant.expiresAt };
      const forged = {
        ...unsigned,
        sig: toB64u(a.host.suite.sign(stranger.seed, revocationSigningInput(unsigned))),
      };
      await kv.put(revocationKey(forged), new TextEncoder().encode(JSON.stringify(forged)));
      await kv.put(`${grant.id}.zGarbage`, new TextEncoder().encode('not json'));
      await waitFor(
        () => b.conn.relay.status().refused >= before + 2,
        30_000,
        'both forgeries to be refused',
      );
    } finally {
      await nc.close();
    }
    expect(codeOf(() => b.host.authority.tokens.check(token, request))).toBe('ALLOWED');
    const invalid = () =>
      b.host
        .trace('host', { kinds: ['error'] })
        .filter((e) => (e.payload as { code?: string }).code === 'ANX_REVOCATION_INVALID').length;
    await waitFor(() => invalid() >= 2, 30_000, 'the refusals in the trace');
  }, 120_000);
});
