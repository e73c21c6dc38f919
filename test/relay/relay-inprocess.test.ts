// The relay router over the in-process transport: session delivery, acknowledgement after commit, order, and replay after restart.
import { afterEach, expect, it } from 'vitest';
import { Gatekeeper } from '../../actors/did.ts';
import { packBatch, Relay } from '../../bridge/relay/relay.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import { Host } from '../../runtime/host.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { encodeKernelEnvelope, newMessageId } from '../../runtime/kernel/message.ts';
import { completeHandshake, decodeAccept, Session, startHandshake } from '../../runtime/session/index.ts';
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

async function node(
  board: Switchboard,
  dataDir = tempDir(),
  extra: Partial<ConstructorParameters<typeof Relay>[0]> = {},
) {
  const relay = new Relay({
    transport: new InProcessTransport(board),
    heartbeatMs: 200,
    ackTimeoutMs: 500,
    ...extra,
  });
  const host = await Host.open({ dataDir, router: relay, noSync: true });
  relay.bind(host);
  await relay.start();
  const entry = { relay, host, dataDir };
  open.push(entry);
  return entry;
}

/** A hello to `to` from `who` (a fresh identity unless given), dated `now`, as another implementation would send it. */
function helloTo(to: string, who = generateIdentity(nodeSuite), now = Date.now()) {
  return startHandshake({
    suite: nodeSuite,
    from: who.did,
    to,
    sign: (m) => nodeSuite.sign(who.seed, m),
    now,
  });
}

/** An envelope from `from` to `to` carrying `n`, for a session frame; `extra` adds or replaces fields (for forged ones). */
function envelopeOf(from: string, to: string, n: number, extra: Record<string, unknown> = {}) {
  return encodeKernelEnvelope({
    v: 1,
    id: newMessageId(),
    type: 'message',
    from,
    to,
    ts: Date.now(),
    body: { n },
    ...extra,
  } as never);
}

/** The codes of the error events a host recorded, oldest first. */
function errorCodes(host: Host): Array<string | undefined> {
  return host.trace('host', { kinds: ['error'] }).map((e) => (e.payload as { code?: string }).code);
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
  // Envelopes queued together travel together: far fewer session frames than envelopes.
  expect(a.relay.stats.sent).toBeGreaterThanOrEqual(N);
  expect(a.relay.stats.frames).toBeLessThan(a.relay.stats.sent / 10);
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

it('takes a batch frame envelope by envelope: a bad item is refused with a typed error, the items before it and later frames are delivered', async () => {
  const board = new Switchboard();
  const b = await node(board);
  const bob = await b.host.createIdentity({ name: 'bob' });
  // Mallory speaks the session protocol herself, as another implementation would.
  const mallory = generateIdentity(nodeSuite);
  const wire = new InProcessTransport(board);
  await waitFor(() => b.relay.isOnline(bob.did), 30_000, "bob's inbox listened to");
  const pending = helloTo(bob.did, mallory);
  const accept = await wire.request(bob.did, pending.frame, 5_000);
  const session = new Session(nodeSuite, completeHandshake(nodeSuite, pending, decodeAccept(accept)));
  /** Mallory's envelope carrying `n`; `extra` adds or replaces fields (for forged ones). */
  const envelope = (n: number, extra: Record<string, unknown> = {}) =>
    envelopeOf(mallory.did, bob.did, n, extra);
  const bodies = () => b.host.inbox(bob.did, { limit: 100 }).messages.map((m) => (m.body as { n: number }).n);
  const refusals = () => errorCodes(b.host);

  wire.sendToDid(bob.did, session.seal(packBatch([envelope(0), envelope(1)])));
  await waitFor(() => bodies().length === 2, 10_000, 'a two-envelope batch');
  wire.sendToDid(bob.did, session.seal(packBatch([envelope(2), Uint8Array.of(1, 2, 3), envelope(99)])));
  await waitFor(() => refusals().includes('ANX_RELAY_FRAME'), 10_000, 'the bad item refused');
  const truncated = packBatch([envelope(98), envelope(97)]).subarray(0, 40);
  wire.sendToDid(bob.did, session.seal(truncated));
  wire.sendToDid(bob.did, session.seal(envelope(3)));
  await waitFor(() => bodies().includes(3), 10_000, 'the frame after');
  expect(bodies()).toEqual([0, 1, 2, 3]);
  expect(b.relay.stats.received).toBe(4);

  // The kernel's batch event, with items that claim other senders: refused at the frame, nothing stored.
  const friend = generateIdentity(nodeSuite).did;
  const spoofed = {
    v: 1,
    id: newMessageId(),
    type: 'message',
    from: friend,
    to: bob.did,
    ts: Date.now(),
    body: { n: 66 },
  };
  wire.sendToDid(bob.did, session.seal(envelope(65, { type: 'anx.batch', items: [spoofed] })));
  // Fields the kernel does not know never reach the DID's event, and its inbox record holds none.
  wire.sendToDid(bob.did, session.seal(envelope(4, { items: [spoofed] })));
  await waitFor(() => bodies().includes(4), 10_000, 'the message after the forged batch');
  // A context that is not a map of strings would be an event index key: refused, and the host goes on.
  wire.sendToDid(bob.did, session.seal(envelope(5, { ctx: { run_id: { nested: [1, 2] }, task_id: 7 } })));
  wire.sendToDid(bob.did, session.seal(envelope(6)));
  await waitFor(() => bodies().includes(6), 10_000, 'the message after the bad context');
  // Every other header field is held to the wire rules too: each of these is refused on its own, and
  // the message after them arrives.
  const before = refusals().filter((c) => c === 'ANX_RELAY_FRAME').length;
  const forged: Array<Record<string, unknown>> = [
    { type: 'x'.repeat(300) },
    { type: '' },
    { ts: -1 },
    { exp: 'tomorrow' },
    { thread: { id: 1 } },
    { reply: 'short' },
    { actor: 'not a did' },
    { cap: 42 },
    { id: 'has spaces in it, not an id' },
  ];
  for (const [i, extra] of forged.entries()) wire.sendToDid(bob.did, session.seal(envelope(70 + i, extra)));
  wire.sendToDid(bob.did, session.seal(envelope(7)));
  await waitFor(() => bodies().includes(7), 10_000, 'the message after the forged headers');
  expect(bodies()).toEqual([0, 1, 2, 3, 4, 6, 7]);
  const frameErrors = () =>
    b.host
      .trace('host', { kinds: ['error'] })
      .map((e) => e.payload as { code?: string; message?: string })
      .filter((p) => p.code === 'ANX_RELAY_FRAME');
  await waitFor(() => frameErrors().length >= before + forged.length, 10_000, 'each forged header refused');
  const messages = frameErrors()
    .slice(before)
    .map((p) => p.message ?? '');
  for (const field of ['"type"', '"ts"', '"exp"', '"thread"', '"reply"', '"actor"', '"cap"', '"id"'])
    expect(messages.some((m) => m.includes(field))).toBe(true);
  expect(b.host.inbox(bob.did, { limit: 100 }).messages.every((m) => m.from === mallory.did)).toBe(true);
  expect(refusals().filter((c) => c === 'ANX_RELAY_FRAME').length).toBeGreaterThanOrEqual(3 + forged.length);
  await wire.close();
});

it('refuses a replayed hello however many hellos came since, refusing new ones instead when it may remember no more, and the live session goes on', async () => {
  const board = new Switchboard();
  const b = await node(board, tempDir(), { maxRememberedHellos: 3 });
  const bob = await b.host.createIdentity({ name: 'bob' });
  const wire = new InProcessTransport(board);
  await waitFor(() => b.relay.isOnline(bob.did), 30_000, "bob's inbox listened to");
  const mallory = generateIdentity(nodeSuite);
  const first = helloTo(bob.did, mallory);
  const session = new Session(
    nodeSuite,
    completeHandshake(nodeSuite, first, decodeAccept(await wire.request(bob.did, first.frame, 5_000))),
  );
  const send = (n: number) => wire.sendToDid(bob.did, session.seal(envelopeOf(mallory.did, bob.did, n)));
  const bodies = () => b.host.inbox(bob.did, { limit: 100 }).messages.map((m) => (m.body as { n: number }).n);
  const refusals = () => errorCodes(b.host);
  send(1);
  await waitFor(() => bodies().length === 1, 10_000, 'the first message');

  // Two more hellos fill what bob's host may remember; a fourth is refused, not answered by forgetting one.
  for (let i = 0; i < 2; i++) await wire.request(bob.did, helloTo(bob.did).frame, 5_000);
  await expect(wire.request(bob.did, helloTo(bob.did).frame, 1_000)).rejects.toThrow();
  await waitFor(() => refusals().includes('ANX_RELAY_BUSY'), 10_000, 'the refusal of the fourth hello');
  // Mallory's hello sent again is still known: refused, and her session was not replaced.
  await expect(wire.request(bob.did, first.frame, 1_000)).rejects.toThrow();
  await waitFor(() => refusals().includes('ANX_SESSION_UNKNOWN'), 10_000, 'the replayed hello refused');
  send(2);
  await waitFor(() => bodies().length === 2, 10_000, 'the message after, in the same session');
  expect(bodies()).toEqual([1, 2]);
  await wire.close();
});

it('forgets an answered hello once its timestamp has left the handshake window, and then answers new ones again', async () => {
  const board = new Switchboard();
  const b = await node(board, tempDir(), { maxRememberedHellos: 2 });
  const bob = await b.host.createIdentity({ name: 'bob' });
  const wire = new InProcessTransport(board);
  await waitFor(() => b.relay.isOnline(bob.did), 30_000, "bob's inbox listened to");
  const hello = (now: number) => helloTo(bob.did, undefined, now);
  // One hello dated just inside the 5-minute window (it leaves it in a second), one of now: full.
  const aging = hello(Date.now() - 5 * 60_000 + 1_000);
  await wire.request(bob.did, aging.frame, 5_000);
  await wire.request(bob.did, hello(Date.now()).frame, 5_000);
  await expect(wire.request(bob.did, hello(Date.now()).frame, 1_000)).rejects.toThrow();
  // Once the first has left the window (and a second has passed since the last sweep), there is room.
  await new Promise((r) => setTimeout(r, 1_500));
  await wire.request(bob.did, hello(Date.now()).frame, 5_000);
  // The forgotten hello is not answered again (it is out of the window now; here the table is full too).
  await expect(wire.request(bob.did, aging.frame, 1_000)).rejects.toThrow();
  expect(errorCodes(b.host)).toContain('ANX_RELAY_BUSY');
  await wire.close();
});
