// Hosts as separate processes talking through a real hub and two leaves: cross-leaf delivery, hub outage, kill -9,
// 10,000 offline messages, push notices, and refusal of forged cards, tampered and replayed frames.
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JETSTREAM_DOMAIN, portOpen } from '../../bridge/relay/nats-server.ts';
import { decodeHeartbeat, encodeHeartbeat, HeartbeatSigner } from '../../bridge/relay/presence.ts';
import {
  DIRECTORY_BUCKET,
  inboxSubject,
  PRESENCE_WILDCARD,
  presenceSubject,
} from '../../bridge/relay/subjects.ts';
import { nodeSuite } from '../../runtime/crypto/node.ts';
import { generateIdentity } from '../../runtime/identity/keys.ts';
import { CLI, type DaemonProcess, killHard, startDaemonProcess, waitFor } from '../helpers/daemon.ts';
import { freePort, startHub, startLeaf, stopAllNats, type TestHub, type TestLeaf } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';

const HEARTBEAT_MS = 400;
const env = { ANX_HEARTBEAT_MS: String(HEARTBEAT_MS) };

interface HostProc {
  dir: string;
  args: string[];
  proc: DaemonProcess;
}

let hub: TestHub;
let leaves: [TestLeaf, TestLeaf];
const hosts: Record<string, HostProc> = {};
const dids: Record<string, string> = {};
const started: DaemonProcess[] = [];
let spy: NatsConnection;

async function startHost(name: string, args: string[], dir = tempDir(`anx-${name}-`)): Promise<HostProc> {
  const proc = await startDaemonProcess(dir, 30_000, { args, env });
  started.push(proc);
  const host = { dir, args, proc };
  hosts[name] = host;
  return host;
}

async function stopGracefully(p: DaemonProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
  process.kill(p.pid, 'SIGTERM');
  await exited;
}

const api = (name: string) => (hosts[name] as HostProc).proc.api;

async function inbox(
  name: string,
  did: string,
): Promise<Array<{ id: string; body: { n: number; s?: string } | null }>> {
  const r = await api(name).get<{ messages: Array<{ id: string; body: { n: number; s?: string } | null }> }>(
    `/v1/inbox/${encodeURIComponent(did)}?limit=100000`,
  );
  return r.messages;
}

async function online(name: string, did: string): Promise<boolean> {
  const r = await api(name).get<{ online: boolean }>(`/v1/presence/${encodeURIComponent(did)}`);
  return r.online;
}

async function send(
  name: string,
  from: string,
  to: string,
  tag: string,
  count: number,
  offset = 0,
): Promise<void> {
  for (let i = 0; i < count; i += 5_000) {
    const n = Math.min(5_000, count - i);
    await api(name).post('/v1/messages', {
      messages: Array.from({ length: n }, (_, j) => ({
        from,
        to,
        type: 'message',
        body: { n: offset + i + j, s: tag },
      })),
    });
  }
}

async function errorCodes(name: string): Promise<string[]> {
  const r = await api(name).get<{ events: Array<{ payload: { code?: string } }> }>(
    '/v1/trace/host?kind=error',
  );
  return r.events.map((e) => e.payload.code ?? '');
}

const tagged = (msgs: Array<{ body: { n: number; s?: string } | null }>, tag: string) =>
  msgs.filter((m) => m.body?.s === tag).map((m) => (m.body as { n: number }).n);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

beforeAll(async () => {
  hub = await startHub();
  leaves = [await startLeaf(hub), await startLeaf(hub)];
  const [l1, l2] = leaves;
  await Promise.all([
    startHost('h1', ['--nats', l1.url]),
    startHost('h2', ['--nats', l1.url]),
    startHost('h3', ['--nats', l2.url]),
    startHost('h4', ['--nats', l2.url]),
  ]);
  for (const [name, host] of [
    ['alice', 'h1'],
    ['bob', 'h2'],
    ['carol', 'h3'],
    ['dave', 'h4'],
  ] as const) {
    dids[name] = (await api(host).post<{ did: string }>('/v1/identities', { name })).did;
  }
  spy = await connect({ servers: hub.url });
  for (const name of ['bob', 'carol', 'dave'])
    await waitFor(() => online('h1', dids[name] as string), 20_000, `${name} online at h1`);
}, 120_000);

afterAll(async () => {
  await spy?.close();
  for (const p of started) await killHard(p);
  await stopAllNats();
  cleanupTempDirs();
});

describe('hosts over a hub and two leaves', () => {
  it('delivers across leaves and within a leaf, in order and once', async () => {
    await send('h1', dids.alice as string, dids.carol as string, 'cross', 300);
    await send('h1', dids.alice as string, dids.bob as string, 'same', 300);
    await waitFor(
      async () => tagged(await inbox('h3', dids.carol as string), 'cross').length >= 300,
      30_000,
      'cross-leaf',
    );
    await waitFor(
      async () => tagged(await inbox('h2', dids.bob as string), 'same').length >= 300,
      30_000,
      'same-leaf',
    );
    expect(tagged(await inbox('h3', dids.carol as string), 'cross')).toEqual(range(300));
    expect(tagged(await inbox('h2', dids.bob as string), 'same')).toEqual(range(300));
    await waitFor(
      async () => (await api('h1').get<{ outbox: number }>('/v1/status')).outbox === 0,
      10_000,
      'outbox drained',
    );
  });

  it('refuses a forged card, a tampered frame and a replayed frame, and delivers what follows', async () => {
    // A card for carol's DID signed by someone else, and a card stored under another DID's key.
    const mallory = generateIdentity();
    await api('h3').post('/v1/cards', {
      did: dids.carol,
      name: 'carol',
      roles: ['reviewer'],
      capabilities: ['code.review'],
    });
    const kv = await new Kvm(jetstream(spy, { domain: JETSTREAM_DOMAIN })).create(DIRECTORY_BUCKET, {
      history: 1,
    });
    const carolKey = (dids.carol as string).slice('did:agentnexus:'.length);
    const forged = {
      card: {
        v: 1,
        did: mallory.did,
        name: 'mallory',
        roles: ['reviewer'],
        capabilities: ['code.review'],
        tags: [],
        protocols: [],
        qps: 0,
        concurrency: 0,
        endpoints: [],
        ts: Date.now(),
      },
      sig: '00'.repeat(64),
    };
    await kv.put(
      mallory.did.slice('did:agentnexus:'.length),
      new TextEncoder().encode(JSON.stringify(forged)),
    );
    await kv.put(`${carolKey.slice(0, -2)}xx`, new TextEncoder().encode('{"card":1}'));
    await waitFor(
      async () => (await errorCodes('h1')).includes('ANX_CARD_INVALID'),
      10_000,
      'card refusal event',
    );
    await waitFor(
      async () =>
        (await api('h1').get<{ cards: unknown[] }>('/v1/discover?capability=code.review')).cards.length === 1,
      10_000,
      'carol card visible',
    );
    const { cards } = await api('h1').get<{ cards: Array<{ did: string; online: boolean }> }>(
      '/v1/discover?capability=code.review&online=1',
    );
    expect(cards.map((c) => c.did)).toEqual([dids.carol]);
    const cli = spawnSync(
      process.execPath,
      [CLI, '--data-dir', (hosts.h1 as HostProc).dir, '--json', 'discover', '--role', 'reviewer', '--online'],
      { encoding: 'utf8' },
    );
    expect(cli.status).toBe(0);
    expect((JSON.parse(cli.stdout) as Array<{ did: string }>).map((c) => c.did)).toEqual([dids.carol]);

    // Frames to carol as the relay sees them: capture one, then replay it verbatim and tampered.
    const frames: Uint8Array[] = [];
    const sub = spy.subscribe(inboxSubject(dids.carol as string), {
      callback: (_e, m) => void frames.push(new Uint8Array(m.data)),
    });
    await spy.flush();
    await new Promise((r) => setTimeout(r, 300));
    await send('h1', dids.alice as string, dids.carol as string, 'probe', 1);
    await waitFor(() => frames.some((f) => f[0] === 3), 10_000, 'a data frame');
    sub.unsubscribe();
    await waitFor(
      async () => tagged(await inbox('h3', dids.carol as string), 'probe').length === 1,
      10_000,
      'probe',
    );
    const captured = frames.filter((f) => f[0] === 3).at(-1) as Uint8Array;
    spy.publish(inboxSubject(dids.carol as string), captured);
    const tampered = new Uint8Array(captured);
    const view = new DataView(tampered.buffer, tampered.byteOffset);
    view.setBigUint64(21, view.getBigUint64(21) + 1n);
    spy.publish(inboxSubject(dids.carol as string), tampered);
    await spy.flush();
    await waitFor(
      async () => {
        const codes = await errorCodes('h3');
        return codes.includes('ANX_SESSION_REPLAY') && codes.includes('ANX_SESSION_DECRYPT');
      },
      10_000,
      'replay and tamper refusals',
    ).catch(async (err) => {
      throw new Error(`${(err as Error).message}; h3 error codes: ${(await errorCodes('h3')).join(',')}`);
    });
    // Heartbeats: a forged goodbye for h3's host id, a replayed one and one with a DID added after
    // signing are refused; carol stays online at h1.
    const beats: Uint8Array[] = [];
    const hbSub = spy.subscribe(PRESENCE_WILDCARD, {
      callback: (_e, m) => void beats.push(new Uint8Array(m.data)),
    });
    await waitFor(
      () => beats.some((b) => decodeHeartbeat(b)?.dids.includes(dids.carol as string) === true),
      10_000,
      "a heartbeat of carol's host",
    );
    hbSub.unsubscribe();
    const real = decodeHeartbeat(
      beats.find((b) => decodeHeartbeat(b)?.dids.includes(dids.carol as string)) as Uint8Array,
    );
    if (real === undefined) throw new Error('no heartbeat decoded');
    const refusedBefore = (await api('h1').get<{ heartbeatsRefused: number }>('/v1/relay')).heartbeatsRefused;
    const rogueSeed = nodeSuite.randomBytes(32);
    const rogue = new HeartbeatSigner(real.host, {
      hostPublicKey: () => nodeSuite.ed25519PublicKey(rogueSeed),
      hostSign: (m) => nodeSuite.sign(rogueSeed, m),
      sign: () => {
        throw new Error('the rogue holds no DID key');
      },
    });
    spy.publish(presenceSubject(real.host), rogue.heartbeat([], real.interval, true));
    // The last heartbeat again is only a repeat (hosts announce it again for new watchers); one older
    // than the last taken is a replay, refused before its signature is even looked at.
    spy.publish(presenceSubject(real.host), encodeHeartbeat(real));
    spy.publish(presenceSubject(real.host), encodeHeartbeat({ ...real, ts: real.ts - 1 }));
    const padded = { ...real, dids: [...real.dids, mallory.did], ts: real.ts + 1 };
    spy.publish(presenceSubject(real.host), encodeHeartbeat({ ...padded, sig: real.sig }));
    await spy.flush();
    await waitFor(
      async () =>
        (await api('h1').get<{ heartbeatsRefused: number }>('/v1/relay')).heartbeatsRefused >=
        refusedBefore + 2,
      10_000,
      'heartbeat refusals',
    );
    expect(await online('h1', dids.carol as string)).toBe(true);
    expect(await online('h1', mallory.did)).toBe(false);

    // Nothing was delivered twice, and the session carries on.
    await send('h1', dids.alice as string, dids.carol as string, 'after', 5);
    await waitFor(
      async () => tagged(await inbox('h3', dids.carol as string), 'after').length === 5,
      10_000,
      'after',
    );
    expect(tagged(await inbox('h3', dids.carol as string), 'probe')).toEqual([0]);
  });

  it('keeps same-leaf traffic flowing while the hub is down, and delivers cross-leaf traffic once it is back', async () => {
    await hub.stop();
    await send('h1', dids.alice as string, dids.bob as string, 'hubdown-same', 200);
    await send('h1', dids.alice as string, dids.carol as string, 'hubdown-cross', 200);
    await waitFor(
      async () => tagged(await inbox('h2', dids.bob as string), 'hubdown-same').length === 200,
      20_000,
      'same leaf',
    );
    expect(tagged(await inbox('h3', dids.carol as string), 'hubdown-cross').length).toBeLessThan(200);
    await hub.restart();
    await waitFor(
      async () => tagged(await inbox('h3', dids.carol as string), 'hubdown-cross').length >= 200,
      60_000,
      'cross-leaf after the hub returned',
    );
    expect(tagged(await inbox('h3', dids.carol as string), 'hubdown-cross')).toEqual(range(200));
    expect(tagged(await inbox('h2', dids.bob as string), 'hubdown-same')).toEqual(range(200));
    await waitFor(async () => online('h1', dids.carol as string), 20_000, 'carol online again');
  });

  it('gives a receiver killed with -9 mid-stream every message once and in order after it restarts', async () => {
    const N = 3_000;
    const sending = send('h1', dids.alice as string, dids.carol as string, 'kill', N);
    await waitFor(
      async () => tagged(await inbox('h3', dids.carol as string), 'kill').length > 100,
      30_000,
      'stream started',
    );
    const h3 = hosts.h3 as HostProc;
    await killHard(h3.proc);
    await sending;
    await startHost('h3', h3.args, h3.dir);
    await waitFor(
      async () => tagged(await inbox('h3', dids.carol as string), 'kill').length >= N,
      90_000,
      'all after restart',
    );
    const got = tagged(await inbox('h3', dids.carol as string), 'kill');
    expect(got.length).toBe(N);
    expect(new Set(got).size).toBe(N);
    expect(got).toEqual(range(N));
  });

  it('stores 10,000 messages for an offline DID and delivers them in order and once when it returns, after the sender left; notifies its webhook', {
    timeout: 300_000,
  }, async () => {
    const notices: Array<{ body: string; headers: Record<string, string | string[] | undefined> }> = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        notices.push({ body, headers: req.headers });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/anx`;
      const { secret } = await api('h4').post<{ secret: string }>('/v1/webhooks', { did: dids.dave, url });
      await new Promise((r) => setTimeout(r, 500));
      const h4 = hosts.h4 as HostProc;
      await stopGracefully(h4.proc);
      await waitFor(async () => !(await online('h2', dids.dave as string)), 10_000, 'dave offline at h2');
      const N = 10_000;
      await send('h2', dids.bob as string, dids.dave as string, 'offline', N);
      await waitFor(
        async () => (await api('h2').get<{ outbox: number }>('/v1/status')).outbox === 0,
        90_000,
        'all stored',
      );
      await waitFor(() => notices.length > 0, 10_000, 'a push notice');
      const notice = notices[0]!;
      const parsed = JSON.parse(notice.body) as Record<string, unknown>;
      expect(parsed).toMatchObject({ type: 'anx.mail.stored', did: dids.dave });
      expect(Object.keys(parsed).sort()).toEqual(['count', 'did', 'ts', 'type']);
      const ts = String(notice.headers['x-anx-timestamp']);
      expect(notice.headers['x-anx-signature']).toBe(
        `sha256=${createHmac('sha256', secret).update(`${ts}.${notice.body}`).digest('hex')}`,
      );
      // The sender goes away before the recipient returns.
      await stopGracefully((hosts.h2 as HostProc).proc);
      await startHost('h4', h4.args, h4.dir);
      await waitFor(
        async () => tagged(await inbox('h4', dids.dave as string), 'offline').length >= N,
        120_000,
        'offline mail',
      );
      const all = await inbox('h4', dids.dave as string);
      const got = tagged(all, 'offline');
      expect(all.filter((m) => m.body?.s !== 'offline').map((m) => JSON.stringify(m))).toEqual([]);
      expect(got.length).toBe(N);
      expect(got).toEqual(range(N));
    } finally {
      server.close();
    }
  });

  it('starts and supervises its own leaf with --relay, and stops it with the host', async () => {
    const leafPort = await freePort();
    const h5 = await startHost('h5', ['--relay', hub.leafUrl, '--leaf-port', String(leafPort)]);
    const erin = (await api('h5').post<{ did: string }>('/v1/identities', { name: 'erin' })).did;
    await waitFor(
      async () => (await api('h5').get<{ connected: boolean }>('/v1/relay')).connected,
      10_000,
      'connected',
    );
    await waitFor(async () => online('h5', dids.carol as string), 20_000, 'carol online at h5');
    await api('h5').post('/v1/messages', { from: erin, to: dids.carol, body: { n: 0, s: 'leaf' } });
    await waitFor(
      async () => tagged(await inbox('h3', dids.carol as string), 'leaf').length === 1,
      20_000,
      'via own leaf',
    );
    await stopGracefully(h5.proc);
    expect(await portOpen(leafPort)).toBe(false);
  });
});
