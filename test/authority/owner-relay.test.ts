// Bindings over the relay: a binding made on one host lets its Secretary act on another; the unbinding stops it there too.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BINDING_BUCKET, BindingFeed } from '../../bridge/relay/bindings.ts';
import { joinRelay, type RelayConnection } from '../../bridge/relay/join.ts';
import { JETSTREAM_DOMAIN } from '../../bridge/relay/nats-server.ts';
import { signActorProof } from '../../runtime/authority/authorize.ts';
import type { AnxError } from '../../runtime/errors.ts';
import { Host } from '../../runtime/host.ts';
import { waitFor } from '../helpers/daemon.ts';
import { startHub, startLeaf, stopAllNats, type TestHub, type TestLeaf } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

interface Joined {
  host: Host;
  conn: RelayConnection;
  feed: BindingFeed;
  invalid: Array<{ key: string; error: AnxError }>;
}

let hub: TestHub;
let leaves: TestLeaf[];
const joined: Joined[] = [];

async function join(natsUrl: string): Promise<Joined> {
  const dataDir = tempDir('anx-bind-');
  const conn = await joinRelay({ dataDir, natsUrl, heartbeatMs: 300 });
  const host = await Host.open({ dataDir, router: conn.relay, noSync: true });
  conn.relay.bind(host);
  await conn.relay.start();
  const invalid: Joined['invalid'] = [];
  const feed = new BindingFeed(
    conn.transport.nc,
    host.teamwork.secretaries.bindings,
    (did) => host.keystore.has(did),
    (key, error) => invalid.push({ key, error }),
  );
  feed.start();
  const j = { host, conn, feed, invalid };
  joined.push(j);
  return j;
}

beforeAll(async () => {
  hub = await startHub();
  leaves = [await startLeaf(hub), await startLeaf(hub)];
}, 120_000);

afterAll(async () => {
  for (const { host, conn, feed } of joined.splice(0)) {
    feed.stop();
    await conn.close().catch(() => {});
    await host.close().catch(() => {});
  }
  await stopAllNats();
  cleanupTempDirs();
});

it('carries a binding and its unbinding to another host, where the Secretary is then refused', async () => {
  const a = await join((leaves[0] as TestLeaf).url);
  const b = await join((leaves[1] as TestLeaf).url);
  const owner = await a.host.teamwork.secretaries.registerOwner({ name: 'Kevin' });
  const secretary = await a.host.teamwork.secretaries.register({ owner: owner.did, name: 'Sec' });
  const onB = b.host.teamwork.secretaries;
  await waitFor(
    () => onB.bindings.active(owner.did, secretary.did, 'secretary') !== undefined,
    30_000,
    'the binding on B',
  );

  // On B the Secretary's key is not local: it proves itself with a signed request.
  const act = () =>
    onB.authorizer.authorize({
      actor: secretary.did,
      principal: owner.did,
      action: 'status',
      resource: `dispatch:${owner.did}/sess_1`,
      proof: signActorProof(a.host.suite, (m) => a.host.keystore.sign(secretary.did, m), {
        actor: secretary.did,
        principal: owner.did,
        action: 'status',
        resource: `dispatch:${owner.did}/sess_1`,
        ts: Date.now(),
      }),
    });
  expect(act()).toMatchObject({ basis: 'binding', proven_by: 'signature' });

  await a.host.teamwork.secretaries.unbind({ owner: owner.did, agent: secretary.did });
  await waitFor(
    () => onB.bindings.view(secretary.binding_id).state === 'unbound',
    30_000,
    'the unbinding on B',
  );
  expect(act).toThrow(expect.objectContaining({ code: 'ANX_FORBIDDEN_BINDING_REVOKED' }));
});

it('ignores a forged binding put straight into the bucket', async () => {
  const a = await join((leaves[0] as TestLeaf).url);
  const owner = await a.host.teamwork.secretaries.registerOwner({ name: 'Mallory' });
  const agent = (await a.host.createIdentity({ name: 'agent' })).did;
  const real = await a.host.teamwork.secretaries.bind({ owner: owner.did, agent, role: 'secretary' });
  // Someone with bucket access widens the role without the owner's key.
  const forged = { ...real, id: 'f'.repeat(32), statement: { ...real.statement, role: 'admin', nonce: 'x' } };
  const nc = await connect({ servers: (leaves[1] as TestLeaf).url });
  try {
    const kv = await new Kvm(jetstream(nc, { domain: JETSTREAM_DOMAIN })).open(BINDING_BUCKET);
    await kv.put(`b.${forged.id}`, new TextEncoder().encode(JSON.stringify(forged)));
  } finally {
    await nc.close();
  }
  const b = await join((leaves[1] as TestLeaf).url);
  await waitFor(() => b.invalid.some((i) => i.key === `b.${forged.id}`), 30_000, 'the forged entry refused');
  expect(b.invalid.find((i) => i.key === `b.${forged.id}`)?.error.code).toBe('ANX_BINDING_INVALID');
  await waitFor(
    () => b.host.teamwork.secretaries.bindings.list({ owner: owner.did }).length === 1,
    30_000,
    'the real binding',
  );
  expect(b.host.teamwork.secretaries.bindings.list({ owner: owner.did }).map((x) => x.id)).toEqual([real.id]);
});
