// Bench group `sdk`: the SDK client's round trip to a local daemon against a bare node:http round trip, same run.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnxClient, connect } from '../../bridge/sdk/index.ts';
import { startDaemon } from '../../runtime/daemon.ts';
import { type BenchGroup, type BenchResult, msSince, percentile, withRatio } from './harness.ts';

/** Round trips per round and rounds: raw and SDK alternate by round, so load on the machine hits both alike. */
const PER_ROUND = 400;
const ROUNDS = 5;

/** The raw layer: a trivial node:http server on loopback answering a small JSON body, called with fetch. */
async function rawServer(): Promise<{ call: () => Promise<void>; close: () => Promise<void> }> {
  const body = JSON.stringify({ did: 'did:agentnexus:raw', received: 0, unread: 0, messages: [] });
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/inbox/x?limit=1`;
  return {
    call: async () => {
      const res = await fetch(url, { headers: { authorization: 'Bearer raw' } });
      JSON.parse(await res.text());
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function sample(fn: () => Promise<void>, n: number, into: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await fn();
    into.push(msSince(start));
  }
}

export const sdkGroup: BenchGroup = {
  name: 'sdk',
  async run(log) {
    const dir = mkdtempSync(join(tmpdir(), 'anx-bench-sdk-'));
    const daemon = await startDaemon({ dataDir: dir, port: 0 });
    const raw = await rawServer();
    let alice: AnxClient | undefined;
    let bob: AnxClient | undefined;
    try {
      alice = await connect({ dataDir: dir, name: 'bench-alice' });
      bob = await connect({ dataDir: dir, name: 'bench-bob' });
      const reader = alice;
      const sender = bob;
      const target = alice.did;
      await reader.send(target, { text: 'one message in the inbox' });
      const rawSamples: number[] = [];
      const readSamples: number[] = [];
      const statusSamples: number[] = [];
      // Warm-up: connections, JIT, LMDB pages.
      await sample(raw.call, 200, []);
      await sample(() => reader.inbox({ limit: 1 }).then(() => {}), 200, []);
      for (let round = 0; round < ROUNDS; round++) {
        await sample(raw.call, PER_ROUND, rawSamples);
        await sample(() => reader.inbox({ limit: 1 }).then(() => {}), PER_ROUND, readSamples);
        await sample(
          () => reader.discover({ capability: 'none' }).then(() => {}),
          PER_ROUND / 4,
          statusSamples,
        );
      }
      // Durable send: the reply comes after the message is committed (fsync) in the recipient's inbox.
      const sendSamples: number[] = [];
      await sample(() => sender.send(target, { text: 'ping' }).then(() => {}), 200, sendSamples);

      const rawP50 = percentile(rawSamples, 50);
      const rawP99 = percentile(rawSamples, 99);
      const p50 = percentile(readSamples, 50);
      const p99 = percentile(readSamples, 99);
      log(
        `  raw http p50 ${rawP50.toFixed(3)} ms p99 ${rawP99.toFixed(3)} ms; sdk inbox p50 ${p50.toFixed(3)} ms p99 ${p99.toFixed(3)} ms`,
      );
      const results: BenchResult[] = [
        {
          id: 'sdk.rtt_p50_ratio',
          value: p50 / rawP50,
          unit: 'x',
          note: `SDK ${p50.toFixed(3)} ms / raw ${rawP50.toFixed(3)} ms at p50; p99 ${p99.toFixed(3)} / ${rawP99.toFixed(3)} ms (goal ≤ 3)`,
        },
        withRatio('sdk.rtt_p50_ms', p50, 'ms', rawP50, 'SDK inbox read through the daemon vs bare node:http'),
        withRatio('sdk.rtt_p99_ms', p99, 'ms', rawP99, 'same samples, 99th percentile'),
        withRatio(
          'sdk.discover_p50_ms',
          percentile(statusSamples, 50),
          'ms',
          rawP50,
          'discover() through the daemon (card store, no relay)',
        ),
        withRatio(
          'sdk.send_p50_ms',
          percentile(sendSamples, 50),
          'ms',
          rawP50,
          `durable send (fsync) p99 ${percentile(sendSamples, 99).toFixed(2)} ms`,
        ),
      ];
      return results;
    } finally {
      await alice?.close();
      await bob?.close();
      await raw.close();
      await daemon.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
