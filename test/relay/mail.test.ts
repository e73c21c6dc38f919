// Offline mail limits on a real hub: each sender may keep a bounded number of messages waiting for one
// recipient; a refused message stays in the sender's outbox and arrives, in order, once there is room.
import { AckPolicy, DeliverPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MailQuotaError, MailStore } from '../../bridge/relay/mail.ts';
import { JETSTREAM_DOMAIN } from '../../bridge/relay/nats-server.ts';
import { NatsTransport } from '../../bridge/relay/nats-transport.ts';
import { Relay } from '../../bridge/relay/relay.ts';
import { didKey, MAIL_STREAM, MAIL_SUBJECTS, mailFilter, mailSubject } from '../../bridge/relay/subjects.ts';
import { nodeSuite } from '../../runtime/crypto/index.ts';
import { createEnvelope, encodeEnvelope, seal } from '../../runtime/envelope/index.ts';
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

/** The mail stream made afresh by someone else than a host (an earlier version, an operator), with `extra` settings. */
async function foreignStream(extra: { max_age?: number } = {}) {
  await resetStream();
  const jsm = await jetstreamManager(nc, { domain: JETSTREAM_DOMAIN });
  await jsm.streams.add({
    name: MAIL_STREAM,
    subjects: [MAIL_SUBJECTS],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    ...extra,
  });
  return jsm;
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
  const jsm = await foreignStream();
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
    deny_delete: true,
    deny_purge: true,
  });

  const { got, reader } = readAll(store, bob);
  try {
    await waitFor(() => got.length === 1, 20_000, 'mail through the replaced consumer');
    expect((await jsm.consumers.info(MAIL_STREAM, name)).config.filter_subject).toBe(mailFilter(bob));
  } finally {
    reader.stop();
  }
});

interface MailNode {
  relay: Relay;
  host: Host;
}

/**
 * Two hosts on the hub, alice's (a) and bob's (b, closed again: bob is offline when this resolves);
 * `relayOptions(nc)` gives each relay its mail settings. `reopenB` brings bob's host back.
 */
async function aliceAndOfflineBob(
  relayOptions: (nc: NatsConnection, node: 'a' | 'b') => Partial<ConstructorParameters<typeof Relay>[0]>,
): Promise<{
  a: MailNode;
  alice: string;
  bob: string;
  reopenB(): Promise<MailNode>;
  closeAll(): Promise<void>;
}> {
  const nodes: MailNode[] = [];
  const open = async (dataDir: string, name: 'a' | 'b') => {
    const transport = await NatsTransport.connect({ servers: hub.url });
    const relay = new Relay({
      transport,
      nc: transport.nc,
      heartbeatMs: 200,
      maxBackoffMs: 500,
      ...relayOptions(transport.nc, name),
    });
    const host = await Host.open({ dataDir, router: relay, noSync: true });
    relay.bind(host);
    await relay.start();
    const node = { relay, host };
    nodes.push(node);
    return node;
  };
  const close = async (node: MailNode) => {
    await node.relay.close();
    await node.host.close();
  };
  const closeAll = async () => {
    for (const node of nodes) await close(node).catch(() => {});
  };
  try {
    const a = await open(tempDir(), 'a');
    const bDir = tempDir();
    const b = await open(bDir, 'b');
    const alice = await a.host.createIdentity({ name: 'alice' });
    const bob = await b.host.createIdentity({ name: 'bob' });
    await waitFor(() => a.relay.isOnline(bob.did), 30_000, 'bob online');
    await close(b);
    await waitFor(() => !a.relay.isOnline(bob.did), 30_000, 'bob offline');
    return { a, alice: alice.did, bob: bob.did, reopenB: () => open(bDir, 'b'), closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The `n` of each message in `did`'s inbox on `node`, in inbox order. */
function inboxNumbers(node: MailNode, did: string): number[] {
  return node.host.inbox(did, { limit: 1_000 }).messages.map((m) => (m.body as { n: number }).n);
}

function inboxIds(node: MailNode, did: string): string[] {
  return node.host.inbox(did, { limit: 1_000 }).messages.map((m) => m.id);
}

it('keeps mail the relay refused in the outbox and delivers everything once and in order when the recipient returns', async () => {
  await resetStream();
  const { a, alice, bob, reopenB, closeAll } = await aliceAndOfflineBob(() => ({
    mailLimits: { maxPerSender: 5 },
  }));
  try {
    const N = 8;
    await a.host.send(Array.from({ length: N }, (_, i) => ({ from: alice, to: bob, body: { n: i } })));
    await waitFor(() => a.relay.stats.mailed === 5, 30_000, 'five stored');
    const quota = () =>
      a.host.trace('host', { kinds: ['error'] }).filter((e) => {
        const p = e.payload as { code?: string };
        return p.code === 'ANX_MAIL_QUOTA';
      });
    await waitFor(() => quota().length > 0, 30_000, 'a quota refusal event');
    expect(a.host.status().outbox).toBe(N - 5);

    const b = await reopenB();
    await waitFor(() => inboxNumbers(b, bob).length >= N, 60_000, 'all mail');
    await waitFor(() => a.host.status().outbox === 0, 30_000, 'sender outbox empty');
    expect(inboxNumbers(b, bob)).toEqual(Array.from({ length: N }, (_, i) => i));
  } finally {
    await closeAll();
  }
}, 120_000);

it('hands a batch its handler did not commit back at once, ahead of mail stored after it', async () => {
  await resetStream();
  const store = new MailStore(nc);
  const [bob, alice] = [did(), did()];
  for (let i = 0; i < 5; i++) await store.store(bob, alice, `n-${i}`, new Uint8Array([i]));
  const got: number[] = [];
  let failed = false;
  const reader = store.consume(bob, async (batch) => {
    if (!failed) {
      failed = true;
      // Later mail lands while the first batch is in hand; the commit then fails.
      for (let i = 5; i < 8; i++) await store.store(bob, alice, `n-${i}`, new Uint8Array([i]));
      throw new Error('commit failed');
    }
    for (const item of batch) {
      got.push(item.data[0] as number);
      item.ack();
    }
  });
  try {
    await waitFor(() => got.length >= 8, 20_000, 'all mail after the failed commit');
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  } finally {
    reader.stop();
  }
});

/** A mail store that loses chosen messages on their first publish, as a dropped hub link would. */
class LossyMailStore extends MailStore {
  readonly lost = new Set<string>();
  /** Msg ids in the order JetStream stored them. */
  readonly stored: string[] = [];
  constructor(
    nc: NatsConnection,
    private readonly lose: (msgId: string) => boolean,
  ) {
    super(nc);
  }
  override async store(to: string, from: string, msgId: string, bytes: Uint8Array): Promise<number> {
    if (this.lose(msgId) && !this.lost.has(msgId)) {
      this.lost.add(msgId);
      throw new Error('lost on the way to the hub');
    }
    const seq = await super.store(to, from, msgId, bytes);
    this.stored.push(msgId);
    return seq;
  }
}

it("stores nothing after a message whose publish was lost until that message is stored, so the stream holds one sender's mail in order", async () => {
  await resetStream();
  let lossy: LossyMailStore | undefined;
  const seen: string[] = [];
  const { a, alice, bob, reopenB, closeAll } = await aliceAndOfflineBob((nc, node) => {
    if (node === 'b') return {};
    // The first publishes of the 4th, 5th and 6th messages are lost.
    lossy = new LossyMailStore(nc, (msgId) => {
      if (!seen.includes(msgId)) seen.push(msgId);
      const nth = seen.indexOf(msgId) + 1;
      return nth >= 4 && nth <= 6;
    });
    return { mailStore: lossy };
  });
  try {
    const N = 40;
    await a.host.send(Array.from({ length: N }, (_, i) => ({ from: alice, to: bob, body: { n: i } })));
    await waitFor(() => a.host.status().outbox === 0, 30_000, 'all stored');
    const store = lossy as LossyMailStore;
    // Each loss stopped the link (it backed off and tried the same message again, same msg id).
    expect(store.lost.size).toBe(3);
    expect(a.relay.stats.retries).toBeGreaterThanOrEqual(3);
    // Stored once each, in the order they were sent: a reader at any moment sees them in order.
    const order = store.stored.map((id) => id.slice(id.indexOf('-') + 1));
    expect(new Set(order).size).toBe(N);
    expect(a.relay.stats.mailed).toBe(N);

    const b = await reopenB();
    await waitFor(() => inboxNumbers(b, bob).length >= N, 60_000, 'all mail');
    const ids = inboxIds(b, bob);
    expect(ids).toEqual(order);
    expect(inboxNumbers(b, bob)).toEqual(Array.from({ length: N }, (_, i) => i));
  } finally {
    await closeAll();
  }
}, 120_000);

it('makes the mail stream again when it vanished (a hub that lost its storage) and stores what waited, in order', async () => {
  await resetStream();
  const { a, alice, bob, reopenB, closeAll } = await aliceAndOfflineBob(() => ({}));
  try {
    await a.host.send([0, 1, 2].map((n) => ({ from: alice, to: bob, body: { n } })));
    await waitFor(() => a.relay.stats.mailed === 3, 30_000, 'first three stored');
    // The hub loses the stream and the three messages in it; the sender still believes it exists.
    await resetStream();
    await a.host.send([3, 4, 5].map((n) => ({ from: alice, to: bob, body: { n } })));
    await waitFor(() => a.relay.stats.mailed === 6, 30_000, 'stored again after the stream came back');
    expect(a.relay.stats.retries).toBeGreaterThanOrEqual(1);
    const jsm = await jetstreamManager(nc, { domain: JETSTREAM_DOMAIN });
    expect((await jsm.streams.info(MAIL_STREAM)).state.messages).toBe(3);

    const b = await reopenB();
    await waitFor(() => inboxNumbers(b, bob).length >= 3, 30_000, 'the mail that survived');
    expect(inboxNumbers(b, bob)).toEqual([3, 4, 5]);
  } finally {
    await closeAll();
  }
}, 120_000);

it('refuses requests to delete or purge stored mail, whoever sends them, and still removes mail its recipient acknowledged', async () => {
  await resetStream();
  const { a, alice, bob, reopenB, closeAll } = await aliceAndOfflineBob(() => ({}));
  try {
    await a.host.send([0, 1, 2].map((n) => ({ from: alice, to: bob, body: { n } })));
    await waitFor(() => a.relay.stats.mailed === 3, 30_000, 'three stored');
    // Any client of the hub (a host holding the join URL) may ask; JetStream says no to all of it.
    const jsm = await jetstreamManager(nc, { domain: JETSTREAM_DOMAIN });
    const first = (await jsm.streams.info(MAIL_STREAM)).state.first_seq;
    await expect(jsm.streams.deleteMessage(MAIL_STREAM, first)).rejects.toThrow(/not permitted/);
    await expect(jsm.streams.purge(MAIL_STREAM)).rejects.toThrow(/not permitted/);
    const config = (await jsm.streams.info(MAIL_STREAM)).config;
    await expect(
      jsm.streams.update(MAIL_STREAM, { ...config, deny_delete: false, deny_purge: false }),
    ).rejects.toThrow(/can not cancel/);
    expect((await jsm.streams.info(MAIL_STREAM)).state.messages).toBe(3);

    const b = await reopenB();
    await waitFor(() => inboxNumbers(b, bob).length >= 3, 30_000, 'the stored mail');
    expect(inboxNumbers(b, bob)).toEqual([0, 1, 2]);
    // Acknowledged after the recipient's commit, the mail leaves the stream as before.
    await waitFor(
      async () => (await jsm.streams.info(MAIL_STREAM)).state.messages === 0,
      30_000,
      'the stream emptied by acknowledgements',
    );
  } finally {
    await closeAll();
  }
}, 120_000);

it('delivers in stored order after a previous reader died holding a pull request that took the first mail', async () => {
  await resetStream();
  const store = new MailStore(nc);
  const [bob, alice] = [did(), did()];
  await store.store(bob, alice, 'd-0', new Uint8Array([0]));
  const first = readAll(store, bob);
  await waitFor(() => first.got.length === 1, 20_000, 'the first reader');
  first.reader.stop();
  await new Promise((r) => setTimeout(r, 1_500));
  // A reader that died: its pull request stays on the server and takes the next mail to a reply
  // address nobody reads any more.
  const dead = connectDead();
  await dead.pull(didKey(bob));
  for (let i = 1; i <= 8; i++) await store.store(bob, alice, `d-${i}`, new Uint8Array([i]));
  await dead.close();
  const { got, reader } = readAll(store, bob);
  try {
    await waitFor(() => got.length >= 8, 20_000, 'the mail after the dead reader');
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  } finally {
    reader.stop();
  }
});

/** A second client that asks for mail and then goes away without reading it. */
function connectDead(): { pull(consumer: string): Promise<void>; close(): Promise<void> } {
  let conn: NatsConnection | undefined;
  return {
    async pull(consumer) {
      conn = await connect({ servers: hub.url });
      const reply = `_INBOX.gone.${consumer.slice(0, 12)}`;
      // Subscribed, so the server sees interest in the reply address, then closed without reading.
      conn.subscribe(reply, { callback: () => {} });
      conn.publish(
        `$JS.${JETSTREAM_DOMAIN}.API.CONSUMER.MSG.NEXT.${MAIL_STREAM}.${consumer}`,
        JSON.stringify({ batch: 5, expires: 60_000_000_000 }),
        { reply },
      );
      await conn.flush();
    },
    async close() {
      await conn?.close();
    },
  };
}

it('keeps stored order when a pull request of a running reader is lost while mail is handed out', async () => {
  await resetStream();
  const store = new MailStore(nc);
  const [bob, alice] = [did(), did()];
  await store.store(bob, alice, 'l-0', new Uint8Array([0]));
  const { got, reader } = readAll(store, bob);
  const dead = connectDead();
  try {
    await waitFor(() => got.length === 1, 20_000, 'the reader running');
    // A request for the same consumer whose answers never reach the reader, as a pull request on a
    // link that dropped: whatever it takes, the reader never sees.
    await dead.pull(didKey(bob));
    for (let i = 1; i <= 12; i++) await store.store(bob, alice, `l-${i}`, new Uint8Array([i]));
    await dead.close();
    await waitFor(() => got.length >= 13, 20_000, 'all mail');
    expect(got).toEqual(Array.from({ length: 13 }, (_, i) => i));
  } finally {
    reader.stop();
  }
});

it('refuses a copy of offline mail delivered again days after it was taken, once the host has pruned its ids', async () => {
  await resetStream();
  const { a, alice, bob, reopenB, closeAll } = await aliceAndOfflineBob(() => ({}));
  try {
    await a.host.send([{ from: alice, to: bob, body: { n: 1 } }]);
    await waitFor(() => a.relay.stats.mailed === 1, 30_000, 'stored for bob');
    // The sealed envelope as the hub holds it: what a redelivery after a lost acknowledgement hands over again.
    const jsm = await jetstreamManager(nc, { domain: JETSTREAM_DOMAIN });
    const stored = await jsm.streams.getMessage(MAIL_STREAM, { last_by_subj: mailSubject(bob, alice) });
    expect(stored).not.toBeNull();
    const sealed = new Uint8Array((stored as { data: Uint8Array }).data);

    const b = await reopenB();
    await waitFor(() => inboxNumbers(b, bob).length === 1, 60_000, 'the mail');
    const store = new MailStore(nc);
    await waitFor(() => store.waitDelivered(bob, alice, 1_000), 30_000, 'the mail acknowledged');
    // Two days of hourly prunes on bob's host: mail is accepted up to the mail retention (7 days) old,
    // so its id is kept as long.
    expect(b.host.seenRetentionMs).toBeGreaterThanOrEqual(7 * 24 * 60 * 60_000);
    await b.host.pruneSeen(Date.now() + 2 * 24 * 60 * 60_000);

    // The same envelope comes again (its first acknowledgement lost): refused as a duplicate and acknowledged.
    await store.store(bob, alice, 'redelivered-copy-1', sealed);
    await waitFor(() => store.waitDelivered(bob, alice, 1_000), 30_000, 'the copy acknowledged');
    await b.host.system.quiesce();
    expect(inboxNumbers(b, bob)).toEqual([1]);
  } finally {
    await closeAll();
  }
}, 120_000);

it('accepts offline mail as old as the hub keeps it when the stream keeps mail longer than the host would, and keeps its id as long', async () => {
  const DAY = 24 * 60 * 60_000;
  // The stream as another host or an operator left it: mail kept 30 days, not this host's 7.
  await foreignStream({ max_age: nanos(30 * DAY) });
  const { bob, reopenB, closeAll } = await aliceAndOfflineBob(() => ({}));
  try {
    const stranger = generateIdentity();
    const env = createEnvelope({
      type: 'message',
      from: stranger.did,
      to: bob,
      body: { n: 10 },
      ts: Date.now() - 10 * DAY,
    });
    const sealed = seal(env, { senderSeed: stranger.seed, recipientDid: bob, suite: nodeSuite });
    await new MailStore(nc).store(bob, stranger.did, 'ten-days-old-mail-1', encodeEnvelope(sealed));

    const b = await reopenB();
    await waitFor(() => inboxNumbers(b, bob).length === 1, 60_000, 'the ten-day-old mail');
    expect(inboxNumbers(b, bob)).toEqual([10]);
    expect(b.host.seenRetentionMs).toBe(30 * DAY);
  } finally {
    await closeAll();
  }
}, 120_000);
