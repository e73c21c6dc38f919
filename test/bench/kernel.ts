// Bench group `kernel`: in-process delivery, persisted transitions, restore, passivation and reactivation,
// each next to the raw layer (msgpackr + XState, batched LMDB) measured in the same run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Packr } from 'msgpackr';
import { assign, createActor, emit, enqueueActions, setup } from 'xstate';
import { didActor } from '../../actors/did.ts';
import { ActorSystem, type MachineDefinition } from '../../runtime/kernel/actor-system.ts';
import { openStore } from '../../runtime/store/store.ts';
import { type BenchGroup, type BenchResult, median, msSince, percentile, withRatio } from './harness.ts';

interface RingEvent {
  type: string;
  body?: { hops: number; next: string; count?: number };
}

/** Each `tick` counts, emits one event and (while hops remain) forwards a tick to the next actor. */
const ringMachine = setup({
  types: { context: {} as { count: number }, events: {} as RingEvent },
}).createMachine({
  id: 'ring',
  context: { count: 0 },
  on: {
    // One `burst` makes the actor send `count` ticks to `next`: the sender's own cost is spread thin,
    // so what is measured is the delivery between the two actors.
    burst: {
      actions: enqueueActions(({ enqueue, event }) => {
        const count = event.body?.count ?? 0;
        for (let i = 0; i < count; i++) {
          enqueue.emit({
            type: 'anx.send',
            to: event.body?.next ?? '',
            msgType: 'tick',
            body: { hops: 0, next: '' },
          } as never);
        }
      }),
    },
    tick: {
      actions: [
        assign({ count: ({ context }) => context.count + 1 }),
        emit(({ event }) => ({
          type: 'anx.event',
          kind: 'status',
          payload: { hops: event.body?.hops ?? 0 },
        })),
        emit(({ event }) =>
          event.body !== undefined && event.body.hops > 0
            ? {
                type: 'anx.send',
                to: event.body.next,
                msgType: 'tick',
                body: { hops: event.body.hops - 1, next: event.body.next },
              }
            : { type: 'none' },
        ),
      ],
    },
  },
});

const ringActor: MachineDefinition = { kind: 'ring', version: 1, machine: ringMachine };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'anx-bench-'));
}

/** Raw path: msgpackr pack+unpack of an envelope and an XState transition on the receiver. */
function rawInproc(n: number): number {
  const packr = new Packr({ useRecords: false });
  const actor = createActor(ringMachine).start();
  const env = {
    v: 1,
    id: 'x'.repeat(22),
    type: 'tick',
    from: 'ring/a',
    to: 'ring/b',
    ts: Date.now(),
    body: { hops: 0, next: 'ring/a' },
  };
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) actor.send(packr.unpack(packr.pack(env)) as RingEvent);
  return n / (msSince(start) / 1000);
}

async function inproc(log: (line: string) => void): Promise<BenchResult> {
  const n = 200_000;
  const runs: number[] = [];
  const raws: number[] = [];
  for (let r = 0; r < 3; r++) {
    const dir = tempDir();
    const store = openStore(dir, { noSync: true });
    const sys = new ActorSystem({ store, turnSize: 4096 });
    sys.register(ringActor);
    await sys.start();
    await sys.spawn('ring', 'ring/a', undefined, { durable: false });
    await sys.spawn('ring', 'ring/b', undefined, { durable: false });
    const start = process.hrtime.bigint();
    // A sends n envelopes to B in bursts of 100; each is encoded, decoded and handled by B's machine.
    for (let i = 0; i < n / 100; i++) {
      sys.tell({
        v: 1,
        id: `m${i}`,
        type: 'burst',
        from: 'host',
        to: 'ring/a',
        ts: 0,
        body: { hops: 0, next: 'ring/b', count: 100 },
      });
    }
    await sys.quiesce();
    runs.push(n / (msSince(start) / 1000));
    const delivered = (sys.snapshot('ring/b').context as { count: number }).count;
    if (delivered !== n) throw new Error(`in-process bench lost messages: ${delivered} of ${n}`);
    await sys.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    raws.push(rawInproc(n));
  }
  const value = median(runs);
  log(
    `  in-process delivery: ${Math.round(value)} msgs/s (raw msgpack+XState ${Math.round(median(raws))}/s)`,
  );
  return withRatio('kernel.inproc_msgs_per_s', value, 'msgs/s', median(raws));
}

/**
 * Raw path: the same durable work done with nothing but XState and batched LMDB transactions. Per
 * transition: the XState transition, its persisted snapshot put, the sent envelope packed and put
 * into an outbox, the handled envelope's outbox entry removed, and one event put with its actor-index
 * entry; 1,024 transitions per transaction with several transactions in flight. With
 * `snapshotOnly` it writes the snapshot alone (the floor of any persistence at all).
 */
async function rawPersisted(actors: number, total: number, snapshotOnly: boolean): Promise<number> {
  const dir = tempDir();
  const root = open({ path: dir, compression: false });
  const snaps = root.openDB({ name: 'raw', useRecords: false } as never);
  const outbox = root.openDB({ name: 'outbox', encoding: 'binary' } as never);
  const events = root.openDB({ name: 'events', useRecords: false } as never);
  const byActor = root.openDB({ name: 'events_by_actor', useRecords: false } as never);
  const packr = new Packr({ useRecords: false });
  const refs = Array.from({ length: actors }, () => createActor(ringMachine).start());
  const start = process.hrtime.bigint();
  const perTurn = 1024;
  let seq = 0;
  const inflight: Promise<unknown>[] = [];
  for (let done = 0; done < total; ) {
    const batch = Math.min(perTurn, total - done);
    const ops: Array<() => void> = [];
    for (let i = 0; i < batch; i++) {
      const idx = (done + i) % actors;
      const ref = refs[idx]!;
      ref.send({ type: 'tick', body: { hops: 1, next: `ring/${(idx + 1) % actors}` } });
      const snapshot = ref.getPersistedSnapshot();
      const address = `ring/${idx}`;
      if (snapshotOnly) {
        ops.push(() => snaps.put(address, snapshot));
        continue;
      }
      const s = ++seq;
      const env = packr.pack({
        v: 1,
        id: `id${s}`,
        type: 'tick',
        from: address,
        to: `ring/${(idx + 1) % actors}`,
        ts: s,
        body: { hops: 1 },
      });
      const event = {
        schema_version: '1',
        seq: s,
        ts: s,
        kind: 'status',
        actor: address,
        payload: { hops: 1 },
      };
      ops.push(() => {
        snaps.put(address, snapshot);
        outbox.put(s, env);
        if (s > actors) outbox.remove(s - actors);
        events.put(s, event);
        byActor.put([address, s], null);
      });
    }
    inflight.push(
      root.transaction(() => {
        for (const op of ops) op();
      }),
    );
    done += batch;
    if (inflight.length >= 4) await inflight.shift();
  }
  await Promise.all(inflight);
  const rate = total / (msSince(start) / 1000);
  await root.close();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

async function persisted(log: (line: string) => void): Promise<BenchResult> {
  const actors = 1_000;
  const hops = 100;
  const total = actors * (hops + 1);
  const runs: number[] = [];
  const raws: number[] = [];
  const floors: number[] = [];
  for (let r = 0; r < 3; r++) {
    const dir = tempDir();
    const store = openStore(dir);
    const sys = new ActorSystem({ store });
    sys.register(ringActor);
    await sys.start();
    await sys.spawnMany(
      'ring',
      Array.from({ length: actors }, (_, i) => ({ address: `ring/${i}` })),
    );
    const seed = Array.from({ length: actors }, (_, i) =>
      sys.envelope({
        type: 'tick',
        from: 'host',
        to: `ring/${i}`,
        body: { hops, next: `ring/${(i + 1) % actors}` },
      }),
    );
    await sys.accept(seed);
    const start = process.hrtime.bigint();
    await sys.quiesce();
    runs.push(total / (msSince(start) / 1000));
    const events = sys.events.lastSeq;
    if (events < total) throw new Error(`persisted bench: only ${events} events for ${total} transitions`);
    await sys.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    raws.push(await rawPersisted(actors, total, false));
    floors.push(await rawPersisted(actors, total, true));
  }
  const value = median(runs);
  log(
    `  persisted transitions: ${Math.round(value)}/s (raw batched LMDB+XState, same writes: ${Math.round(median(raws))}/s; snapshot only: ${Math.round(median(floors))}/s)`,
  );
  return withRatio(
    'kernel.persisted_transitions_per_s',
    value,
    'transitions/s',
    median(raws),
    `${actors} actors, fsync on; raw writing the snapshot alone: ${Math.round(median(floors))}/s`,
  );
}

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}

async function restoreAndPassivate(log: (line: string) => void): Promise<BenchResult[]> {
  const n = 100_000;
  const dir = tempDir();
  const store = openStore(dir, { noSync: true });
  const seedSys = new ActorSystem({ store });
  seedSys.register(didActor);
  await seedSys.start();
  await seedSys.spawnMany(
    'did',
    Array.from({ length: n }, (_, i) => ({ address: `did:agentnexus:bench${i}` })),
  );
  await seedSys.stop();

  const sys = new ActorSystem({ store, maxActive: 2 * n });
  sys.register(didActor);
  await sys.start();
  const before = heapUsed();
  const start = process.hrtime.bigint();
  const { restored } = sys.restoreAll();
  const restoreRate = restored / (msSince(start) / 1000);
  const live = heapUsed();
  // First use creates each XState actor from its snapshot: measured apart, on a slice.
  const hydrateStart = process.hrtime.bigint();
  let hydrated = 0;
  for (const address of sys.addresses()) {
    sys.snapshot(address);
    if (++hydrated === 20_000) break;
  }
  const hydrateRate = hydrated / (msSince(hydrateStart) / 1000);
  await sys.passivateIdle();
  const after = heapUsed();
  const passivatedBytes = Math.max(0, (after - before) / n);
  const liveBytes = (live - before) / n;
  log(
    `  restore: ${Math.round(restoreRate)} actors/s (XState actor created at first use: ${Math.round(hydrateRate)}/s); heap per restored actor ${Math.round(liveBytes)} B, per passivated ${passivatedBytes.toFixed(1)} B`,
  );

  // Raw: XState restore from the same persisted snapshots, without the kernel.
  const snaps = [...store.actors.getRange({ limit: 20_000 })].map(({ value }) => (value as { s: unknown }).s);
  const rawStart = process.hrtime.bigint();
  for (const s of snaps) createActor(didActor.machine, { snapshot: s as never }).start();
  const rawRate = snaps.length / (msSince(rawStart) / 1000);
  await sys.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return [
    withRatio(
      'kernel.restore_actors_per_s',
      restoreRate,
      'actors/s',
      rawRate,
      `${n} DID actors from LMDB; XState actors created at first use: ${Math.round(hydrateRate)}/s`,
    ),
    {
      id: 'kernel.passivated_heap_bytes',
      value: passivatedBytes,
      unit: 'bytes/actor',
      note: `live actor: ${Math.round(liveBytes)} B`,
    },
  ];
}

async function reactivation(log: (line: string) => void, registered: number): Promise<BenchResult> {
  const dir = tempDir();
  const store = openStore(dir, { noSync: true });
  const sys = new ActorSystem({ store, maxActive: 10_000 });
  sys.register(didActor);
  await sys.start();
  const chunk = 100_000;
  const start = process.hrtime.bigint();
  for (let base = 0; base < registered; base += chunk) {
    await sys.spawnMany(
      'did',
      Array.from({ length: Math.min(chunk, registered - base) }, (_, i) => ({
        address: `did:agentnexus:bench${base + i}`,
      })),
    );
    log(
      `  registered ${Math.min(base + chunk, registered)} DID actors (${Math.round(msSince(start) / 1000)} s)`,
    );
  }
  const samples: number[] = [];
  for (let i = 0; i < 5_000; i++) {
    const address = `did:agentnexus:bench${Math.floor(Math.random() * registered)}`;
    const t = process.hrtime.bigint();
    sys.snapshot(address);
    samples.push(msSince(t));
    if (sys.liveCount > 5_000) await sys.passivateIdle();
  }
  const p99 = percentile(samples, 99);
  log(
    `  reactivation among ${registered} registered: p50 ${percentile(samples, 50).toFixed(3)} ms, p99 ${p99.toFixed(3)} ms`,
  );
  await sys.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    id: 'kernel.reactivation_p99_ms',
    value: p99,
    unit: 'ms',
    note: `p50 ${percentile(samples, 50).toFixed(3)} ms, ${registered} DIDs registered`,
  };
}

export const kernelGroup: BenchGroup = {
  name: 'kernel',
  async run(log) {
    const registered = Number(process.env.ANX_BENCH_DIDS ?? 1_000_000);
    return [
      await inproc(log),
      await persisted(log),
      ...(await restoreAndPassivate(log)),
      await reactivation(log, registered),
    ];
  },
};
