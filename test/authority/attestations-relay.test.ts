// Trust attestations over a real relay: an attestation made on one host changes the trust breakdown and
// `discover --min-trust` on another; forged entries are reported and ignored, expired ones skipped.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { attestationKey } from '../../bridge/relay/attestations.ts';
import { JETSTREAM_DOMAIN } from '../../bridge/relay/nats-server.ts';
import { ATTESTATION_BUCKET } from '../../bridge/relay/subjects.ts';
import { toB64u } from '../../runtime/authority/canonical.ts';
import { attestationSigningInput } from '../../runtime/authority/trust.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { waitFor } from '../helpers/daemon.ts';
import { type Joined, twoLeafRelay } from './relay-fixture.ts';

const relay = twoLeafRelay();

describe('attestations over the relay', () => {
  it("an attestation made on host A changes host B's trust breakdown and discover --min-trust", async () => {
    const a = await relay.join(relay.leaf(0).url);
    const b = await relay.join(relay.leaf(1).url);
    const reviewer = (await a.host.createIdentity({ name: 'reviewer' })).did;
    const worker = (await a.host.createIdentity({ name: 'worker' })).did;
    await a.conn.relay.publishCard({ did: worker, name: 'worker', roles: ['developer'] });
    // B has seen the reviewer do good work, so the reviewer's word counts on B.
    b.host.authority.trust.record(reviewer, 'success', 20);
    const found = (minTrust: number) =>
      b.conn.relay.discover({ role: 'developer', minTrust }).map((c) => c.did);
    await waitFor(() => found(0).includes(worker), 30_000, "the worker's card on host B");
    expect(found(0.6)).toEqual([]);
    expect(b.host.authority.trust.score(worker).breakdown.attestations).toEqual([]);

    a.host.authority.trust.attest({ issuer: reviewer, subject: worker, value: 100, note: 'solid' });
    await waitFor(
      () => b.host.authority.trust.score(worker).breakdown.attestations.length === 1,
      30_000,
      'the attestation on host B',
    );
    const { score, breakdown } = b.host.authority.trust.score(worker);
    expect(breakdown.attestations[0]).toMatchObject({ iss: reviewer, value: 100 });
    expect(breakdown.attestations[0]?.contribution).toBeGreaterThan(0);
    expect(score).toBeGreaterThan(0.6);
    expect(found(0.6)).toEqual([worker]);

    // A newer attestation by the same issuer replaces the older one everywhere.
    a.host.authority.trust.attest({ issuer: reviewer, subject: worker, value: -100, note: 'broke main' });
    await waitFor(
      () => b.host.authority.trust.score(worker).breakdown.attestations[0]?.value === -100,
      30_000,
      'the newer attestation on host B',
    );
    expect(found(0.6)).toEqual([]);
  }, 180_000);

  it('reports and ignores forged or malformed entries and skips expired ones, without stopping the feed', async () => {
    const [a, b] = relay.joined as [Joined, Joined];
    const reviewer = (await a.host.createIdentity({ name: 'reviewer2' })).did;
    const subject = (await a.host.createIdentity({ name: 'subject2' })).did;
    const marker = (await a.host.createIdentity({ name: 'marker' })).did;
    const suite = a.host.suite;
    const stranger = generateIdentity(suite);
    const sign = (unsigned: Record<string, unknown>) => ({
      ...unsigned,
      sig: toB64u(suite.sign(stranger.seed, attestationSigningInput(unsigned as never))),
    });
    const now = Date.now();
    // Claims to be the reviewer, signed by a stranger.
    const forged = sign({ v: 1, iss: reviewer, sub: subject, value: 100, ts: now, exp: now + 60_000 });
    // Really the stranger's, but expired.
    const expired = sign({
      v: 1,
      iss: stranger.did,
      sub: subject,
      value: 100,
      ts: now - 2_000,
      exp: now - 1_000,
    });
    const before = b.conn.relay.status().refused;
    const nc = await connect({ servers: relay.hub.url });
    try {
      const kv = await new Kvm(jetstream(nc, { domain: JETSTREAM_DOMAIN })).open(ATTESTATION_BUCKET);
      const put = (key: string, value: unknown) =>
        kv.put(key, new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value)));
      await put(attestationKey(forged as never), forged);
      await put(attestationKey(expired as never), expired);
      await put(`${attestationKey(forged as never)}x`, 'not json');
    } finally {
      await nc.close();
    }
    // Entries arrive in order: once this one is on B, the ones before it were handled.
    a.host.authority.trust.attest({ issuer: reviewer, subject: marker, value: 10 });
    await waitFor(
      () => b.host.authority.trust.attestationsAbout(marker).length === 1,
      30_000,
      'the marker attestation on host B',
    );
    expect(b.conn.relay.status().refused).toBe(before + 2);
    expect(b.host.authority.trust.attestationsAbout(subject)).toEqual([]);
    const invalid = () =>
      b.host
        .trace('host', { kinds: ['error'] })
        .filter((e) => (e.payload as { code?: string }).code === 'ANX_ATTESTATION_INVALID');
    await waitFor(() => invalid().length >= 2, 30_000, 'the refusals in the trace');
    expect(invalid()[0]?.payload).toMatchObject({ level: 'warning' });
  }, 120_000);
});
