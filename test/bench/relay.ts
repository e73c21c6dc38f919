// Bench group `relay`: session-mode throughput between host processes, DID-to-DID round trips, card visibility and
// offline detection, on a hub with two leaves (real nats-server processes), each next to raw NATS on the same path.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { JETSTREAM_DOMAIN } from '../../bridge/relay/nats-server.ts';
import { NatsTransport } from '../../bridge/relay/nats-transport.ts';
import { Relay } from '../../bridge/relay/relay.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import { Host } from '../../runtime/host.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import {
  answerHandshake,
  completeHandshake,
  decodeAccept,
  decodeHello,
  Session,
  startHandshake,
} from '../../runtime/session/index.ts';
import { type DaemonProcess, startDaemonProcess, stopDaemon, waitFor } from '../helpers/daemon.ts';
import { startHub, startLeaf, stopAllNats } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import { type BenchGroup, type BenchResult, median, percentile, withRatio } from './harness.ts';

const KIB = new Uint8Array(1024).fill(97);
/** The throughput producer: messages per POST, and POSTs in flight. */
const POST_MESSAGES = 500;
const POSTS_IN_FLIGHT = 4;

/** Raw NATS: 1 KiB messages published on one leaf and received on the other, none lost. */
async function rawThroughput(pub: NatsConnection, sub: NatsConnection, n: number): Promise<number> {
  const subject = `bench.raw.${Math.random().toString(36).slice(2)}`;
  let got = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => {
    done = r;
  });
  sub.subscribe(subject, {
    callback: () => {
      if (++got === n) done();
    },
  });
  await sub.flush();
  await new Promise((r) => setTimeout(r, 300));
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    pub.publish(subject, KIB);
    if (i % 2_000 === 1_999) await pub.flush();
  }
  await pub.flush();
  // Core NATS drops what a slow consumer cannot take: a lost message ends the run with a clear error.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const lost = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`raw NATS: ${got} of ${n} messages arrived within 60 s`)),
      60_000,
    );
  });
  try {
    await Promise.race([all, lost]);
  } finally {
    clearTimeout(timer);
  }
  return n / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Raw NATS request/reply latencies (ms) between the two leaves. */
async function rawRtt(a: NatsConnection, b: NatsConnection, n: number): Promise<number[]> {
  const subject = `bench.rtt.${Math.random().toString(36).slice(2)}`;
  b.subscribe(subject, {
    callback: (_e, m) => {
      m.respond(m.data);
    },
  });
  await b.flush();
  await new Promise((r) => setTimeout(r, 300));
  const samples: number[] = [];
  for (let i = 0; i < n + 100; i++) {
    const t = process.hrtime.bigint();
    await a.request(subject, KIB.subarray(0, 64), { timeout: 5_000 });
    if (i >= 100) samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return samples;
}

/** DID-to-DID request/response in session mode: a signed handshake once, then one AEAD frame each way. */
async function sessionRtt(a: NatsTransport, b: NatsTransport, n: number): Promise<number[]> {
  const suite = nodeSuite;
  const alice = generateIdentity(suite);
  const bob = generateIdentity(suite);
  let bobSession: Session | undefined;
  b.listenDid(bob.did, (frame) => {
    if (frame.reply === undefined) return;
    if (frame.data[0] === 1) {
      const answered = answerHandshake({
        suite,
        hello: decodeHello(frame.data),
        sign: (m) => suite.sign(bob.seed, m),
        now: Date.now(),
        windowMs: 300_000,
      });
      bobSession = new Session(suite, answered.keys);
      b.respond(frame.reply, answered.frame);
      return;
    }
    const session = bobSession as Session;
    b.respond(frame.reply, session.seal(session.open(frame.data)));
  });
  await b.flush();
  await new Promise((r) => setTimeout(r, 300));
  const pending = startHandshake({
    suite,
    from: alice.did,
    to: bob.did,
    sign: (m) => suite.sign(alice.seed, m),
    now: Date.now(),
  });
  const keys = completeHandshake(
    suite,
    pending,
    decodeAccept(await a.request(bob.did, pending.frame, 5_000)),
  );
  const session = new Session(suite, keys);
  const body = KIB.subarray(0, 64);
  const samples: number[] = [];
  for (let i = 0; i < n + 100; i++) {
    const t = process.hrtime.bigint();
    session.open(await a.request(bob.did, session.seal(body), 5_000));
    if (i >= 100) samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return samples;
}

/** Session-mode frames only (seal, leaf → hub → leaf, open), no persistence: the relay protocol's own ceiling. */
async function sessionLayerThroughput(a: NatsTransport, b: NatsTransport, n: number): Promise<number> {
  const suite = nodeSuite;
  const alice = generateIdentity(suite);
  const bob = generateIdentity(suite);
  const pending = startHandshake({
    suite,
    from: alice.did,
    to: bob.did,
    sign: (m) => suite.sign(alice.seed, m),
    now: Date.now(),
  });
  const answered = answerHandshake({
    suite,
    hello: decodeHello(pending.frame),
    sign: (m) => suite.sign(bob.seed, m),
    now: Date.now(),
    windowMs: 300_000,
  });
  const sender = new Session(suite, completeHandshake(suite, pending, decodeAccept(answered.frame)));
  const receiver = new Session(suite, answered.keys);
  let got = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => {
    done = r;
  });
  b.listenDid(bob.did, (frame) => {
    receiver.open(frame.data);
    if (++got === n) done();
  });
  await b.flush();
  await new Promise((r) => setTimeout(r, 300));
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    a.sendToDid(bob.did, sender.seal(KIB));
    if (i % 2_000 === 1_999) await a.flush();
  }
  await a.flush();
  await all;
  return n / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** The kernel alone on the receiving side: 1 KiB messages accepted into one DID's inbox, fsync on. */
async function kernelInboxRate(n: number): Promise<number> {
  const host = await Host.open({ dataDir: tempDir('anx-bench-inbox-') });
  try {
    const bob = await host.createIdentity({ name: 'bob' });
    const from = generateIdentity().did;
    const text = 'x'.repeat(1024);
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i += 2_500) {
      await host.system.accept(
        Array.from({ length: Math.min(2_500, n - i) }, () =>
          host.system.envelope({ type: 'message', from, to: bob.did, body: { text } }),
        ),
      );
    }
    await waitFor(() => (host.identities()[0]?.received ?? 0) >= n, 120_000, 'inbox');
    return n / (Number(process.hrtime.bigint() - start) / 1e9);
  } finally {
    await host.close();
  }
}

/**
 * Raw JetStream: 1 KiB messages stored in a file stream on the hub from a leaf, `n` of them, either one
 * publish in flight at a time (each awaits its ack) or all pipelined.
 */
async function rawJetStream(nc: NatsConnection, n: number, pipelined: boolean): Promise<number> {
  const jsm = await jetstreamManager(nc, { domain: JETSTREAM_DOMAIN });
  const name = `BENCH_RAW_${Math.random().toString(36).slice(2, 8)}`;
  await jsm.streams.add({ name, subjects: [`bench.js.${name}`] });
  const js = jetstream(nc, { domain: JETSTREAM_DOMAIN });
  try {
    const start = process.hrtime.bigint();
    if (pipelined) {
      const acks: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++) acks.push(js.publish(`bench.js.${name}`, KIB, { msgID: `m${i}` }));
      await Promise.all(acks);
    } else for (let i = 0; i < n; i++) await js.publish(`bench.js.${name}`, KIB, { msgID: `m${i}` });
    return n / (Number(process.hrtime.bigint() - start) / 1e9);
  } finally {
    await jsm.streams.delete(name);
  }
}

async function relayNode(url: string, heartbeatMs: number) {
  const transport = await NatsTransport.connect({ servers: url });
  const relay = new Relay({ transport, nc: transport.nc, heartbeatMs });
  const host = await Host.open({ dataDir: tempDir('anx-bench-relay-'), router: relay, noSync: true });
  relay.bind(host);
  await relay.start();
  return { relay, host, transport };
}

export const relayGroup: BenchGroup = {
  name: 'relay',
  async run(log) {
    const results: BenchResult[] = [];
    const daemons: DaemonProcess[] = [];
    const nodes: Array<{ relay: Relay; host: Host }> = [];
    try {
      const hub = await startHub();
      const [l1, l2] = [await startLeaf(hub), await startLeaf(hub)];
      const [nc1, nc2] = [await connect({ servers: l1.url }), await connect({ servers: l2.url })];

      // Throughput: two host processes (fsync'd LMDB), alice on leaf 1 sending 1 KiB bodies to bob on leaf 2.
      const env = { ANX_HEARTBEAT_MS: '500' };
      const h1 = await startDaemonProcess(tempDir('anx-bench-h1-'), 30_000, {
        args: ['--nats', l1.url],
        env,
        api: { bodies: 'msgpack' },
      });
      daemons.push(h1);
      const h2 = await startDaemonProcess(tempDir('anx-bench-h2-'), 30_000, {
        args: ['--nats', l2.url],
        env,
      });
      daemons.push(h2);
      const alice = (await h1.api.post<{ did: string }>('/v1/identities', { name: 'alice' })).did;
      const bob = (await h2.api.post<{ did: string }>('/v1/identities', { name: 'bob' })).did;
      await waitFor(
        async () => (await h1.api.get<{ online: boolean }>(`/v1/presence/${bob}`)).online,
        20_000,
        'bob online',
      );
      const text = 'x'.repeat(1024);
      const received = async () =>
        (
          await h2.api.get<{ identities: Array<{ did: string; received: number }> }>('/v1/identities')
        ).identities.find((i) => i.did === bob)?.received ?? 0;
      // The producer: msgpack request bodies of 500 messages, four in flight, each posted as soon as one
      // is answered (the sustained shape of a busy agent process), so sending overlaps delivery.
      const burst = async (n: number) => {
        const before = await received();
        const start = process.hrtime.bigint();
        let queued = 0;
        const post = async () => {
          while (queued < n) {
            const count = Math.min(POST_MESSAGES, n - queued);
            queued += count;
            await h1.api.post('/v1/messages', {
              messages: Array.from({ length: count }, () => ({ from: alice, to: bob, body: { text } })),
            });
          }
        };
        await Promise.all(Array.from({ length: POSTS_IN_FLIGHT }, post));
        await waitFor(async () => (await received()) >= before + n, 120_000, 'all messages');
        const rate = n / (Number(process.hrtime.bigint() - start) / 1e9);
        if ((await received()) !== before + n) throw new Error('message count mismatch: loss or duplicates');
        return rate;
      };
      await burst(2_000);
      const rates: number[] = [];
      for (let r = 0; r < 3; r++) rates.push(await burst(20_000));
      const raws: number[] = [];
      for (let r = 0; r < 3; r++) raws.push(await rawThroughput(nc1, nc2, 100_000));
      const sessionRate = median(rates);
      const kernelRate = await kernelInboxRate(20_000);
      log(
        `  session msgs/s between host processes: ${rates.map((x) => Math.round(x)).join(', ')}; raw ${raws.map((x) => Math.round(x)).join(', ')}`,
      );
      results.push(
        withRatio(
          'relay.session_msgs_per_s',
          sessionRate,
          'msgs/s',
          median(raws),
          `1 KiB, 2 host processes, fsync, no loss, msgpack POSTs of ${POST_MESSAGES} (${POSTS_IN_FLIGHT} in flight); receiving kernel alone ${Math.round(kernelRate)} msgs/s`,
        ),
      );
      for (const d of daemons.splice(0)) await stopDaemon(d);

      // Round trips: DID-to-DID request/response in session mode vs raw request/reply, same leaves.
      const [ta, tb] = [
        await NatsTransport.connect({ servers: l1.url }),
        await NatsTransport.connect({ servers: l2.url }),
      ];
      const raw = await rawRtt(nc1, nc2, 2_000);
      const did = await sessionRtt(ta, tb, 2_000);
      const layer: number[] = [];
      for (let r = 0; r < 3; r++) layer.push(await sessionLayerThroughput(ta, tb, 50_000));
      log(`  session layer msgs/s (no persistence): ${layer.map((x) => Math.round(x)).join(', ')}`);
      results.push(
        withRatio(
          'relay.session_layer_msgs_per_s',
          median(layer),
          'msgs/s',
          median(raws),
          '1 KiB frames sealed, relayed, opened; no LMDB',
        ),
      );
      const [rawP50, rawP99, didP50, didP99] = [
        percentile(raw, 50),
        percentile(raw, 99),
        percentile(did, 50),
        percentile(did, 99),
      ];
      log(
        `  rtt p50 ${didP50.toFixed(3)} ms (raw ${rawP50.toFixed(3)}), p99 ${didP99.toFixed(3)} ms (raw ${rawP99.toFixed(3)})`,
      );
      results.push({
        id: 'relay.rtt_p50_ratio',
        value: didP50 / rawP50,
        unit: 'x raw',
        note: `p50 ${didP50.toFixed(3)} ms vs raw ${rawP50.toFixed(3)} ms; p99 ${didP99.toFixed(3)} ms vs raw ${rawP99.toFixed(3)} ms`,
      });
      await ta.close();
      await tb.close();

      // Card visibility and offline detection: three in-process hosts, one per leaf and one on the hub's leaf 1.
      const heartbeatMs = 500;
      const a = await relayNode(l1.url, heartbeatMs);
      const b = await relayNode(l2.url, heartbeatMs);
      const c = await relayNode(l2.url, heartbeatMs);
      nodes.push(a, b, c);
      const carol = await a.host.createIdentity({ name: 'carol' });
      await new Promise((r) => setTimeout(r, 1_000));
      const visible: number[] = [];
      for (let r = 0; r < 5; r++) {
        const start = performance.now();
        const seen = [b, c].map(
          (n) =>
            new Promise<number>((resolve) => {
              const off = n.relay.directory?.onCard((card) => {
                if (card.did === carol.did && card.name === `carol-${r}`) {
                  off?.();
                  resolve(performance.now() - start);
                }
              });
            }),
        );
        await a.relay.publishCard({ did: carol.did, name: `carol-${r}`, capabilities: ['bench'] });
        visible.push(Math.max(...(await Promise.all(seen))));
      }
      log(`  card visible on every host after ${visible.map((v) => v.toFixed(1)).join(', ')} ms`);
      results.push({
        id: 'relay.card_visible_ms',
        value: median(visible),
        unit: 'ms',
        note: `max ${Math.max(...visible).toFixed(1)} ms`,
      });

      // Offline mail: one sender's 1 KiB messages to a DID that is not online, from the outbox into
      // the hub's mail stream (sealed, signed, stored in order: one publish in flight per recipient).
      const mailRates: number[] = [];
      for (let r = 0; r < 3; r++) {
        const away = generateIdentity().did;
        const n = 2_000;
        const start = process.hrtime.bigint();
        await a.host.send(
          Array.from({ length: n }, () => ({ from: carol.did, to: away, body: { text: 'x'.repeat(1024) } })),
        );
        await waitFor(() => a.host.status().outbox === 0, 120_000, 'mail stored');
        mailRates.push(n / (Number(process.hrtime.bigint() - start) / 1e9));
      }
      const rawAwaited: number[] = [];
      const rawPipelined: number[] = [];
      for (let r = 0; r < 3; r++) {
        rawAwaited.push(await rawJetStream(nc1, 2_000, false));
        rawPipelined.push(await rawJetStream(nc1, 2_000, true));
      }
      log(
        `  offline mail stored msgs/s: ${mailRates.map((x) => Math.round(x)).join(', ')}; raw JetStream awaited ${rawAwaited.map((x) => Math.round(x)).join(', ')}, pipelined ${rawPipelined.map((x) => Math.round(x)).join(', ')}`,
      );
      results.push(
        withRatio(
          'relay.mail_store_msgs_per_s',
          median(mailRates),
          'msgs/s',
          median(rawAwaited),
          `1 KiB to an offline DID, sealed and stored in order; raw = JetStream publishes each awaiting its ack (pipelined: ${Math.round(median(rawPipelined))}/s)`,
        ),
      );

      const detect: number[] = [];
      for (let r = 0; r < 3; r++) {
        const d = await relayNode(l2.url, heartbeatMs);
        const dave = await d.host.createIdentity({ name: 'dave' });
        await waitFor(() => a.relay.isOnline(dave.did), 10_000, 'dave online');
        // A crash: the connection drops without the goodbye heartbeat.
        const gone = new Promise<number>((resolve) => {
          const start = performance.now();
          const off = a.relay.presence.onChange((ch) => {
            if (ch.did === dave.did && !ch.online) {
              off();
              resolve(performance.now() - start);
            }
          });
        });
        await d.transport.nc.close();
        detect.push(await gone);
        await d.relay.close().catch(() => {});
        await d.host.close();
      }
      log(
        `  offline detected after ${detect.map((v) => v.toFixed(0)).join(', ')} ms (heartbeat ${heartbeatMs} ms)`,
      );
      results.push(
        withRatio(
          'relay.offline_detect_ms',
          median(detect),
          'ms',
          heartbeatMs,
          'raw = one heartbeat interval; ratio in intervals',
        ),
      );
      await nc1.close();
      await nc2.close();
    } finally {
      for (const d of daemons) await stopDaemon(d);
      for (const n of nodes) {
        await n.relay.close().catch(() => {});
        await n.host.close().catch(() => {});
      }
      await stopAllNats();
      cleanupTempDirs();
    }
    return results;
  },
};
