// The NATS transport runs the shared transport suite across leaf → hub → leaf on real nats-server processes.
import { afterAll, beforeAll } from 'vitest';
import { NatsTransport } from '../../bridge/relay/nats-transport.ts';
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
