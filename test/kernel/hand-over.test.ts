// Mail between local durable actors: an idle receiver takes it in the group commit of the transition that sent it.
import { describe, expect, it } from 'vitest';
import { watchTransactions } from '../helpers/lmdb.ts';
import { tempDir } from '../helpers/tmp.ts';
import { pingActor } from './fixtures.ts';
import { closeSystem, openSystem } from './systems.ts';

/** A system with two ping actors, counting LMDB transactions and outbox writes from now on. */
async function pair(turnSize?: number) {
  const { sys, store } = await openSystem([pingActor], turnSize === undefined ? {} : { turnSize });
  await sys.spawn('ping', 'ping/a');
  await sys.spawn('ping', 'ping/b');
  const watched = watchTransactions(store.root);
  const counts = {
    outboxWrites: 0,
    get transactions() {
      return watched.transactions;
    },
  };
  const put = store.outbox.put.bind(store.outbox);
  store.outbox.put = ((...args: Parameters<typeof store.outbox.put>) => {
    counts.outboxWrites++;
    return put(...args);
  }) as typeof store.outbox.put;
  const pings = (address: string) => sys.records('pings', address).map((r) => r.value as number);
  const ping = (to: string, body: Record<string, unknown>) =>
    sys.envelope({ type: 'ping', from: 'host', to, body });
  return { sys, store, counts, pings, ping };
}

describe('hand-over between local actors', () => {
  it('lets an idle receiver take mail in the commit of the transition that sent it, with no outbox entry', async () => {
    const { sys, store, counts, pings, ping } = await pair();
    // Six pings back and forth: the accept resolves once the whole exchange is on disk, in one transaction.
    await sys.accept([ping('ping/a', { seq: 0, left: 5, peer: 'ping/b' })]);
    expect(counts.transactions).toBe(1);
    expect(counts.outboxWrites).toBe(0);
    expect(pings('ping/a')).toEqual([0, 2, 4]);
    expect(pings('ping/b')).toEqual([1, 3, 5]);
    const stored = (address: string) =>
      (store.actors.get(address) as { s: { context: { count: number } } }).s.context;
    expect(stored('ping/a').count).toBe(3);
    expect(stored('ping/b').count).toBe(3);
    expect(store.outbox.getKeysCount()).toBe(0);
  });

  it('hands over at most one turn of mail, keeps the order of the rest and lets other work in', async () => {
    const { sys, counts, pings, ping } = await pair(8);
    // One transition sends 40 pings: 8 are taken at once, the rest wait for the commit, in order.
    await sys.accept([ping('ping/a', { seq: 0, burst: 40, peer: 'ping/b' })]);
    await sys.quiesce();
    expect(pings('ping/b')).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // An endless-looking exchange does not hold the loop: it runs in turns, each with its own commit.
    const before = counts.transactions;
    let timerRan = false;
    setImmediate(() => {
      timerRan = true;
    });
    await sys.accept([ping('ping/a', { seq: 100, left: 200, peer: 'ping/b' })]);
    await sys.quiesce();
    expect(timerRan).toBe(true);
    expect(counts.transactions - before).toBeGreaterThanOrEqual(200 / 9);
    expect(pings('ping/a').slice(1)).toEqual(Array.from({ length: 101 }, (_, i) => 100 + 2 * i));
    expect(pings('ping/b').slice(40)).toEqual(Array.from({ length: 100 }, (_, i) => 101 + 2 * i));
  });

  it('does not let later mail overtake mail still waiting for its commit', async () => {
    const { sys, pings, ping } = await pair(8);
    // The first burst hands 8 pings over and leaves 12 for the commit; the second message to ping/a is
    // handled in the next turn, before that commit lands: its ping to ping/b must queue behind the 12.
    await sys.accept([
      ping('ping/a', { seq: 0, burst: 20, peer: 'ping/b' }),
      ping('ping/a', { seq: 20, burst: 1, peer: 'ping/b' }),
    ]);
    await sys.quiesce();
    expect(pings('ping/b')).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
  });

  it('restores both actors as committed after a restart', async () => {
    const dir = tempDir();
    const first = await openSystem([pingActor], { dir });
    const sys = first.sys;
    await sys.spawn('ping', 'ping/a');
    await sys.spawn('ping', 'ping/b');
    await sys.accept([
      sys.envelope({ type: 'ping', from: 'host', to: 'ping/a', body: { seq: 0, left: 3, peer: 'ping/b' } }),
    ]);
    await closeSystem(first);
    const { sys: restarted, store: again } = await openSystem([pingActor], { dir });
    await restarted.quiesce();
    // Nothing left to replay, nothing handled twice.
    expect(again.outbox.getKeysCount()).toBe(0);
    expect(restarted.records('pings', 'ping/a').map((r) => r.value)).toEqual([0, 2]);
    expect(restarted.records('pings', 'ping/b').map((r) => r.value)).toEqual([1, 3]);
    expect((restarted.snapshot('ping/b').context as { count: number }).count).toBe(2);
  });
});
