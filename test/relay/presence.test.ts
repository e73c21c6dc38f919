// Presence: offline within three heartbeat intervals, online again when heartbeats resume, at once on goodbye;
// malformed heartbeats ignored; the DID actor's presence deadline never lands in its inbox.
import { afterEach, expect, it } from 'vitest';
import {
  decodeHeartbeat,
  encodeHeartbeat,
  type Heartbeat,
  HeartbeatSigner,
  HeartbeatVerifier,
  heartbeatSigningInput,
  PresenceTracker,
} from '../../bridge/relay/presence.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import { Host } from '../../runtime/host.ts';
import { isDid, publicKeyOfDid } from '../../runtime/identity/did.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

afterEach(() => cleanupTempDirs());

it('marks a DID offline within three intervals of its last heartbeat and online again when they resume', () => {
  const clock = new ManualClock();
  const tracker = new PresenceTracker(clock);
  const did = generateIdentity().did;
  const changes: string[] = [];
  tracker.onChange((c) => changes.push(`${c.online ? 'on' : 'off'}@${clock.now() - 1_700_000_000_000}`));
  const beat = () => tracker.observe({ host: 'h', dids: [did], interval: 1_000 });
  beat();
  for (let t = 0; t < 20; t++) {
    clock.advance(250);
    tracker.sweep();
    if (t < 4) beat();
  }
  expect(tracker.isOnline(did)).toBe(false);
  const offlineAt = Number(changes[1]?.split('@')[1]);
  // Last heartbeat at 1000 ms; offline no later than 3 intervals after it.
  expect(offlineAt - 1_000).toBeLessThanOrEqual(3_000);
  beat();
  expect(tracker.isOnline(did)).toBe(true);
  tracker.observe({ host: 'h', dids: [], interval: 1_000, bye: true });
  expect(tracker.isOnline(did)).toBe(false);
  expect(changes.map((c) => c.split('@')[0])).toEqual(['on', 'off', 'on', 'off']);
});

/** Keys of a host and of the DIDs it holds, as the keystore would sign with them. */
function hostKeys(dids: Array<ReturnType<typeof generateIdentity>>) {
  const seed = nodeSuite.randomBytes(32);
  return {
    hostPublicKey: () => nodeSuite.ed25519PublicKey(seed),
    hostSign: (m: Uint8Array) => nodeSuite.sign(seed, m),
    sign: (did: string, m: Uint8Array) => {
      const id = dids.find((d) => d.did === did);
      if (id === undefined) throw new Error(`no key for ${did}`);
      return nodeSuite.sign(id.seed, m);
    },
  };
}

function verifier(clock: ManualClock) {
  return new HeartbeatVerifier(
    (k, m, s) => nodeSuite.verify(k, m, s),
    (did) => (isDid(did, 'agentnexus') ? publicKeyOfDid(did) : undefined),
    () => clock.now(),
  );
}

const decoded = (bytes: Uint8Array) => decodeHeartbeat(bytes) as Heartbeat;

it('ignores malformed heartbeats', () => {
  expect(decodeHeartbeat(new Uint8Array([0xc1]))).toBeUndefined();
  const alice = generateIdentity();
  const signer = new HeartbeatSigner('h', hostKeys([alice]));
  const good = decoded(signer.heartbeat([alice.did], 1_000));
  expect(good.dids).toEqual([alice.did]);
  expect(decodeHeartbeat(encodeHeartbeat({ ...good, interval: -1 }))).toBeUndefined();
  expect(decodeHeartbeat(encodeHeartbeat({ ...good, sig: new Uint8Array(3) }))).toBeUndefined();
  expect(decodeHeartbeat(encodeHeartbeat({ ...good, key: new Uint8Array(31) }))).toBeUndefined();
  expect(
    decodeHeartbeat(encodeHeartbeat({ ...good, grants: [{ did: 'x', exp: 1, sig: new Uint8Array(1) }] })),
  ).toBeUndefined();
});

it('counts only DIDs that granted the signing host, and refuses forged, tampered, replayed and stale heartbeats', () => {
  const clock = new ManualClock();
  const v = verifier(clock);
  const alice = generateIdentity();
  const bob = generateIdentity();
  const real = new HeartbeatSigner('h1', hostKeys([alice]), () => clock.now());
  const first = decoded(real.heartbeat([alice.did], 1_000));
  expect(v.check(first)).toMatchObject({ dids: [alice.did], interval: 1_000 });
  const realHost = (v.check(decoded(real.heartbeat([alice.did], 1_000))) as { host: string }).host;
  clock.advance(10);
  expect(v.check(decoded(real.heartbeat([alice.did], 1_000)))).toMatchObject({ dids: [alice.did] });

  // Another host claims alice (no grant of hers for its key) and bob (who did grant it): only bob counts.
  const rogueKeys = hostKeys([bob]);
  const rogue = new HeartbeatSigner('h1', rogueKeys, () => clock.now());
  const claim = decoded(rogue.heartbeat([bob.did], 1_000));
  claim.dids.push(alice.did);
  claim.sig = rogueKeys.hostSign(heartbeatSigningInput(claim));
  const rogueView = v.check(claim);
  expect(rogueView).toMatchObject({ dids: [bob.did] });
  expect((rogueView as { host: string }).host).not.toBe(realHost);
  // Alice's grant copied into the rogue heartbeat names the real key: still not counted.
  clock.advance(10);
  const stolen = decoded(rogue.heartbeat([bob.did], 1_000));
  const stolenBody = { ...stolen, dids: [bob.did, alice.did], grants: [...stolen.grants, ...first.grants] };
  const forged = { ...stolenBody, sig: rogueKeys.hostSign(heartbeatSigningInput(stolenBody)) };
  expect(v.check(forged)).toMatchObject({ dids: [bob.did] });

  // Tampered: a DID added after signing.
  clock.advance(10);
  const tampered = decoded(real.heartbeat([alice.did], 1_000));
  tampered.interval = 50_000;
  expect(v.check(tampered)).toBe('signature');
  // The same heartbeat again (announced for a new watcher) is a repeat, not news; an older one is a replay.
  clock.advance(10);
  const fresh = decoded(real.heartbeat([alice.did], 1_000));
  expect(v.check(fresh)).toMatchObject({ dids: [alice.did] });
  expect(v.check(fresh)).toBe('repeated');
  expect(v.check(first)).toBe('replayed');
  // A goodbye from the rogue key for the real host's id says nothing about alice.
  clock.advance(10);
  expect(v.check(decoded(rogue.heartbeat([], 1_000, true)))).toMatchObject({ bye: true, dids: [] });
  // Stale: a heartbeat signed far from this clock; and an interval above the cap.
  const late = new HeartbeatSigner('h2', hostKeys([alice]), () => clock.now() - 10 * 60_000);
  expect(v.check(decoded(late.heartbeat([alice.did], 1_000)))).toBe('stale');
  const slow = new HeartbeatSigner('h3', hostKeys([alice]), () => clock.now());
  expect(v.check(decoded(slow.heartbeat([alice.did], 120_000)))).toBe('interval');
});

it('keeps a tracked DID online only under its own host key', () => {
  const clock = new ManualClock();
  const v = verifier(clock);
  const tracker = new PresenceTracker(clock);
  const alice = generateIdentity();
  const real = new HeartbeatSigner('h1', hostKeys([alice]), () => clock.now());
  const rogue = new HeartbeatSigner('h1', hostKeys([]), () => clock.now());
  const observe = (bytes: Uint8Array) => {
    const update = v.check(decoded(bytes));
    if (typeof update !== 'string') tracker.observe(update);
  };
  observe(real.heartbeat([alice.did], 1_000));
  expect(tracker.isOnline(alice.did)).toBe(true);
  clock.advance(5);
  observe(rogue.heartbeat([], 1_000, true));
  observe(rogue.heartbeat([], 1_000));
  expect(tracker.isOnline(alice.did)).toBe(true);
  clock.advance(5);
  observe(real.heartbeat([], 1_000, true));
  expect(tracker.isOnline(alice.did)).toBe(false);
});

it('spreads grants of a large host over several heartbeats and renews them before they expire', () => {
  const clock = new ManualClock();
  const v = verifier(clock);
  const ids = Array.from({ length: 300 }, () => generateIdentity());
  const signer = new HeartbeatSigner('big', hostKeys(ids), () => clock.now());
  const all = ids.map((i) => i.did);
  const first = decoded(signer.heartbeat(all, 1_000));
  expect(first.grants).toHaveLength(300);
  expect((v.check(first) as { dids: string[] }).dids).toHaveLength(300);
  clock.advance(1_000);
  const second = decoded(signer.heartbeat(all, 1_000));
  expect(second.grants.length).toBe(256);
  // A watcher that starts late learns every DID within a few beats.
  const late = verifier(clock);
  let seen = 0;
  for (let i = 0; i < 4; i++) {
    clock.advance(1_000);
    seen = (late.check(decoded(signer.heartbeat(all, 1_000))) as { dids: string[] }).dids.length;
  }
  expect(seen).toBe(300);
  // Grants are renewed ahead of their hour.
  clock.advance(55 * 60_000);
  const renewed = decoded(signer.heartbeat(all, 1_000));
  expect(renewed.grants).toHaveLength(300);
  expect(Math.min(...renewed.grants.map((g) => g.exp))).toBeGreaterThan(clock.now() + 50 * 60_000);
});

it('keeps the DID actor presence deadline out of its inbox', async () => {
  const host = await Host.open({ dataDir: tempDir(), noSync: true });
  try {
    const me = await host.createIdentity();
    host.system.tell(host.system.envelope({ type: 'presence.online', from: 'host', to: me.did }));
    await waitFor(() => host.identities()[0]?.presence === 'online', 5_000, 'online');
    // Firing the deadline the kernel keeps for the actor.
    const timers = [...host.store.timers.getRange({})];
    expect(timers.length).toBeGreaterThan(0);
    const [, address, id] = timers[0]!.key as [number, string, string];
    (host.system as unknown as { enqueueTimer(a: string, i: string): void }).enqueueTimer(address, id);
    await waitFor(() => host.identities()[0]?.presence === 'offline', 5_000, 'offline');
    expect(host.inbox(me.did).messages).toEqual([]);
  } finally {
    await host.close();
  }
});
