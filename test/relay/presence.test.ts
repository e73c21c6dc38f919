// Presence: offline within three heartbeat intervals, online again when heartbeats resume, at once on goodbye;
// malformed heartbeats ignored; the DID actor's presence deadline never lands in its inbox.
import { afterEach, expect, it } from 'vitest';
import { decodeHeartbeat, encodeHeartbeat, PresenceTracker } from '../../bridge/relay/presence.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { Host } from '../../runtime/host.ts';
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
  const beat = () => tracker.observe({ v: 1, host: 'h', dids: [did], interval: 1_000, ts: clock.now() });
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
  tracker.observe({ v: 1, host: 'h', dids: [], interval: 1_000, ts: clock.now(), bye: true });
  expect(tracker.isOnline(did)).toBe(false);
  expect(changes.map((c) => c.split('@')[0])).toEqual(['on', 'off', 'on', 'off']);
});

it('ignores malformed heartbeats and DIDs that are not DIDs', () => {
  expect(decodeHeartbeat(new Uint8Array([0xc1]))).toBeUndefined();
  expect(
    decodeHeartbeat(encodeHeartbeat({ v: 1, host: 'h', dids: [], interval: -1, ts: 0 })),
  ).toBeUndefined();
  const hb = decodeHeartbeat(
    encodeHeartbeat({ v: 1, host: 'h', dids: ['bob', generateIdentity().did], interval: 5, ts: 0 }),
  );
  expect(hb?.dids.length).toBe(1);
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
