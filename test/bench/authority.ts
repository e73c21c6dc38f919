// Bench group `authority`: 3-link token chain verification against raw Ed25519 verify, revocation effective on another host
// (hub and two leaves, real nats-server) against a raw KV put→watch, and freeze to read-only over the local API against a raw API call.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { ApiClient } from '../../bridge/api/client.ts';
import { startApiServer } from '../../bridge/api/server.ts';
import { joinRelay, type RelayConnection } from '../../bridge/relay/join.ts';
import { JETSTREAM_DOMAIN } from '../../bridge/relay/nats-server.ts';
import { TokenService } from '../../runtime/authority/index.ts';
import { VerifyPool } from '../../runtime/crypto/verify-pool.ts';
import { isAnxError } from '../../runtime/errors.ts';
import { Host } from '../../runtime/host.ts';
import { chain2, chain3, delegatePut } from '../authority/tokens-fixture.ts';
import { startHub, startLeaf, stopAllNats } from '../helpers/nats.ts';
import { cleanupTempDirs, tempDir } from '../helpers/tmp.ts';
import {
  type BenchGroup,
  type BenchResult,
  median,
  msSince,
  opsPerSecond,
  percentile,
  withRatio,
} from './harness.ts';

/** Concurrent token checks in the pooled figure (an API server under load has many requests open). */
const CHECKS_IN_FLIGHT = 64;

async function chainVerify(log: (line: string) => void): Promise<BenchResult[]> {
  const host = await Host.open({ dataDir: tempDir('anx-bench-auth-'), noSync: true });
  try {
    const [owner, b, c, d] = await Promise.all(
      [0, 1, 2, 3].map(async (i) => (await host.createIdentity({ name: `p${i}` })).did),
    );
    const t = host.authority.tokens;
    const dids = [owner, b, c, d] as string[];
    // Distinct chains (each with its own root and middle link), so every check verifies three signatures.
    const tokens = Array.from({ length: 10_000 }, () => chain3(host, dids));
    // Leaves delegated from one shared middle link: what a busy delegator's holders present.
    const sharedMid = chain2(host, dids);
    const leaves = Array.from({ length: 3_000 }, () => delegatePut(host, sharedMid, d as string));
    const pool = new VerifyPool();
    const service = (cacheSize: number) =>
      new TokenService({
        suite: host.suite,
        clock: host.clock,
        signer: host.keystore,
        revocations: host.authority.revocations,
        audit: host.authority.audit,
        freeze: host.authority.freeze,
        cacheSize,
        verifyPool: pool,
      });
    const cold = service(0);
    const request = {
      actor: d as string,
      owner: owner as string,
      resource: 'vault:enc-1/notes/a.md',
      action: 'vault.put',
    };
    let i = 0;
    const check =
      (svc: TokenService, list = tokens) =>
      () => {
        svc.check(list[i++ % list.length] as string, request);
      };
    // Raw layer: one Ed25519 verification of a 200-byte message, same suite, same run.
    const seed = host.suite.randomBytes(32);
    const pub = host.suite.ed25519PublicKey(seed);
    const msg = host.suite.randomBytes(200);
    const sig = host.suite.sign(seed, msg);
    // Checks as the local API makes them: signatures on the pool's threads, CHECKS_IN_FLIGHT at a
    // time, every chain new (the pool is warmed up first, as a running host's is).
    const asyncRate = async (svc: TokenService, list: string[]): Promise<number> => {
      let next = 0;
      const start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: CHECKS_IN_FLIGHT }, async () => {
          while (next < list.length) await svc.checkAsync(list[next++] as string, request);
        }),
      );
      return list.length / (msSince(start) / 1000);
    };
    await asyncRate(service(0), tokens.slice(9_000));
    // The same chains again and again, as their holders present them (they fit the service's cache).
    const warmList = tokens.slice(0, 1_500);
    const rawRuns: number[] = [];
    const asyncRuns: number[] = [];
    const coldRuns: number[] = [];
    const warmRuns: number[] = [];
    const leafRuns: number[] = [];
    for (let r = 0; r < 3; r++) {
      rawRuns.push(opsPerSecond(() => host.suite.verify(pub, msg, sig), 1_000, 50));
      asyncRuns.push(await asyncRate(service(0), tokens.slice(3_000 * r, 3_000 * (r + 1))));
      i = 4_500;
      coldRuns.push(opsPerSecond(check(cold), 1_000, 20));
      i = 0;
      warmRuns.push(opsPerSecond(check(t, warmList), 1_000, 20));
      // A fresh service each round: only the shared links get cached, each leaf is verified once.
      const fresh = service(4_096);
      fresh.check(leaves[0] as string, request);
      i = 1;
      leafRuns.push(opsPerSecond(check(fresh, leaves.slice(1)), 250, 10));
    }
    await pool.close();
    const raw = median(rawRuns);
    const asyncOps = median(asyncRuns);
    const coldOps = median(coldRuns);
    const warmOps = median(warmRuns);
    const leafOps = median(leafRuns);
    log(
      `  3-link chain: ${Math.round(asyncOps)}/s fully verified (signatures on ${pool.threads} ${pool.engine} threads), ${Math.round(coldOps)}/s on the calling thread, ${Math.round(leafOps)}/s new leaf under known links, ${Math.round(warmOps)}/s repeated; raw verify ${Math.round(raw)}/s`,
    );
    return [
      withRatio(
        'authority.chain_verify_per_s',
        asyncOps,
        'checks/s',
        raw,
        `checkAsync, ${CHECKS_IN_FLIGHT} in flight, signatures on ${pool.threads} ${pool.engine} worker threads; raw = one Ed25519 verify/s on the calling thread`,
      ),
      withRatio(
        'authority.chain_verify_sync_per_s',
        coldOps,
        'checks/s',
        raw,
        'check() on the calling thread: 3 signatures with the host suite',
      ),
      withRatio(
        'authority.chain_verify_new_leaf_per_s',
        leafOps,
        'checks/s',
        raw,
        'distinct last links under a root and middle link verified before: 1 signature each',
      ),
      withRatio(
        'authority.chain_verify_cached_per_s',
        warmOps,
        'checks/s',
        raw,
        'the same chains checked again (signatures cached by token text)',
      ),
    ];
  } finally {
    await host.close();
  }
}

interface Joined {
  host: Host;
  conn: RelayConnection;
}

async function join(natsUrl: string): Promise<Joined> {
  const dataDir = tempDir('anx-bench-rev-');
  const conn = await joinRelay({ dataDir, natsUrl, heartbeatMs: 500 });
  const host = await Host.open({ dataDir, router: conn.relay, noSync: true });
  conn.relay.bind(host);
  await conn.relay.start();
  if ((await conn.relay.revocations?.waitSynced(30_000)) !== true)
    throw new Error('revocation feed did not sync');
  return { host, conn };
}

async function revocation(log: (line: string) => void): Promise<BenchResult[]> {
  const hub = await startHub();
  const [leafA, leafB] = [await startLeaf(hub), await startLeaf(hub)];
  const a = await join(leafA.url);
  const b = await join(leafB.url);
  const ncA = await connect({ servers: leafA.url });
  const ncB = await connect({ servers: leafB.url });
  try {
    const owner = (await a.host.createIdentity({ name: 'owner' })).did;
    const worker = (await b.host.createIdentity({ name: 'worker' })).did;
    const request = { actor: worker, owner, resource: 'vault:enc-1', action: 'vault.put' };
    const refused = (token: string) => {
      try {
        b.host.authority.tokens.check(token, request, { audit: false });
        return false;
      } catch (err) {
        return isAnxError(err, 'ANX_TOKEN_REVOKED');
      }
    };
    const samples: number[] = [];
    for (let i = 0; i < 30; i++) {
      const { token } = a.host.authority.tokens.issue({
        issuer: owner,
        audience: worker,
        resource: 'vault:enc-1',
        actions: ['vault.put'],
      });
      if (refused(token)) throw new Error('token refused before its revocation');
      const start = process.hrtime.bigint();
      await a.host.authority.tokens.revoke({ token });
      const deadline = Date.now() + 10_000;
      while (!refused(token)) {
        if (Date.now() > deadline) throw new Error('revocation did not reach the other host within 10 s');
        await new Promise((r) => setImmediate(r));
      }
      samples.push(msSince(start));
    }
    // Raw layer: a KV put on one leaf seen by a watcher on the other.
    const kvA = await new Kvm(jetstream(ncA, { domain: JETSTREAM_DOMAIN })).create('bench_raw_kv', {
      history: 1,
    });
    const kvB = await new Kvm(jetstream(ncB, { domain: JETSTREAM_DOMAIN })).open('bench_raw_kv');
    const seen = new Map<string, () => void>();
    const watch = await kvB.watch();
    void (async () => {
      for await (const e of watch) seen.get(e.key)?.();
    })();
    const raw: number[] = [];
    for (let i = 0; i < 30; i++) {
      const key = `k${i}`;
      const arrived = new Promise<void>((r) => seen.set(key, r));
      const start = process.hrtime.bigint();
      await kvA.put(key, new TextEncoder().encode(String(i)));
      await arrived;
      raw.push(msSince(start));
    }
    watch.stop();
    const p50 = median(samples);
    log(
      `  revocation on another host: p50 ${p50.toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms; raw KV put→watch p50 ${median(raw).toFixed(1)} ms`,
    );
    return [
      withRatio(
        'authority.revocation_ms',
        p50,
        'ms',
        median(raw),
        `p99 ${percentile(samples, 99).toFixed(1)} ms; raw = KV put on one leaf seen by a watcher on the other`,
      ),
    ];
  } finally {
    await ncA.close();
    await ncB.close();
    for (const j of [a, b]) {
      await j.conn.close().catch(() => {});
      await j.host.close().catch(() => {});
    }
    await stopAllNats();
  }
}

async function freeze(log: (line: string) => void): Promise<BenchResult[]> {
  const host = await Host.open({ dataDir: tempDir('anx-bench-freeze-') });
  const token = 'bench-token-0123456789abcdef';
  const api = await startApiServer(host, { port: 0, token });
  try {
    const client = new ApiClient(api.url, token);
    const owner = (await host.createIdentity({ name: 'owner' })).did;
    await client.post('/v1/enclaves', { owner, id: 'enc1' });
    const put = () => client.post('/v1/vault/enc1/put', { as: owner, key: 'notes/a.md', content: 'x' });
    const samples: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < 15; i++) {
      await put();
      let start = process.hrtime.bigint();
      await client.get('/v1/status');
      raw.push(msSince(start));
      start = process.hrtime.bigint();
      await client.post('/v1/freeze', { reason: 'bench' });
      const code = await put().then(
        () => 'ALLOWED',
        (err: { code?: string }) => err.code,
      );
      samples.push(msSince(start));
      if (code !== 'ANX_FROZEN') throw new Error(`a write after freeze was answered ${code}`);
      await client.post('/v1/thaw', {});
    }
    log(
      `  freeze to read-only: p50 ${median(samples).toFixed(1)} ms (freeze call + first refused write); raw API call ${median(raw).toFixed(2)} ms`,
    );
    return [
      withRatio(
        'authority.freeze_ms',
        median(samples),
        'ms',
        median(raw),
        'POST /v1/freeze (durable) then the first write refused; raw = GET /v1/status',
      ),
    ];
  } finally {
    await api.close();
    await host.close();
  }
}

export const authorityGroup: BenchGroup = {
  name: 'authority',
  async run(log) {
    try {
      return [...(await chainVerify(log)), ...(await revocation(log)), ...(await freeze(log))];
    } finally {
      cleanupTempDirs();
    }
  },
};
