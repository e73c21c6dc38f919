import { afterAll, expect, it } from 'vitest';
import type { EventV1 } from '../../runtime/events/event.ts';
import { type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const TOTAL = 10_000;
const BATCH = 2_500;
const started: DaemonProcess[] = [];

afterAll(async () => {
  for (const d of started) await killHard(d);
  cleanupTempDirs();
});

interface Inbox {
  received: number;
  messages: Array<{ id: string; from: string; body: { n: number } }>;
}

it('processes every message exactly once across a kill -9 mid-stream, with every event present', {
  timeout: 180_000,
}, async () => {
  const dataDir = tempDir();
  // Small kernel turns in the first life: most accepted mail waits in the outbox for bob's turns.
  let daemon = await startDaemonProcess(dataDir, 30_000, { env: { ANX_TURN_SIZE: '64' } });
  started.push(daemon);
  const alice = await daemon.api.post<{ did: string }>('/v1/identities', { name: 'alice' });
  const bob = await daemon.api.post<{ did: string }>('/v1/identities', { name: 'bob' });

  const ids = Array.from({ length: TOTAL }, (_, i) => `message-${String(i).padStart(8, '0')}`);
  const batches: Array<Array<{ from: string; to: string; id: string; body: { n: number } }>> = [];
  for (let i = 0; i < TOTAL; i += BATCH) {
    batches.push(
      ids.slice(i, i + BATCH).map((id, j) => ({ from: alice.did, to: bob.did, id, body: { n: i + j } })),
    );
  }

  // First life: every batch is posted at once; the daemon is killed the moment half of them have been
  // acknowledged, while it is still accepting the rest and working through the accepted ones (64 per
  // turn, each turn's commit in flight while the next runs).
  const half = batches.length / 2;
  let acked = 0;
  let killed: Promise<void> | undefined;
  const posts = batches.map((batch) =>
    daemon.api.post('/v1/messages', { messages: batch }).then(
      () => {
        acked++;
        if (acked === half) killed = killHard(daemon);
      },
      () => undefined,
    ),
  );
  await Promise.all(posts);
  await killed;
  expect(acked).toBeGreaterThanOrEqual(half);

  // Second life: the sender retries every batch; ids make the retries idempotent.
  daemon = await startDaemonProcess(dataDir);
  started.push(daemon);
  // The kill landed mid-stream: committed mail was still waiting in the outbox and was replayed.
  const { restored } = await daemon.api.get<{ restored: { replayed: number } }>('/v1/status');
  expect(restored.replayed).toBeGreaterThan(0);
  let duplicates = 0;
  for (const batch of batches) {
    const { results } = await daemon.api.post<{ results: Array<{ duplicate: boolean }> }>('/v1/messages', {
      messages: batch,
    });
    duplicates += results.filter((r) => r.duplicate).length;
  }
  expect(duplicates).toBeGreaterThanOrEqual(half * BATCH);
  await waitFor(
    async () => (await daemon.api.get<Inbox>(`/v1/inbox/${bob.did}?limit=1`)).received >= TOTAL,
    120_000,
    'all messages to be processed',
  );
  // Let anything left settle, then check nothing more arrives.
  await new Promise((r) => setTimeout(r, 300));

  const inbox = await daemon.api.get<Inbox>(`/v1/inbox/${bob.did}`);
  expect(inbox.received).toBe(TOTAL);
  // Exactly once...
  expect([...inbox.messages.map((m) => m.id)].sort()).toEqual(ids);
  // ...and in the order each request sent them (batches were posted concurrently, so only
  // the order inside a batch is the sender's).
  const lastInBatch = new Map<number, number>();
  for (const m of inbox.messages) {
    const batch = Math.floor(m.body.n / BATCH);
    expect(m.body.n).toBeGreaterThan(lastInBatch.get(batch) ?? -1);
    lastInBatch.set(batch, m.body.n);
  }

  const { events } = await daemon.api.get<{ events: EventV1[] }>(`/v1/trace/${bob.did}?kind=message`);
  const eventIds = events.map((e) => (e.payload as { id: string }).id);
  expect(eventIds).toHaveLength(TOTAL);
  expect(new Set(eventIds).size).toBe(TOTAL);
  expect([...eventIds].sort()).toEqual(ids);
  const status = await daemon.api.get<{ outbox: number }>('/v1/status');
  expect(status.outbox).toBe(0);
  await daemon.api.post('/v1/stop');
  await waitFor(() => daemon.child.exitCode !== null, 30_000, 'the daemon to stop');
});
