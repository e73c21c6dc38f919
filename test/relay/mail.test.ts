// Offline mail limits on a real hub: each sender may keep a bounded number of messages waiting for one
// recipient; a refused message stays in the sender's outbox and arrives, in order, once there is room.
import { AckPolicy, DeliverPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MailQuotaError, MailStore } from '../../bridge/relay/mail.ts';
import { JETSTREAM_DOMAIN } from '../../bridge/relay/nats-server.ts';
import { NatsTransport } from '../../bridge/relay/nats-transport.ts';
import { Relay } from '../../bridge/relay/relay.ts';
import { didKey, MAIL_STREAM, MAIL_SUBJECTS, mailFilter } from '../../bridge/relay/subjects.ts';
import { Host } from '../../runtime/host.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { waitFor } from '../helpers/daemon.ts';
import { startHub, stopAllNats, type TestHub } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

let hub: TestHub;
let nc: NatsConnection;
const did = () => generateIdentity().did;

beforeAll(async () => {
  hub = await startHub();
  nc = await connect({ servers: hub.url });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await stopAllNats();
  cleanupTempDirs();
});

async function resetStream(): Promise<void> {
  const jsm = await jetstreamManager(nc, { domain: JETSTREAM_DOMAIN });
  await jsm.streams.delete(MAIL_STREAM).catch(() => false);
}

/** Reads `did`'s mail as it comes, acknowledging each message; `got` holds their first bytes. */
function readAll(store: MailStore, did: string): { got: number[]; reader: { stop(): void } } {
  const got: number[] = [];
  const reader = store.consume(did, async (batch) => {
    for (const item of batch) {
      got.push(item.data[0] as number);
      item.ack();
    }
  });
  return { got, reader };
}

it('caps what one sender keeps waiting for one recipient, leaves other senders alone, and frees room as mail is read', async () => {
  await resetStream();
  const store = new MailStore(nc, { maxPerSender: 3 });
  const [bob, alice, carol] = [did(), did(), did()];
  const bytes = (n: number) => new Uint8Array([n]);
  for (let i = 0; i < 3; i++) await store.store(bob, alice, `a-${i}`, bytes(i));
  const refused = await store.store(bob, alice, 'a-3', bytes(3)).catch((err: unknown) => err);
  expect(refused).toBeInstanceOf(MailQuotaError);
  expect((refused as MailQuotaError).code).toBe('ANX_MAIL_QUOTA');
  expect((refused as MailQuotaError).hint).toMatch(/stays in the outbox/);
  // A retried publish of a stored message is still a duplicate, not a refusal.
  await store.store(bob, alice, 'a-2', bytes(2));
  // Another sender has its own allowance.
  await store.store(bob, carol, 'c-0', bytes(10));

  const { got, reader } = readAll(store, bob);
  try {
    await waitFor(() => got.length === 4, 20_000, "bob's mail");
    expect(got).toEqual([0, 1, 2, 10]);
    await waitFor(() => store.waitDelivered(bob, alice, 1_000), 20_000, "alice's mail acknowledged");
    // Read mail leaves the stream (work queue), so alice may store again.
    await store.store(bob, alice, 'a-3', bytes(3));
    await waitFor(() => got.length === 5, 20_000, 'the fifth message');
    expect(got[4]).toBe(3);
  } finally {
    reader.stop();
  }
});

it('gives a mail stream created without limits its limits, and replaces a consumer with an older filter', async () => {
  await resetStream();
  const jsm = await jetstreamManager(nc, { domain: JETSTREAM_DOMAIN });
  await jsm.streams.add({
    name: MAIL_STREAM,
    subjects: [MAIL_SUBJECTS],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
  });
  const [bob, alice] = [did(), did()];
  const name = didKey(bob);
  await jsm.consumers.add(MAIL_STREAM, {
    durable_name: name,
    filter_subject: `anx.v1.mail.${name}`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  });
  const store = new MailStore(nc, { maxPerSender: 2, maxBytes: 1024 * 1024 });
  await store.store(bob, alice, 'x-0', new Uint8Array([1]));
  const config = (await jsm.streams.info(MAIL_STREAM)).config;
  expect(config).toMatchObject({
    max_msgs_per_subject: 2,
    max_bytes: 1024 * 1024,
    discard_new_per_subject: true,
  });

  const { got, reader } = readAll(store, bob);
  try {
    await waitFor(() => got.length === 1, 20_000, 'mail through the replaced consumer');
    expect((await jsm.consumers.info(MAIL_STREAM, name)).config.filter_subject).toBe(mailFilter(bob));
  } finally {
    reader.stop();
  }
});

it('keeps mail the relay refused in the outbox and delivers everything once and in order when the recipient returns', async () => {
  await resetStream();
  const nodes: Array<{ relay: Relay; host: Host; transport: NatsTransport }> = [];
  const open = async (dataDir: string) => {
    const transport = await NatsTransport.connect({ servers: hub.url });
    const relay = new Relay({
      transport,
      nc: transport.nc,
      heartbeatMs: 200,
      maxBackoffMs: 500,
      mailLimits: { maxPerSender: 5 },
    });
    const host = await Host.open({ dataDir, router: relay, noSync: true });
    relay.bind(host);
    await relay.start();
    const node = { relay, host, transport };
    nodes.push(node);
    return node;
  };
  const close = async (node: { relay: Relay; host: Host }) => {
    await node.relay.close();
    await node.host.close();
  };
  try {
    const a = await open(tempDir());
    const bDir = tempDir();
    let b = await open(bDir);
    const alice = await a.host.createIdentity({ name: 'alice' });
    const bob = await b.host.createIdentity({ name: 'bob' });
    await waitFor(() => a.relay.isOnline(bob.did), 30_000, 'bob online');
    await close(b);
    await waitFor(() => !a.relay.isOnline(bob.did), 30_000, 'bob offline');

    const N = 8;
    await a.host.send(
      Array.from({ length: N }, (_, i) => ({ from: alice.did, to: bob.did, body: { n: i } })),
    );
    await waitFor(() => a.relay.stats.mailed === 5, 30_000, 'five stored');
    const quota = () =>
      a.host.trace('host', { kinds: ['error'] }).filter((e) => {
        const p = e.payload as { code?: string };
        return p.code === 'ANX_MAIL_QUOTA';
      });
    await waitFor(() => quota().length > 0, 30_000, 'a quota refusal event');
    expect(a.host.status().outbox).toBe(N - 5);

    b = await open(bDir);
    await waitFor(() => b.host.inbox(bob.did, { limit: 100 }).messages.length >= N, 60_000, 'all mail');
    await waitFor(() => a.host.status().outbox === 0, 30_000, 'sender outbox empty');
    const got = b.host.inbox(bob.did, { limit: 100 }).messages.map((m) => (m.body as { n: number }).n);
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
  } finally {
    for (const node of nodes) await close(node).catch(() => {});
  }
}, 120_000);
