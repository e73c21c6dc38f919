import { afterEach, describe, expect, it } from 'vitest';
import { didActor } from '../../actors/did.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { ActorSystem, type MachineDefinition, RECORD_SEQ_BLOCK } from '../../runtime/kernel/actor-system.ts';
import { openStore, type Store } from '../../runtime/store/store.ts';
import { watchTransactions } from '../helpers/lmdb.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { bundledActor, counterActor, delayActor, ledgerActor } from './fixtures.ts';

const open: Array<{ sys: ActorSystem; store: Store }> = [];

async function boot(dir: string, defs: MachineDefinition[], clock?: ManualClock, maxActive?: number) {
  const store = openStore(dir);
  const sys = new ActorSystem({ store, ...(clock ? { clock } : {}), ...(maxActive ? { maxActive } : {}) });
  for (const d of defs) sys.register(d);
  const started = await sys.start();
  open.push({ sys, store });
  return { sys, store, started };
}

async function shutdown(entry: { sys: ActorSystem; store: Store }) {
  const i = open.indexOf(entry);
  if (i >= 0) open.splice(i, 1);
  await entry.sys.stop();
  await entry.store.close();
}

afterEach(async () => {
  for (const entry of open.splice(0)) {
    await entry.sys.stop();
    await entry.store.close();
  }
  cleanupTempDirs();
});

const tick = (sys: ActorSystem, to: string, body: unknown = {}, id?: string) =>
  sys.envelope({ type: 'tick', from: 'host', to, body, ...(id ? { id } : {}) });

describe('actor system', () => {
  it('commits snapshot, sent envelopes, records and events of a transition together', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    await host.sys.spawn('counter', 'counter/a');
    await host.sys.spawn('counter', 'counter/b');
    await host.sys.accept([tick(host.sys, 'counter/a', { next: 'counter/b' })]);
    await host.sys.quiesce();
    expect(host.sys.snapshot('counter/a').context).toEqual({ count: 1, ids: 0 });
    expect(host.sys.snapshot('counter/b').context).toEqual({ count: 1, ids: 0 });
    expect(host.sys.countRecords('seen', 'counter/b')).toBe(1);
    expect(host.sys.events.trace('counter/a')).toHaveLength(1);
    expect(host.store.outbox.getKeysCount()).toBe(0);
  });

  it('applies the effects of one anx.effects event in their order, and no nested ones', async () => {
    const host = await boot(tempDir(), [bundledActor(), counterActor()]);
    await host.sys.spawn('bundled', 'bundled/a');
    await host.sys.spawn('counter', 'counter/b');
    const first = tick(host.sys, 'bundled/a', { next: 'counter/b' });
    const second = tick(host.sys, 'bundled/a');
    await host.sys.accept([first, second]);
    await host.sys.quiesce();
    expect(host.sys.records('seen', 'bundled/a').map((r) => r.value)).toEqual([
      `${first.id}/1`,
      `${first.id}/2`,
      `${second.id}/1`,
      `${second.id}/2`,
    ]);
    expect(host.sys.events.trace('bundled/a').map((e) => (e.payload as { id: string }).id)).toEqual([
      first.id,
      second.id,
    ]);
    // The send inside the bundle went out after the commit, like any other.
    expect(host.sys.snapshot('counter/b').context).toEqual({ count: 1, ids: 0 });
    expect(host.store.outbox.getKeysCount()).toBe(0);
  });

  it('handles an envelope accepted for an idle local actor in the commit of the accept, leaving no outbox entry', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    await host.sys.spawn('counter', 'counter/a');
    let outboxWrites = 0;
    const { root, outbox } = host.store;
    const counts = watchTransactions(root);
    const put = outbox.put.bind(outbox);
    outbox.put = ((...args: Parameters<typeof outbox.put>) => {
      outboxWrites++;
      return put(...args);
    }) as typeof outbox.put;
    await host.sys.accept([tick(host.sys, 'counter/a')]);
    // Resolved: the transition is on disk already, in the one transaction that took the envelope.
    expect(counts.transactions).toBe(1);
    expect(outboxWrites).toBe(0);
    expect((host.store.actors.get('counter/a') as { s: { context: unknown } }).s.context).toEqual({
      count: 1,
      ids: 0,
    });
    expect(host.sys.countRecords('seen', 'counter/a')).toBe(1);
    // Mail for an actor that is busy waits its turn in the outbox: order is kept.
    const envs = Array.from({ length: 3 }, (_, i) => tick(host.sys, 'counter/a', {}, `late-${i}`));
    await Promise.all([host.sys.accept(envs.slice(0, 1)), host.sys.accept(envs.slice(1))]);
    await host.sys.quiesce();
    expect(host.sys.records('seen', 'counter/a').map((r) => r.value)).toEqual([
      expect.any(String),
      'late-0',
      'late-1',
      'late-2',
    ]);
    expect(host.store.outbox.getKeysCount()).toBe(0);
  });

  it('tells onAppended listeners of the records of each commit after it lands, as written and before its event listeners', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    await host.sys.spawn('counter', 'counter/a');
    await host.sys.spawn('counter', 'counter/b');
    const heard: Array<{ collection: string; owner: string; seq: number; value: unknown; onDisk: boolean }> =
      [];
    const order: string[] = [];
    host.sys.onAppended(() => {
      throw new Error('a failing listener');
    });
    const stop = host.sys.onAppended((records) => {
      order.push('records');
      for (const r of records)
        heard.push({ ...r, onDisk: host.sys.records(r.collection, r.owner).some((x) => x.seq === r.seq) });
    });
    host.sys.events.subscribe(() => order.push('events'));
    const envs = [
      tick(host.sys, 'counter/a', { next: 'counter/b' }, 'first'),
      tick(host.sys, 'counter/a', {}, 'second'),
    ];
    await host.sys.accept(envs);
    await host.sys.quiesce();
    // Every record, once, committed before it was told, with the seq it has on disk.
    for (const owner of ['counter/a', 'counter/b'])
      expect(heard.filter((r) => r.owner === owner).map(({ seq, value }) => ({ seq, value }))).toEqual(
        host.sys.records('seen', owner),
      );
    expect(heard.every((r) => r.collection === 'seen' && r.onDisk)).toBe(true);
    expect(order[0]).toBe('records');
    stop();
    await host.sys.accept([tick(host.sys, 'counter/a', {}, 'third')]);
    await host.sys.quiesce();
    expect(heard).toHaveLength(3);
  });

  it('keeps per-sender order and handles each accepted message once', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    await host.sys.spawn('counter', 'counter/a');
    const envs = Array.from({ length: 500 }, (_, i) =>
      tick(host.sys, 'counter/a', {}, `msg-${String(i).padStart(6, '0')}`),
    );
    await host.sys.accept(envs);
    const again = await host.sys.accept(envs.slice(0, 10));
    expect(again.every((r) => r.duplicate)).toBe(true);
    await host.sys.quiesce();
    const seen = host.sys.records('seen', 'counter/a').map((r) => r.value);
    expect(seen).toEqual(envs.map((e) => e.id));
  });

  it('resumes after a restart: replays the outbox and restores snapshots', async () => {
    const dir = tempDir();
    const first = await boot(dir, [counterActor()]);
    await first.sys.spawn('counter', 'counter/a');
    await first.sys.accept([tick(first.sys, 'counter/a')]);
    await first.sys.quiesce();
    await shutdown(first);
    // Write mail straight into the outbox, as a crash between commit and dispatch would leave it.
    const second = await boot(dir, [counterActor()]);
    await second.sys.accept([tick(second.sys, 'counter/a'), tick(second.sys, 'counter/a')]);
    await second.sys.quiesce();
    expect(second.sys.snapshot('counter/a').context).toEqual({ count: 3, ids: 0 });
  });

  it('reserves record sequence numbers a block at a time, and never uses one twice across a restart', async () => {
    const dir = tempDir();
    const first = await boot(dir, [counterActor()]);
    await first.sys.spawn('counter', 'counter/a');
    const meta = first.store.meta;
    const put = meta.put.bind(meta);
    const reserved: unknown[] = [];
    meta.put = ((key: string, value: unknown) => {
      if (key === 'seq.records') reserved.push(value);
      return put(key, value);
    }) as typeof meta.put;
    // One record per commit: the counter appends each tick's id to its `seen` records.
    for (let i = 0; i < 5; i++) await first.sys.accept([tick(first.sys, 'counter/a', {}, `one-${i}`)]);
    await first.sys.quiesce();
    expect(reserved).toEqual([1 + RECORD_SEQ_BLOCK]);
    const before = first.sys.records('seen', 'counter/a').map((r) => r.seq);
    expect(before).toEqual([1, 2, 3, 4, 5]);
    // A stop (clean or not) leaves the reservation as it was: the next start goes on past the block, not
    // from the last number used.
    await shutdown(first);
    const second = await boot(dir, [counterActor()]);
    await second.sys.accept([
      tick(second.sys, 'counter/a', {}, 'two-0'),
      tick(second.sys, 'counter/a', {}, 'two-1'),
    ]);
    await second.sys.quiesce();
    const after = second.sys.records('seen', 'counter/a');
    expect(after.map((r) => r.seq)).toEqual([...before, 2 + RECORD_SEQ_BLOCK, 3 + RECORD_SEQ_BLOCK]);
    expect(after.map((r) => r.value).slice(-2)).toEqual(['two-0', 'two-1']);
    expect(second.store.meta.get('seq.records')).toBe(3 + 2 * RECORD_SEQ_BLOCK);
  });

  it('dead-letters mail to an unknown address with an error event and keeps running', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    await host.sys.spawn('counter', 'counter/a');
    await host.sys.accept([tick(host.sys, 'counter/nobody'), tick(host.sys, 'counter/a')]);
    await host.sys.quiesce();
    const errors = host.sys.events.trace('counter/nobody');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.payload).toMatchObject({ code: 'ANX_ACTOR_UNKNOWN' });
    expect(host.sys.snapshot('counter/a').context).toMatchObject({ count: 1 });
    expect(host.store.outbox.getKeysCount()).toBe(0);
  });

  it('stops an actor that throws with an error status; others are untouched', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    await host.sys.spawn('counter', 'counter/bad');
    await host.sys.spawn('counter', 'counter/good');
    await host.sys.accept([
      host.sys.envelope({ type: 'boom', from: 'host', to: 'counter/bad' }),
      tick(host.sys, 'counter/good'),
      tick(host.sys, 'counter/bad'),
    ]);
    await host.sys.quiesce();
    expect(host.sys.info('counter/bad')?.status).toBe('error');
    const codes = host.sys.events.trace('counter/bad').map((e) => (e.payload as { code?: string }).code);
    expect(codes).toEqual(['ANX_ACTOR_FAILED', 'ANX_ACTOR_STOPPED']);
    expect(host.sys.snapshot('counter/good').context).toMatchObject({ count: 1 });
  });

  it('refuses a snapshot persisted by another machine version, keeping its mail', async () => {
    const dir = tempDir();
    const first = await boot(dir, [counterActor(1)]);
    await first.sys.spawn('counter', 'counter/a');
    await first.sys.spawn('counter', 'counter/other');
    await shutdown(first);

    const second = await boot(dir, [counterActor(2)]);
    await second.sys.accept([tick(second.sys, 'counter/a')]);
    await second.sys.quiesce();
    expect(() => second.sys.snapshot('counter/a')).toThrow(/machine version 1, this host runs version 2/);
    const errors = second.sys.events.trace('counter/a', { kinds: ['error'] });
    expect(errors[0]?.payload).toMatchObject({ code: 'ANX_MACHINE_VERSION' });
    expect(second.store.outbox.getKeysCount()).toBe(1);
    await shutdown(second);

    // The right version picks the kept mail up.
    const third = await boot(dir, [counterActor(1)]);
    await third.sys.quiesce();
    expect(third.sys.snapshot('counter/a').context).toMatchObject({ count: 1 });
  });

  it('leaves out a correlation id that is not a string instead of failing the group commit', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    await host.sys.spawn('counter', 'counter/a');
    const odd = tick(host.sys, 'counter/a');
    odd.ctx = { run_id: { nested: true }, task_id: 7 } as never;
    await host.sys.accept([odd]);
    await host.sys.accept([tick(host.sys, 'counter/a')]);
    await host.sys.quiesce();
    expect(host.sys.snapshot('counter/a').context).toMatchObject({ count: 2 });
    const events = host.sys.events.trace('counter/a');
    expect(events).toHaveLength(2);
    expect(events.every((e) => e.run_id === undefined && e.task_id === undefined)).toBe(true);
  });

  it('keeps no duplicate marker for ids the caller has just made, and still dedupes the others', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    await host.sys.spawn('counter', 'counter/a');
    const made = tick(host.sys, 'counter/a');
    const given = tick(host.sys, 'counter/a', {}, 'caller-chosen-id-0001');
    const fresh = (env: { id: string }) => env === made;
    expect(await host.sys.accept([made, given], { fresh })).toEqual([
      { id: made.id, duplicate: false },
      { id: given.id, duplicate: false },
    ]);
    expect(host.store.seen.doesExist(['counter/a', made.id])).toBe(false);
    expect(host.store.seen.doesExist(['counter/a', given.id])).toBe(true);
    // The caller's own id sent again is recognised; nothing is handled twice.
    expect(await host.sys.accept([tick(host.sys, 'counter/a', {}, 'caller-chosen-id-0001')])).toEqual([
      { id: given.id, duplicate: true },
    ]);
    await host.sys.quiesce();
    expect(host.sys.snapshot('counter/a').context).toMatchObject({ count: 2 });
  });

  it('refuses a snapshot XState cannot restore at its first message, keeping the mail and other actors', async () => {
    const dir = tempDir();
    const first = await boot(dir, [counterActor()]);
    await first.sys.spawn('counter', 'counter/a');
    await first.sys.spawn('counter', 'counter/b');
    await shutdown(first);
    const store = openStore(dir);
    const record = store.actors.get('counter/a') as { s: { value: unknown } };
    await store.actors.put('counter/a', { ...record, s: { ...record.s, value: 'no-such-state' } });
    await store.close();

    const second = await boot(dir, [counterActor()]);
    expect(second.sys.restoreAll().restored).toBe(2);
    await second.sys.accept([tick(second.sys, 'counter/a'), tick(second.sys, 'counter/b')]);
    await second.sys.quiesce();
    const errors = second.sys.events.trace('counter/a', { kinds: ['error'] });
    expect(errors.map((e) => (e.payload as { code: string }).code)).toEqual(['ANX_ACTOR_RESTORE']);
    expect(second.store.outbox.getKeysCount()).toBe(1);
    expect(second.sys.snapshot('counter/b').context).toMatchObject({ count: 1 });
    expect(() => second.sys.snapshot('counter/a')).toThrow(/could not be restored/);
  });

  it('passivates idle actors and reactivates them on their next message', async () => {
    const host = await boot(tempDir(), [counterActor()]);
    for (let i = 0; i < 50; i++) await host.sys.spawn('counter', `counter/${i}`);
    await host.sys.accept(Array.from({ length: 50 }, (_, i) => tick(host.sys, `counter/${i}`)));
    await host.sys.quiesce();
    expect(await host.sys.passivateIdle()).toBe(50);
    expect(host.sys.liveCount).toBe(0);
    await host.sys.accept([tick(host.sys, 'counter/7')]);
    await host.sys.quiesce();
    expect(host.sys.liveCount).toBe(1);
    expect(host.sys.snapshot('counter/7').context).toMatchObject({ count: 2 });
  });

  it('passivates least recently active actors beyond maxActive', async () => {
    const host = await boot(tempDir(), [counterActor()], undefined, 20);
    for (let i = 0; i < 100; i++) await host.sys.spawn('counter', `counter/${i}`);
    await host.sys.passivateIdle();
    await host.sys.accept(Array.from({ length: 100 }, (_, i) => tick(host.sys, `counter/${i}`)));
    await host.sys.quiesce();
    expect(host.sys.liveCount).toBeLessThanOrEqual(20);
    for (let i = 0; i < 100; i += 9)
      expect(host.sys.snapshot(`counter/${i}`).context).toMatchObject({ count: 1 });
  });
});

describe('entry fields', () => {
  const send = (sys: ActorSystem, type: 'add' | 'drop', key: string) =>
    sys.envelope({ type, from: 'host', to: 'ledger/a', body: { key } });

  /** The keys `store.actors` is written under from now on (puts and removals, in order). */
  function watchActorWrites(store: Store) {
    const writes: string[] = [];
    const { actors } = store;
    const put = actors.put.bind(actors);
    actors.put = ((key: unknown, ...rest: unknown[]) => {
      writes.push(`put ${JSON.stringify(key)}`);
      return (put as (...a: unknown[]) => unknown)(key, ...rest);
    }) as typeof actors.put;
    const remove = actors.remove.bind(actors);
    actors.remove = ((key: unknown, ...rest: unknown[]) => {
      writes.push(`remove ${JSON.stringify(key)}`);
      return (remove as (...a: unknown[]) => unknown)(key, ...rest);
    }) as typeof actors.remove;
    return writes;
  }

  it('keeps each entry in a record of its own, writing only the entries a transition replaced', async () => {
    const dir = tempDir();
    const first = await boot(dir, [ledgerActor, counterActor()]);
    await first.sys.spawn('ledger', 'ledger/a');
    await first.sys.spawn('counter', 'counter/a');
    for (const key of ['x', 'y', 'z']) await first.sys.accept([send(first.sys, 'add', key)]);
    await first.sys.quiesce();
    const writes = watchActorWrites(first.store);
    await first.sys.accept([send(first.sys, 'add', 'y')]);
    await first.sys.quiesce();
    expect(writes).toEqual(['put ["ledger/a","items","y"]', 'put "ledger/a"']);
    const record = first.store.actors.get('ledger/a') as { s: { context: object }; p: unknown };
    expect(record.p).toEqual({ items: ['x', 'y', 'z'] });
    expect(record.s.context).toEqual({ changes: 4 });
    expect(first.store.actors.get(['ledger/a', 'items', 'y'])).toEqual({ n: 2 });

    writes.length = 0;
    await first.sys.accept([send(first.sys, 'drop', 'x')]);
    await first.sys.quiesce();
    expect(writes).toEqual(['remove ["ledger/a","items","x"]', 'put "ledger/a"']);
    expect(first.store.actors.doesExist(['ledger/a', 'items', 'x'])).toBe(false);
    // Entry records are not actors.
    expect([...first.sys.addresses()].sort()).toEqual(['counter/a', 'ledger/a']);
    await shutdown(first);

    // Restored with its entries; the restored entries count as written, so the next change writes one.
    const second = await boot(dir, [ledgerActor, counterActor()]);
    expect(second.sys.snapshot('ledger/a').context).toEqual({
      items: { y: { n: 2 }, z: { n: 1 } },
      changes: 5,
    });
    const again = watchActorWrites(second.store);
    await second.sys.accept([send(second.sys, 'add', 'z')]);
    await second.sys.quiesce();
    expect(again).toEqual(['put ["ledger/a","items","z"]', 'put "ledger/a"']);
    expect(second.sys.restoreAll()).toEqual({ restored: 1, refused: [] });
    expect(second.sys.snapshot('ledger/a').context).toEqual({
      items: { y: { n: 2 }, z: { n: 2 } },
      changes: 6,
    });
  });

  it('reads a record written whole (an older store) as it is, and splits it at its next write', async () => {
    const dir = tempDir();
    const first = await boot(dir, [ledgerActor]);
    await first.sys.spawn('ledger', 'ledger/a');
    await first.sys.accept([send(first.sys, 'add', 'x')]);
    await first.sys.quiesce();
    await shutdown(first);
    const store = openStore(dir);
    const record = store.actors.get('ledger/a') as { s: { context: object }; p?: unknown };
    await store.actors.remove(['ledger/a', 'items', 'x']);
    delete record.p;
    record.s.context = { items: { x: { n: 1 }, w: { n: 7 } }, changes: 1 };
    await store.actors.put('ledger/a', record);
    await store.close();

    const second = await boot(dir, [ledgerActor]);
    expect(second.sys.snapshot('ledger/a').context).toEqual({
      items: { x: { n: 1 }, w: { n: 7 } },
      changes: 1,
    });
    await second.sys.accept([send(second.sys, 'add', 'x')]);
    await second.sys.quiesce();
    expect(second.store.actors.get('ledger/a')).toMatchObject({
      p: { items: ['x', 'w'] },
      s: { context: { changes: 2 } },
    });
    expect(second.store.actors.get(['ledger/a', 'items', 'w'])).toEqual({ n: 7 });
    expect(second.store.actors.get(['ledger/a', 'items', 'x'])).toEqual({ n: 2 });
  });

  it('refuses an actor whose record lists an entry that is missing, keeping its mail and other actors', async () => {
    const dir = tempDir();
    const first = await boot(dir, [ledgerActor, counterActor()]);
    await first.sys.spawn('ledger', 'ledger/a');
    await first.sys.spawn('counter', 'counter/a');
    await first.sys.accept([send(first.sys, 'add', 'x'), send(first.sys, 'add', 'y')]);
    await first.sys.quiesce();
    await shutdown(first);
    const store = openStore(dir);
    await store.actors.remove(['ledger/a', 'items', 'y']);
    await store.close();

    const second = await boot(dir, [ledgerActor, counterActor()]);
    const { refused } = second.sys.restoreAll();
    expect(refused.map((e) => [e.code, e.message])).toEqual([
      [
        'ANX_ACTOR_RESTORE',
        expect.stringMatching(/"ledger\/a" could not be restored: its record lists the entry items\/y/),
      ],
    ]);
    await second.sys.accept([send(second.sys, 'add', 'z'), tick(second.sys, 'counter/a')]);
    await second.sys.quiesce();
    expect(second.store.outbox.getKeysCount()).toBe(1);
    expect(second.sys.snapshot('counter/a').context).toMatchObject({ count: 1 });
    expect(() => second.sys.snapshot('ledger/a')).toThrow(/items\/y/);
  });
});

describe('durable timers', () => {
  it('fires a delayed transition at its deadline', async () => {
    const clock = new ManualClock();
    const host = await boot(tempDir(), [delayActor], clock);
    await host.sys.spawn('delay', 'delay/a', { delayMs: 10_000 });
    await host.sys.accept([host.sys.envelope({ type: 'go', from: 'host', to: 'delay/a' })]);
    await host.sys.quiesce();
    clock.advance(9_999);
    await host.sys.quiesce();
    expect(host.sys.snapshot('delay/a').value).toBe('waiting');
    clock.advance(1);
    await host.sys.quiesce();
    expect(host.sys.snapshot('delay/a').value).toBe('fired');
    expect(host.sys.pendingTimers).toBe(0);
  });

  it('keeps the original deadline across a restart', async () => {
    const dir = tempDir();
    const clock = new ManualClock();
    const first = await boot(dir, [delayActor], clock);
    await first.sys.spawn('delay', 'delay/a', { delayMs: 10_000 });
    await first.sys.accept([first.sys.envelope({ type: 'go', from: 'host', to: 'delay/a' })]);
    await first.sys.quiesce();
    clock.advance(6_000);
    await shutdown(first);

    const second = await boot(dir, [delayActor], clock);
    expect(second.sys.pendingTimers).toBe(1);
    clock.advance(3_999);
    await second.sys.quiesce();
    expect(second.sys.snapshot('delay/a').value).toBe('waiting');
    clock.advance(1);
    await second.sys.quiesce();
    expect(second.sys.snapshot('delay/a').value).toBe('fired');
    expect(second.sys.events.trace('delay/a').map((e) => e.payload)).toEqual([{ status: 'fired' }]);
  });

  it('drops the timer when its state is left before the deadline', async () => {
    const clock = new ManualClock();
    const host = await boot(tempDir(), [delayActor], clock);
    await host.sys.spawn('delay', 'delay/a', { delayMs: 1_000 });
    await host.sys.accept([host.sys.envelope({ type: 'go', from: 'host', to: 'delay/a' })]);
    await host.sys.quiesce();
    await host.sys.accept([host.sys.envelope({ type: 'cancel', from: 'host', to: 'delay/a' })]);
    await host.sys.quiesce();
    expect(host.sys.pendingTimers).toBe(0);
    expect(host.store.timers.getKeysCount()).toBe(0);
    clock.advance(5_000);
    await host.sys.quiesce();
    expect(host.sys.snapshot('delay/a').value).toBe('idle');
  });

  it('wakes a passivated actor when its timer is due', async () => {
    const clock = new ManualClock();
    const host = await boot(tempDir(), [delayActor], clock);
    await host.sys.spawn('delay', 'delay/a', { delayMs: 1_000 });
    await host.sys.accept([host.sys.envelope({ type: 'go', from: 'host', to: 'delay/a' })]);
    await host.sys.quiesce();
    await host.sys.passivateIdle();
    expect(host.sys.liveCount).toBe(0);
    clock.advance(1_000);
    await host.sys.quiesce();
    expect(host.sys.info('delay/a')?.value).toBe('fired');
  });
});

describe('DID actor', () => {
  const A = 'did:agentnexus:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
  const B = 'did:agentnexus:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG';
  const C = 'did:agentnexus:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf';

  it('goes offline when heartbeats stop, and online again when they resume', async () => {
    const clock = new ManualClock();
    const host = await boot(tempDir(), [didActor], clock);
    await host.sys.spawn('did', A, { presenceTtlMs: 3_000 });
    const beat = () =>
      host.sys.accept([host.sys.envelope({ type: 'presence.heartbeat', from: 'host', to: A })]);
    await beat();
    await host.sys.quiesce();
    expect(host.sys.snapshot(A).value).toMatchObject({ presence: 'online' });
    clock.advance(2_000);
    await beat();
    await host.sys.quiesce();
    clock.advance(2_000);
    await host.sys.quiesce();
    expect(host.sys.snapshot(A).value).toMatchObject({ presence: 'online' });
    clock.advance(1_000);
    await host.sys.quiesce();
    expect(host.sys.snapshot(A).value).toMatchObject({ presence: 'offline' });
    await beat();
    await host.sys.quiesce();
    expect(host.sys.snapshot(A).value).toMatchObject({ presence: 'online' });
  });

  it('enforces the gatekeeper hook: block list, private allow-list, control only from itself', async () => {
    const host = await boot(tempDir(), [didActor]);
    await host.sys.spawn('did', A);
    const send = (from: string, type: string, body: unknown = {}) =>
      host.sys.accept([host.sys.envelope({ type, from, to: A, body })]);
    await send(C, 'gatekeeper.set', { mode: 'public', block: [C] });
    await send(A, 'gatekeeper.set', { mode: 'private', allow: [B], block: [C] });
    await send(B, 'message', { text: 'allowed' });
    await send(C, 'message', { text: 'blocked' });
    await send('did:agentnexus:z6MkfrQREqT2tzM5JJhJb4M3ZJTDbZqL1FhCbbpq2Hk9b4Jz', 'message', {
      text: 'stranger',
    });
    await host.sys.quiesce();
    const inbox = host.sys.records('inbox', A).map((r) => (r.value as { body: { text: string } }).body.text);
    expect(inbox).toEqual(['allowed']);
    const codes = host.sys.events
      .trace(A, { kinds: ['error'] })
      .map((e) => (e.payload as { code: string }).code);
    expect(codes).toEqual(['ANX_CONTROL_FORBIDDEN', 'ANX_GATEKEEPER_BLOCKED', 'ANX_GATEKEEPER_PRIVATE']);
  });
});
