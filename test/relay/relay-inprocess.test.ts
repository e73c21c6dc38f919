// The relay router over the in-process transport: session delivery, acknowledgement after commit, order, and replay after restart.
import { afterEach, expect, it } from 'vitest';
import { Gatekeeper } from '../../actors/did.ts';
import { Relay } from '../../bridge/relay/relay.ts';
import { Host } from '../../runtime/host.ts';
import { InProcessTransport, Switchboard } from '../../runtime/transport/inprocess.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const open: Array<{ relay: Relay; host: Host }> = [];

afterEach(async () => {
  for (const { relay, host } of open.splice(0)) {
    await relay.close();
    await host.close();
  }
  cleanupTempDirs();
});

async function node(board: Switchboard, dataDir = tempDir()) {
  const relay = new Relay({ transport: new InProcessTransport(board), heartbeatMs: 200, ackTimeoutMs: 500 });
  const host = await Host.open({ dataDir, router: relay, noSync: true });
  relay.bind(host);
  await relay.start();
  const entry = { relay, host, dataDir };
  open.push(entry);
  return entry;
}

it('delivers in order and exactly once between two hosts, and empties the sender outbox after the receiver commits', async () => {
  const board = new Switchboard();
  const a = await node(board);
  const b = await node(board);
  const alice = await a.host.createIdentity({ name: 'alice' });
  const bob = await b.host.createIdentity({ name: 'bob' });
  await waitFor(() => a.relay.isOnline(bob.did), 30_000, 'bob online at a');
  const N = 2_000;
  await a.host.send(Array.from({ length: N }, (_, i) => ({ from: alice.did, to: bob.did, body: { n: i } })));
  await waitFor(() => b.host.inbox(bob.did, { limit: N + 10 }).messages.length === N, 60_000, 'all messages');
  const got = b.host.inbox(bob.did, { limit: N + 10 }).messages.map((m) => (m.body as { n: number }).n);
  expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
  await waitFor(() => a.host.status().outbox === 0, 30_000, 'sender outbox empty');
  expect(a.relay.stats.handshakes).toBeGreaterThanOrEqual(1);
});

it('sends votes and other non-repudiable types sealed and signed inside the session, delivered once', async () => {
  const board = new Switchboard();
  const a = await node(board);
  const b = await node(board);
  const alice = await a.host.createIdentity({ name: 'alice' });
  const bob = await b.host.createIdentity({ name: 'bob' });
  await waitFor(() => a.relay.isOnline(bob.did), 30_000, 'bob online at a');
  await a.host.send([
    { from: alice.did, to: bob.did, type: 'message', body: { n: 0 } },
    {
      from: alice.did,
      to: bob.did,
      type: 'vote',
      body: { n: 1, yes: true },
      thread: 'thread-0000000000000001',
    },
    { from: alice.did, to: bob.did, type: 'message', body: { n: 2 } },
  ]);
  await waitFor(() => b.host.inbox(bob.did).messages.length === 3, 10_000, 'three messages');
  const inbox = b.host.inbox(bob.did).messages;
  expect(inbox.map((m) => [m.type, (m.body as { n: number }).n])).toEqual([
    ['message', 0],
    ['vote', 1],
    ['message', 2],
  ]);
  expect(inbox[1]?.thread).toBe('thread-0000000000000001');
  expect(a.relay.stats.sealedSent).toBe(1);
  await waitFor(() => a.host.status().outbox === 0, 30_000, 'sender outbox empty');
});

it('keeps unacknowledged mail in the outbox while the receiver is away and delivers it after the sender restarts', async () => {
  const board = new Switchboard();
  const aDir = tempDir();
  const a = await node(board, aDir);
  const b = await node(board);
  const alice = await a.host.createIdentity({ name: 'alice' });
  const bob = await b.host.createIdentity({ name: 'bob' });
  await waitFor(() => a.relay.isOnline(bob.did), 30_000, 'bob online at a');
  // Bob's host leaves; alice sends anyway: nothing acknowledges, so everything stays in the outbox.
  await b.relay.close();
  await b.host.close();
  open.splice(open.indexOf(b), 1);
  await a.host.send(Array.from({ length: 50 }, (_, i) => ({ from: alice.did, to: bob.did, body: { n: i } })));
  await new Promise((r) => setTimeout(r, 300));
  expect(a.host.status().outbox).toBe(50);
  // The sender restarts: the outbox is replayed into the relay, not dead-lettered.
  await a.relay.close();
  await a.host.close();
  open.splice(open.indexOf(a), 1);
  const a2 = await node(board, aDir);
  expect(a2.host.restored.replayed).toBe(50);
  const b2 = await node(board, b.dataDir);
  await waitFor(
    () => b2.host.inbox(bob.did, { limit: 100 }).messages.length === 50,
    20_000,
    'mail after restart',
  );
  expect(b2.host.inbox(bob.did, { limit: 100 }).messages.map((m) => (m.body as { n: number }).n)).toEqual(
    Array.from({ length: 50 }, (_, i) => i),
  );
  await waitFor(() => a2.host.status().outbox === 0, 30_000, 'outbox empty');
});

it("refuses the handshake of a sender the recipient's gatekeeper blocks or does not allow, with an audit record, and talks once allowed", async () => {
  const board = new Switchboard();
  const a = await node(board);
  const b = await node(board);
  const alice = await a.host.createIdentity({ name: 'alice' });
  const bob = await b.host.createIdentity({ name: 'bob' });
  await waitFor(() => a.relay.isOnline(bob.did), 30_000, 'bob online at a');
  const gatekeeper = new Gatekeeper(b.host.system);
  await gatekeeper.set(bob.did, { mode: 'private' });
  await a.host.send([{ from: alice.did, to: bob.did, body: { n: 1 } }]);
  const refusals = () =>
    b.host.system.events
      .trace('host', { kinds: ['error'] })
      .filter((e) => (e.payload as { code?: string }).code === 'ANX_GATEKEEPER_REFUSED');
  await waitFor(() => refusals().length > 0, 30_000, 'handshake refusal');
  expect(b.relay.stats.received).toBe(0);
  expect(b.host.inbox(bob.did).messages).toEqual([]);
  const audit = b.host.authority.audit.list().filter((r) => r.action === 'relay.handshake');
  expect(audit[0]).toMatchObject({ decision: 'deny', actor: alice.did, resource: bob.did });
  // The message waits in alice's outbox; allowed, it arrives once.
  expect(a.host.status().outbox).toBe(1);
  await gatekeeper.set(bob.did, { allow: [alice.did] });
  await waitFor(() => b.host.inbox(bob.did).messages.length === 1, 60_000, 'delivered once allowed');
  await waitFor(() => a.host.status().outbox === 0, 30_000, 'sender outbox empty');
});
