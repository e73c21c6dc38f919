// The gatekeeper's `ask` queue: held messages wait for the Owner's answer, approve lets them in, deny drops them, time expires them.
import { afterEach, expect, it } from 'vitest';
import { Gatekeeper } from '../../actors/did.ts';
import { GATEKEEPER_LIST_MAX, PENDING_TTL_MAX_MS } from '../../machines/did.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { Host } from '../../runtime/host.ts';
import { didFromPublicKey } from '../../runtime/identity/did.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const hosts: Host[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close().catch(() => {});
  cleanupTempDirs();
});

async function setup(clock?: ManualClock) {
  const host = await Host.open({ dataDir: tempDir(), noSync: true, ...(clock ? { clock } : {}) });
  hosts.push(host);
  const me = (await host.createIdentity({ name: 'me' })).did;
  const friend = (await host.createIdentity({ name: 'friend' })).did;
  const stranger = (await host.createIdentity({ name: 'stranger' })).did;
  return { host, me, friend, stranger, gk: new Gatekeeper(host.system) };
}

it('holds mail from unknown senders in ask mode until approved, then allows the sender', async () => {
  const { host, me, friend, stranger, gk } = await setup();
  await gk.set(me, { mode: 'ask', allow: [friend] });
  await host.send([
    { from: friend, to: me, body: { text: 'known' } },
    { from: stranger, to: me, body: { text: 'who am I' } },
  ]);
  await host.system.quiesce();
  expect(host.inbox(me).messages.map((m) => m.from)).toEqual([friend]);
  const pending = await gk.pending(me);
  expect(pending).toEqual([expect.objectContaining({ from: stranger, body: { text: 'who am I' } })]);
  await gk.approve(me, pending[0]!.id);
  expect(host.inbox(me).messages.map((m) => (m.body as { text: string }).text)).toEqual([
    'known',
    'who am I',
  ]);
  expect(gk.show(me)).toMatchObject({ held: 0, allow: [friend, stranger] });
  await host.send([{ from: stranger, to: me, body: { text: 'again' } }]);
  await host.system.quiesce();
  expect(host.inbox(me).messages).toHaveLength(3);
});

it('drops denied mail (and blocks the sender when asked) and refuses an unknown pending id', async () => {
  const { host, me, stranger, gk } = await setup();
  await gk.set(me, { mode: 'ask' });
  await host.send([{ from: stranger, to: me, body: 'spam' }]);
  await host.system.quiesce();
  const [held] = await gk.pending(me);
  await gk.deny(me, held!.id, { block: true });
  expect(await gk.pending(me)).toEqual([]);
  expect(gk.show(me).block).toEqual([stranger]);
  await expect(gk.approve(me, held!.id)).rejects.toMatchObject({ code: 'ANX_PENDING_NOT_FOUND' });
  await host.send([{ from: stranger, to: me, body: 'more spam' }]);
  await host.system.quiesce();
  expect(host.inbox(me).messages).toEqual([]);
  expect(await gk.pending(me)).toEqual([]);
});

it('expires held mail after its deadline: it can no longer be approved', async () => {
  const clock = new ManualClock(Date.now());
  const { host, me, stranger, gk } = await setup(clock);
  await gk.set(me, { mode: 'ask', pending_ttl_ms: 60_000 });
  await host.send([{ from: stranger, to: me, body: 'late' }]);
  await host.system.quiesce();
  const [held] = await gk.pending(me);
  expect(held?.expires_at).toBe(held!.ts + 60_000);
  clock.advance(61_000);
  await expect(gk.approve(me, held!.id)).rejects.toMatchObject({ code: 'ANX_PENDING_NOT_FOUND' });
  expect(gk.show(me).held).toBe(0);
  expect(host.inbox(me).messages).toEqual([]);
});

it('refuses mail from a stranger in private mode, with an error event, and keeps nothing', async () => {
  const { host, me, friend, stranger, gk } = await setup();
  await gk.set(me, { mode: 'private', allow: [friend] });
  await host.send([{ from: stranger, to: me, body: 'hello?' }]);
  await host.system.quiesce();
  expect(host.inbox(me).messages).toEqual([]);
  expect(await gk.pending(me)).toEqual([]);
  const codes = host.trace(me, { kinds: ['error'] }).map((e) => (e.payload as { code: string }).code);
  expect(codes).toEqual(['ANX_GATEKEEPER_PRIVATE']);
  expect(gk.verdict(me, stranger)).toBe('private');
  expect(gk.verdict(me, friend)).toBe('accept');
});

it('keeps allow and block lists bounded and without repeats, and hold times within 30 days', async () => {
  const { host, me, friend, stranger, gk } = await setup();
  const many = Array.from({ length: GATEKEEPER_LIST_MAX }, (_, i) =>
    didFromPublicKey(new Uint8Array(32).fill(i % 256).map((b, j) => (j === 0 ? i >> 8 : b))),
  );
  expect(new Set(many).size).toBe(GATEKEEPER_LIST_MAX);
  // Repeats are dropped (in first-seen order); one DID more than the limit is refused, nothing changed.
  expect((await gk.set(me, { allow: [friend, friend, stranger, friend] })).allow).toEqual([friend, stranger]);
  await expect(gk.set(me, { allow: [...many, friend] })).rejects.toMatchObject({
    code: 'ANX_GATEKEEPER_INVALID',
    message: expect.stringContaining(`at most ${GATEKEEPER_LIST_MAX} DIDs, got ${GATEKEEPER_LIST_MAX + 1}`),
  });
  expect(gk.show(me).allow).toEqual([friend, stranger]);
  for (const ttl of [999, PENDING_TTL_MAX_MS + 1, 1.5])
    await expect(gk.set(me, { pending_ttl_ms: ttl })).rejects.toMatchObject({
      code: 'ANX_GATEKEEPER_INVALID',
    });
  expect((await gk.set(me, { pending_ttl_ms: PENDING_TTL_MAX_MS })).pending_ttl_ms).toBe(PENDING_TTL_MAX_MS);

  // A full allow list: approving a stranger's message and allowing them is refused, the message still waits;
  // approving it once (without allowing the sender) lets it in.
  await gk.set(me, { mode: 'ask', allow: many });
  await host.send([{ from: stranger, to: me, body: 'hello' }]);
  await host.system.quiesce();
  const [held] = await gk.pending(me);
  await expect(gk.approve(me, held!.id)).rejects.toMatchObject({
    code: 'ANX_GATEKEEPER_INVALID',
    hint: expect.stringContaining('approve --once'),
  });
  expect((await gk.pending(me)).map((p) => p.id)).toEqual([held!.id]);
  await gk.approve(me, held!.id, { allow: false });
  expect(host.inbox(me).messages.map((m) => m.body)).toEqual(['hello']);
  expect(gk.show(me).allow).toHaveLength(GATEKEEPER_LIST_MAX);
});
