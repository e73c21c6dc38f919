// The NATS transport runs the shared transport suite across leaf → hub → leaf on real nats-server processes.
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NatsTransport, PRESENCE_ANSWER_MS } from '../../bridge/relay/nats-transport.ts';
import { PRESENCE_QUERY, PRESENCE_WILDCARD } from '../../bridge/relay/subjects.ts';
import { startHub, startLeaf, stopAllNats, type TestLeaf } from '../helpers/nats.ts';
import { cleanupTempDirs } from '../helpers/tmp.ts';
import { transportCases } from './transport.case.ts';

let leaves: [TestLeaf, TestLeaf];

beforeAll(async () => {
  const hub = await startHub();
  leaves = [await startLeaf(hub), await startLeaf(hub)];
}, 60_000);

afterAll(async () => {
  await stopAllNats();
  cleanupTempDirs();
});

transportCases('NATS', async () => {
  const a = await NatsTransport.connect({ servers: leaves[0].url });
  const b = await NatsTransport.connect({ servers: leaves[1].url });
  return {
    a,
    b,
    // Interest crosses leaf → hub → leaf asynchronously; a round trip through both servers and a pause covers it.
    settle: async () => {
      await b.flush();
      await a.flush();
      await new Promise((r) => setTimeout(r, 250));
    },
    close: async () => {
      await a.close();
      await b.close();
    },
  };
});

it('answers a flood of presence queries with at most one announcement per interval', async () => {
  const host = await NatsTransport.connect({ servers: leaves[0].url });
  const flooder = await connect({ servers: leaves[0].url });
  try {
    host.announce('host-1', new Uint8Array([1, 2, 3]));
    let seen = 0;
    flooder.subscribe(PRESENCE_WILDCARD, { callback: () => void seen++ });
    await host.flush();
    await flooder.flush();
    const started = Date.now();
    for (let i = 0; i < 2_000; i++) flooder.publish(PRESENCE_QUERY);
    await flooder.flush();
    await new Promise((r) => setTimeout(r, 1_000));
    const elapsed = Date.now() - started;
    // Answered (a new watcher still learns who is there), but not once per query.
    expect(seen).toBeGreaterThanOrEqual(1);
    expect(seen).toBeLessThanOrEqual(Math.ceil(elapsed / PRESENCE_ANSWER_MS) + 1);
  } finally {
    await flooder.close();
    await host.close();
  }
});
