// Removals in the relay's buckets over a real hub: a delete or purge marker (which only someone holding
// the join URL can write) takes nothing away from the hosts, is reported, and the author's host puts
// the entry back, so a host joining afterwards still gets it.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attestationKey } from '../../bridge/relay/attestations.ts';
import { BINDING_BUCKET } from '../../bridge/relay/bindings.ts';
import { JETSTREAM_DOMAIN } from '../../bridge/relay/nats-server.ts';
import { revocationKey } from '../../bridge/relay/revocations.ts';
import {
  ATTESTATION_BUCKET,
  DIRECTORY_BUCKET,
  didKey,
  REVOCATION_BUCKET,
  WEBHOOK_BUCKET,
} from '../../bridge/relay/subjects.ts';
import type { Host } from '../../runtime/host.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { type Joined, twoLeafRelay } from '../authority/relay-fixture.ts';
import { waitFor } from '../helpers/daemon.ts';

const relay = twoLeafRelay();
let nc: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: relay.hub.url });
}, 60_000);

afterAll(async () => {
  await nc?.close();
});

const bucket = (name: string) => new Kvm(jetstream(nc, { domain: JETSTREAM_DOMAIN })).open(name);

/** The entry under `key` as the hub holds it now: its operation, or undefined when there is none. */
async function operationOf(name: string, key: string): Promise<string | undefined> {
  const entry = await (await bucket(name)).get(key);
  return entry?.operation;
}

function removals(host: Host): Array<{ key: string; message: string }> {
  return host
    .trace('host', { kinds: ['error'] })
    .map((e) => e.payload as { code?: string; key: string; message: string; level?: string })
    .filter((p) => p.code === 'ANX_RELAY_ENTRY_REMOVED');
}

describe('delete and purge markers in the relay buckets', () => {
  it('keep every verified entry on the hosts, are reported, and the author puts the entry back for later hosts', async () => {
    const a = await relay.join(relay.leaf(0).url, { synced: true });
    const b = await relay.join(relay.leaf(1).url, { synced: true });
    const alice = (await a.host.createIdentity({ name: 'alice' })).did;
    const subject = (await a.host.createIdentity({ name: 'subject' })).did;
    await a.conn.relay.publishCard({ did: alice, name: 'alice', roles: ['reviewer'] });
    const rev = await a.host.authority.revocations.revoke({
      tid: 'ab'.repeat(32),
      by: alice,
      exp: Date.now() + 3_600_000,
    });
    a.host.authority.trust.attest({ issuer: alice, subject, value: 50 });
    await a.conn.relay.registerWebhook(alice, 'http://127.0.0.1:9/hook');
    const owner = await a.host.teamwork.secretaries.registerOwner({ name: 'Kevin' });
    const secretary = await a.host.teamwork.secretaries.register({ owner: owner.did, name: 'Sec' });
    const binding = a.host.teamwork.secretaries.bindings.list({ owner: owner.did })[0];
    expect(binding).toBeDefined();

    const seenOn = (j: Joined) =>
      j.conn.relay.discover({ role: 'reviewer' }).some((c) => c.did === alice) &&
      j.host.authority.revocations.has(rev.tid) &&
      j.host.authority.trust.attestationsAbout(subject).length === 1 &&
      j.conn.relay.webhooks?.get(alice) !== undefined &&
      j.host.teamwork.secretaries.bindings.active(owner.did, secretary.did, 'secretary') !== undefined;
    await waitFor(() => seenOn(b), 30_000, "alice's entries on host B");

    const targets: Array<[string, string, 'delete' | 'purge']> = [
      [DIRECTORY_BUCKET, didKey(alice), 'delete'],
      [REVOCATION_BUCKET, revocationKey(rev), 'purge'],
      [ATTESTATION_BUCKET, attestationKey({ sub: subject, iss: alice }), 'delete'],
      [WEBHOOK_BUCKET, didKey(alice), 'purge'],
      [BINDING_BUCKET, `b.${binding?.id}`, 'delete'],
    ];
    // A card key nobody published: reported, nothing to keep or put back.
    const stranger = generateIdentity(a.host.suite).did;
    targets.push([DIRECTORY_BUCKET, didKey(stranger), 'delete']);
    const beforeA = removals(a.host).length;
    const beforeB = removals(b.host).length;
    for (const [name, key, how] of targets) {
      const kv = await bucket(name);
      if (how === 'delete') await kv.delete(key);
      else await kv.purge(key);
    }

    // Every host reports each removal; alice's host says it put hers back.
    await waitFor(() => removals(b.host).length >= beforeB + targets.length, 30_000, 'the reports on B');
    await waitFor(() => removals(a.host).length >= beforeA + targets.length, 30_000, 'the reports on A');
    const onA = removals(a.host).slice(beforeA);
    expect(
      onA
        .filter((r) => r.message.includes('put it back'))
        .map((r) => r.key)
        .sort(),
    ).toEqual(
      targets
        .slice(0, 5)
        .map(([, key]) => key)
        .sort(),
    );
    expect(onA.find((r) => r.key === didKey(stranger))?.message).toMatch(/held no verified copy/);
    expect(
      removals(b.host)
        .slice(beforeB)
        .some((r) => r.message.includes('put it back')),
    ).toBe(false);

    // Nothing was taken away from host B.
    expect(seenOn(b)).toBe(true);
    // The hub holds the entries again, so a host that joins now gets all of them.
    for (const [name, key] of targets.slice(0, 5))
      await waitFor(async () => (await operationOf(name, key)) === 'PUT', 30_000, `${name} ${key} put back`);
    expect(await operationOf(DIRECTORY_BUCKET, didKey(stranger))).not.toBe('PUT');
    const c = await relay.join(relay.leaf(1).url, { synced: true });
    await waitFor(() => seenOn(c), 30_000, "alice's entries on host C, which joined after the removals");
  }, 180_000);
});
