// Pruning of remembered message ids: what is forgotten and when, in slices, and how long the relay makes the host remember.
import { afterEach, expect, it, vi } from 'vitest';
import { Relay } from '../../bridge/relay/relay.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { nodeSuite } from '../../runtime/crypto/index.ts';
import { createEnvelope, encodeEnvelope, signEnvelope } from '../../runtime/envelope/index.ts';
import { Host, SEEN_RETENTION_MS } from '../../runtime/host.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { InProcessTransport, Switchboard } from '../../runtime/transport/inprocess.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const HOUR = 60 * 60_000;
const DAY = 24 * HOUR;
const opened: Host[] = [];

afterEach(async () => {
  for (const host of opened.splice(0)) await host.close();
  cleanupTempDirs();
});

async function openHost(options: { replayWindowMs?: number } = {}) {
  const clock = new ManualClock();
  const host = await Host.open({ dataDir: tempDir(), clock, noSync: true, ...options });
  opened.push(host);
  return { host, clock };
}

/** Writes `count` remembered ids with the given `ts`, keyed as the kernel keys them ([to, id]). */
async function remember(host: Host, to: string, count: number, ts: number, prefix: string) {
  for (let i = 0; i < count; i++)
    host.system.commits.put(host.store.seen, [to, `${prefix}${String(i).padStart(6, '0')}`], ts);
  await host.system.commits.flush();
}

function seenKeys(host: Host): string[] {
  return [...host.store.seen.getKeys({})].map((k) => JSON.stringify(k));
}

it('forgets ids older than the retention and keeps the rest, slice by slice, each slice committed before the next', async () => {
  const { host, clock } = await openHost();
  const now = clock.now();
  // Interleaved in key order, so every slice holds both kinds.
  for (const to of ['did:agentnexus:z6MkA', 'did:agentnexus:z6MkB', 'did:agentnexus:z6MkC']) {
    await remember(host, to, 1_000, now - SEEN_RETENTION_MS - 1, 'old-');
    await remember(host, to, 700, now - SEEN_RETENTION_MS + 1, 'new-');
  }
  const wireFrom = generateIdentity().did;
  host.system.commits.put(host.store.seen, ['wire', wireFrom, 'old-wire-id-000001'], now - 2 * DAY);
  host.system.commits.put(host.store.seen, ['wire', wireFrom, 'new-wire-id-000001'], now - HOUR);
  await host.system.commits.flush();
  expect(seenKeys(host)).toHaveLength(3 * 1_700 + 2);

  const remove = vi.spyOn(host.system.commits, 'remove');
  const flush = vi.spyOn(host.system.commits, 'flush');
  const pass = host.pruneSeen(now, 500);
  // A call while the pass runs gets the pass after it, which finds nothing left.
  const next = host.pruneSeen(now, 500);
  expect(next).not.toBe(pass);
  expect(await pass).toBe(3 * 1_000 + 1);
  expect(await next).toBe(0);
  // Removals staged before each commit: none of those commits carries more than one slice.
  const flushes = flush.mock.invocationCallOrder;
  const batches = flushes.map(
    (at, i) =>
      remove.mock.invocationCallOrder.filter((r) => r < at && (i === 0 || r > (flushes[i - 1] ?? 0))).length,
  );
  remove.mockRestore();
  flush.mockRestore();
  expect(batches.reduce((a, b) => a + b, 0)).toBe(3 * 1_000 + 1);
  expect(Math.max(...batches)).toBeLessThanOrEqual(500);
  expect(batches.filter((n) => n > 0).length).toBeGreaterThanOrEqual(7);

  const left = seenKeys(host);
  expect(left).toHaveLength(3 * 700 + 1);
  expect(left.some((k) => k.includes('old-'))).toBe(false);
  expect(left).toContain(JSON.stringify(['wire', wireFrom, 'new-wire-id-000001']));
  // Nothing left to do: a second pass removes nothing.
  expect(await host.pruneSeen(now, 500)).toBe(0);
});

it('runs by itself every hour, and a wire envelope older than the retention is then refused by its timestamp', async () => {
  const { host, clock } = await openHost();
  const bob = (await host.createIdentity({ name: 'bob' })).did;
  const stranger = generateIdentity();
  const env = signEnvelope(
    createEnvelope({ type: 'message', from: stranger.did, to: bob, body: { text: 'hi' }, ts: clock.now() }),
    stranger.seed,
    nodeSuite,
  );
  const bytes = encodeEnvelope(env);
  expect(await host.receive(bytes)).toEqual({ id: env.id, duplicate: false });
  await expect(host.receive(bytes)).rejects.toMatchObject({ code: 'ANX_ENVELOPE_DUPLICATE' });
  const key = JSON.stringify(['wire', stranger.did, env.id]);
  expect(seenKeys(host)).toContain(key);

  // Still remembered a whole retention later (the hourly passes ran, the entry is not old enough yet).
  clock.advance(SEEN_RETENTION_MS - HOUR);
  await vi.waitFor(() => expect(seenKeys(host)).toContain(key));
  clock.advance(2 * HOUR);
  await vi.waitFor(() => expect(seenKeys(host)).not.toContain(key));
  // Forgotten, and still refused: the replay window turns it away before the id is looked up.
  await expect(host.receive(bytes)).rejects.toMatchObject({ code: 'ANX_ENVELOPE_REPLAY_WINDOW' });
});

it('remembers ids at least as long as the replay window, and as long as a bound relay accepts offline mail', async () => {
  const { host: wide } = await openHost({ replayWindowMs: 3 * DAY });
  expect(wide.seenRetentionMs).toBe(3 * DAY);

  const { host, clock } = await openHost();
  expect(host.seenRetentionMs).toBe(SEEN_RETENTION_MS);
  const relay = new Relay({ transport: new InProcessTransport(new Switchboard()) });
  relay.bind(host);
  // Sealed mail is accepted up to the mail retention (7 days by default) old.
  expect(host.seenRetentionMs).toBe(7 * DAY);
  // Never shortened by a later, smaller need.
  host.retainSeenFor(HOUR);
  expect(host.seenRetentionMs).toBe(7 * DAY);

  const now = clock.now();
  const from = generateIdentity().did;
  host.system.commits.put(host.store.seen, ['wire', from, 'two-days-old-000001'], now - 2 * DAY);
  host.system.commits.put(host.store.seen, ['wire', from, 'eight-days-old-0001'], now - 8 * DAY);
  await host.system.commits.flush();
  expect(await host.pruneSeen(now)).toBe(1);
  expect(seenKeys(host)).toEqual([JSON.stringify(['wire', from, 'two-days-old-000001'])]);
});

it('stops a pass at close after the slice under way, and loses none of what that slice removed', async () => {
  const { host, clock } = await openHost();
  await remember(host, 'did:agentnexus:z6MkA', 3_000, clock.now() - 2 * DAY, 'old-');
  const pass = host.pruneSeen(clock.now(), 100);
  opened.splice(opened.indexOf(host), 1);
  await host.close();
  const removed = await pass;
  expect(removed).toBeGreaterThan(0);
  expect(removed).toBeLessThan(3_000);
  // Reopened: exactly what the pass reported is gone.
  const again = await Host.open({ dataDir: host.dataDir, clock, noSync: true });
  opened.push(again);
  expect(seenKeys(again)).toHaveLength(3_000 - removed);
});
